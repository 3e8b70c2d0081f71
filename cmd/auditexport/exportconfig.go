package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// cli is what every client command shares: the connection flags, and once resolved, the client
// and the printer.
type cli struct {
	flags  connectionFlags
	stdin  io.Reader
	stderr io.Writer
	api    *apiClient
	print  printer
}

// prepare resolves the connection before a client command runs.
func (c *cli) prepare(cmd *cobra.Command, _ []string) error {
	if cmd.HasSubCommands() {
		return nil // a group only prints its help
	}
	conn, err := c.flags.resolve()
	if err != nil {
		return err
	}
	c.api = &apiClient{conn: conn, http: &http.Client{}, timeout: c.flags.timeout}
	c.print = printer{out: cmd.OutOrStdout(), format: c.flags.output}
	return nil
}

func (c *cli) graphQL(ctx context.Context, query string, vars map[string]any, field string) (json.RawMessage, error) {
	return c.api.graphQL(ctx, query, vars, field)
}

// resolveID turns an id or a name into an id.
func (c *cli) resolveID(ctx context.Context, idOrName string) (string, error) {
	if _, err := uuid.Parse(idOrName); err == nil {
		return idOrName, nil
	}
	raw, err := c.graphQL(ctx, `{ getAllExportConfigurations { id name } }`, nil, "getAllExportConfigurations")
	if err != nil {
		return "", err
	}
	var all []struct{ ID, Name string }
	if err := json.Unmarshal(raw, &all); err != nil {
		return "", err
	}
	for _, cfg := range all {
		if cfg.Name == idOrName {
			return cfg.ID, nil
		}
	}
	return "", &apiError{Code: "NOT_FOUND", Message: fmt.Sprintf("no export configuration has the id or name %q", idOrName)}
}

func newExportConfigCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exportConfig",
		Short: "Manage export configurations on a running server",
		Long: `Manage export configurations on a running server, as Immuta's CLI does. FILE holds the JSON of
Immuta's exportConfig.json (interval, bucket, path, region, accessKeyId, secretAccessKey or roleArn),
plus endpoint, name, and secretAccessKeyEnv (the name of an environment variable holding the
secret). "-" reads standard input. Commands taking ID accept a configuration's name too.

Exit codes: 0 success, 1 the server refused or failed (its message on stderr), 2 usage error
(bad flags, or a bad file: nothing is sent).`,
		PersistentPreRunE: c.prepare,
		Args:              cobra.NoArgs, // an unknown subcommand is a usage error, not help
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.flags.register(cmd)
	var wait time.Duration
	addWait := func(cmd *cobra.Command) *cobra.Command {
		cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for connectionStatus SUCCESS, checking again every few seconds (exit 1 if it never comes)")
		return cmd
	}
	byID := func(use, short, mutation string) *cobra.Command {
		return &cobra.Command{Use: use + " ID", Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			id, err := c.resolveID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			raw, err := c.graphQL(cmd.Context(), `mutation($id: ID!) { `+mutation+`(id: $id) { `+configFields+` } }`, map[string]any{"id": id}, mutation)
			if err != nil {
				return err
			}
			return c.print.config(raw)
		}}
	}
	cmd.AddCommand(
		addWait(c.createCommand(typeAccessKey, "createS3AccessKeyExportConfiguration", "S3AccessKeyExportConfigurationInput", &wait)),
		addWait(c.createCommand(typeAssumedRole, "createS3AssumedRoleExportConfiguration", "S3AssumedRoleExportConfigurationInput", &wait)),
		addWait(c.updateCommand(typeAccessKey, "updateS3AccessKeyExportConfiguration", "UpdateS3AccessKeyExportConfigurationInput", &wait)),
		addWait(c.updateCommand(typeAssumedRole, "updateS3AssumedRoleExportConfiguration", "UpdateS3AssumedRoleExportConfigurationInput", &wait)),
		&cobra.Command{Use: "list", Short: "List the export configurations", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := c.graphQL(cmd.Context(), `{ getAllExportConfigurations { `+configFields+` } }`, nil, "getAllExportConfigurations")
			if err != nil {
				return err
			}
			return c.print.configs(raw)
		}},
		&cobra.Command{Use: "get ID", Short: "Show one export configuration", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			id, err := c.resolveID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			raw, err := c.graphQL(cmd.Context(), `query($id: ID!) { getExportConfiguration(id: $id) { `+configFields+` } }`, map[string]any{"id": id}, "getExportConfiguration")
			if err != nil {
				return err
			}
			return c.print.config(raw)
		}},
		byID("enable", "Enable exports of a configuration (checks its destination)", "enableExportConfiguration"),
		byID("disable", "Disable exports of a configuration", "disableExportConfiguration"),
		byID("delete", "Delete a configuration", "deleteExportConfiguration"),
		addWait(&cobra.Command{Use: "verify ID", Short: "Check the destination now (with --wait, until SUCCESS)", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			id, err := c.resolveID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.verify(cmd.Context(), id, wait)
		}}),
		&cobra.Command{Use: "run ID", Short: "Export what is pending now and show the job", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			id, err := c.resolveID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			raw, err := c.graphQL(cmd.Context(), `mutation($id: ID!) { runExportNow(id: $id) { `+jobFields+` } }`, map[string]any{"id": id}, "runExportNow")
			if err != nil {
				return err
			}
			return c.print.jobs(raw, true)
		}},
		c.jobsCommand(),
		&cobra.Command{Use: "tasks JOB_ID", Short: "List the objects of an export job", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := c.graphQL(cmd.Context(), `query($id: String!) { getAllExportJobTasks(exportJobId: $id) { `+taskFields+` } }`, map[string]any{"id": args[0]}, "getAllExportJobTasks")
			if err != nil {
				return err
			}
			return c.print.tasks(raw)
		}},
		c.applyCommand(),
	)
	return cmd
}

