package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/auditexport/auditexport/server"
)

func newTokenCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens (needs an ADMIN token)", PersistentPreRunE: c.prepare,
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	c.flags.register(cmd)
	var name string
	var permissions []string
	create := &cobra.Command{
		Use:   "create --name NAME --permission AUDIT[,INGEST]",
		Short: "Create a token and print it: it is shown this once and stored only as a hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || len(permissions) == 0 {
				return usageError{fmt.Errorf("--name and --permission are required")}
			}
			for i, p := range permissions {
				permissions[i] = strings.ToUpper(strings.TrimSpace(p))
			}
			raw, err := c.graphQL(cmd.Context(), `mutation($name: String!, $p: [Permission!]!) { createApiToken(name: $name, permissions: $p) }`,
				map[string]any{"name": name, "p": permissions}, "createApiToken")
			if err != nil {
				return err
			}
			var token string
			if err := json.Unmarshal(raw, &token); err != nil {
				return err
			}
			if c.print.format == "json" {
				out, _ := json.Marshal(map[string]string{"name": name, "token": token})
				return c.print.json(out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), token)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "the token's name: what createdBy and audit events record")
	create.Flags().StringSliceVar(&permissions, "permission", nil, "ADMIN, AUDIT, INGEST or METRICS; repeat or separate with commas")
	list := &cobra.Command{
		Use: "list", Short: "List the tokens: names, permissions, who created them and when (never the tokens)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := c.graphQL(cmd.Context(), `{ apiTokens { `+tokenFields+` } }`, nil, "apiTokens")
			if err != nil {
				return err
			}
			return c.print.tokens(raw, false)
		},
	}
	revoke := &cobra.Command{
		Use: "revoke NAME", Short: "Revoke a token at once (a token cannot revoke itself)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := c.graphQL(cmd.Context(), `mutation($name: String!) { revokeApiToken(name: $name) { `+tokenFields+` } }`,
				map[string]any{"name": args[0]}, "revokeApiToken")
			if err != nil {
				return err
			}
			return c.print.tokens(raw, true)
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newEventsCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Send audit events (needs an INGEST token)", PersistentPreRunE: c.prepare,
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	c.flags.register(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "send FILE",
		Short: `Send the events of FILE (NDJSON, or a JSON array; "-" reads standard input)`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(args[0], c.stdin)
			if err != nil {
				return usageError{err}
			}
			contentType := "application/x-ndjson"
			if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
				contentType = "application/json"
			}
			status, raw, err := c.api.post(cmd.Context(), server.EventsPath, contentType, data)
			if err != nil {
				return err
			}
			if status != http.StatusAccepted {
				var resp struct{ Errors []gqlError }
				if json.Unmarshal(raw, &resp) == nil && len(resp.Errors) > 0 {
					return refusal(status, resp.Errors)
				}
				return &apiError{Status: status, Message: fmt.Sprintf("the server answered %d", status)}
			}
			if c.print.format == "json" {
				return c.print.json(raw)
			}
			var counts struct{ Accepted, Duplicates int }
			json.Unmarshal(raw, &counts)
			fmt.Fprintf(cmd.OutOrStdout(), "accepted %d, duplicates %d\n", counts.Accepted, counts.Duplicates)
			return nil
		},
	})
	return cmd
}

// newHealthCommand checks a server's /healthz: the container's health check, which has no curl.
func newHealthCommand() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when the server at --url answers /healthz",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := &http.Client{Timeout: timeout}
			resp, err := client.Get(strings.TrimRight(url, "/") + "/healthz")
			if err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unhealthy: /healthz answered %d", resp.StatusCode)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", cmp.Or(os.Getenv("AUDITEXPORT_URL"), "http://127.0.0.1:8080"), "server URL (AUDITEXPORT_URL)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}
