// Command auditexport runs the audit-log export service (`auditexport serve`).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/auditexport/auditexport/internal/buildinfo"
)

// Exit codes: scripts branch on them.
const (
	exitOK      = 0
	exitFailure = 1 // the server refused or failed
	exitUsage   = 2 // the command was called wrongly
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWithInput(ctx, args, os.Stdin, stdout, stderr)
}

func runWithInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	started := false
	root := newRootCommand(&cli{stdin: stdin, stderr: stderr}, &started)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var logged loggedError
	if !errors.As(err, &logged) {
		fmt.Fprintln(stderr, "auditexport:", err)
	}
	var usage usageError
	if !started || errors.As(err, &usage) {
		return exitUsage
	}
	return exitFailure
}

// newRootCommand builds the command tree; *started turns true once a command's flags and
// arguments are accepted, so later errors are not usage errors.
func newRootCommand(c *cli, started *bool) *cobra.Command {
	// Every persistent pre-run runs, the root's first: started is set whichever command runs.
	cobra.EnableTraverseRunHooks = true
	root := &cobra.Command{
		Use:   "auditexport",
		Short: "Export audit events as Parquet into customers' S3 buckets",
		Long: `auditexport exports audit events as Parquet into customers' S3 buckets.

  auditexport serve                          run the server
  auditexport exportConfig …                 manage export configurations on a running server
  auditexport token create …                 create an API token
  auditexport events send FILE               send audit events
  auditexport digest verify …                verify an export in S3 with its signed digests
  auditexport health                         check a server's /healthz
  auditexport version                        which build this is

The client commands take the server from --url/--token, else AUDITEXPORT_URL/AUDITEXPORT_TOKEN,
else a profile in ~/.config/auditexport/config.yaml.`,
		SilenceUsage:     true,
		SilenceErrors:    true,
		PersistentPreRun: func(*cobra.Command, []string) { *started = true },
		Version:          buildinfo.Read().String(),
	}
	root.SetVersionTemplate("auditexport {{.Version}}\n")
	root.AddCommand(newServeCommand(), newExportConfigCommand(c), newTokenCommand(c), newEventsCommand(c), newDigestCommand(c),
		newHealthCommand(), newVersionCommand())
	return root
}

// newVersionCommand prints what --version prints, or with -o json each part apart.
func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use: "version", Short: "Print the module version, VCS revision and time, and Go version of this binary", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Read()
			switch output {
			case "json":
				raw, _ := json.Marshal(info)
				return printer{out: cmd.OutOrStdout()}.json(raw)
			case "table":
				fmt.Fprintln(cmd.OutOrStdout(), "auditexport", info)
				return nil
			}
			return usageError{fmt.Errorf("--output must be table or json")}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// loggedError is a failure already in the server's log: printed again, it would show twice.
type loggedError struct{ err error }

func (e loggedError) Error() string { return e.err.Error() }
func (e loggedError) Unwrap() error { return e.err }

// usageError marks a mistake in how the command was called (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