func (c *cli) jobsCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{Use: "jobs ID", Short: "List a configuration's export jobs, newest first", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		id, err := c.resolveID(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		raw, err := c.graphQL(cmd.Context(), `query($id: ID!, $limit: Int) { getAllExportJobs(exportConfigurationId: $id, limit: $limit) { `+jobFields+` } }`,
			map[string]any{"id": id, "limit": limit}, "getAllExportJobs")
		if err != nil {
			return err
		}
		return c.print.jobs(raw, false)
	}}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many jobs, at most 100")
	return cmd
}

// readConfigFile reads and checks FILE before anything is sent.
func (c *cli) readConfigFile(path string, rules fileRules) (exportConfigFile, error) {
	data, err := readInput(path, c.stdin)
	if err != nil {
		return exportConfigFile{}, usageError{err}
	}
	f, err := parseExportConfigFile(path, data)
	if err == nil {
		err = f.check(path, rules)
	}
	if err != nil {
		return f, usageError{err}
	}
	return f, nil
}

func (c *cli) createCommand(kind, mutation, inputType string, wait *time.Duration) *cobra.Command {
	return &cobra.Command{
		Use: "create:" + kind + " FILE", Short: "Create an " + kind + " export configuration from FILE", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := c.readConfigFile(args[0], fileRules{kind: kind, create: true})
			if err != nil {
				return err
			}
			raw, err := c.graphQL(cmd.Context(), `mutation($d: `+inputType+`!) { `+mutation+`(data: $d) { `+configFields+` } }`,
				map[string]any{"d": f.destinationInput()}, mutation)
			if err != nil {
				return err
			}
			return c.printOrWait(cmd.Context(), raw, *wait)
		},
	}
}

func (c *cli) updateCommand(kind, mutation, inputType string, wait *time.Duration) *cobra.Command {
	return &cobra.Command{
		Use: "update:" + kind + " FILE", Short: "Update an " + kind + " export configuration; FILE names it by id (or name)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := c.readConfigFile(args[0], fileRules{kind: kind, allowID: true})
			if err != nil {
				return err
			}
			in := f.destinationInput()
			if f.ID != nil {
				in["id"] = *f.ID
			} else {
				if in["id"], err = c.resolveID(cmd.Context(), *f.Name); err != nil {
					return err
				}
				delete(in, "name")
			}
			raw, err := c.graphQL(cmd.Context(), `mutation($d: `+inputType+`!) { `+mutation+`(data: $d) { `+configFields+` } }`, map[string]any{"d": in}, mutation)
			if err != nil {
				return err
			}
			return c.printOrWait(cmd.Context(), raw, *wait)
		},
	}
}

// printOrWait prints a configuration a mutation returned, after waiting for SUCCESS if asked.
func (c *cli) printOrWait(ctx context.Context, raw json.RawMessage, wait time.Duration) error {
	if wait <= 0 {
		return c.print.config(raw)
	}
	var cfg exportConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return err
	}
	if cfg.ConnectionStatus == "SUCCESS" {
		return c.print.config(raw)
	}
	return c.verify(ctx, cfg.ID, wait)
}

// errNotReady is a --wait that ran out.
type errNotReady struct {
	id, status string
	waited     time.Duration
}

func (e *errNotReady) Error() string {
	return fmt.Sprintf("export configuration %s is not reachable after %s; last connectionStatus: %s", e.id, e.waited, e.status)
}

// verify checks the destination now; with wait > 0 it checks again every few seconds until
// SUCCESS or the time runs out. It prints the configuration as last seen.
func (c *cli) verify(ctx context.Context, id string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		raw, err := c.graphQL(ctx, `mutation($id: ID!) { verifyExportConfiguration(id: $id) { `+configFields+` } }`, map[string]any{"id": id}, "verifyExportConfiguration")
		if err != nil {
			return err
		}
		var cfg exportConfig
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return err
		}
		remaining := time.Until(deadline)
		if cfg.ConnectionStatus == "SUCCESS" || wait <= 0 || remaining <= 0 {
			if err := c.print.config(raw); err != nil {
				return err
			}
			if cfg.ConnectionStatus != "SUCCESS" && wait > 0 {
				return &errNotReady{id: id, status: cfg.ConnectionStatus, waited: wait}
			}
			return nil
		}
		select {
		case <-time.After(min(3*time.Second, remaining)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
