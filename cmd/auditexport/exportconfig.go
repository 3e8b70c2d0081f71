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
Immuta's exportConfig.json: for S3 interval, bucket, path, region, accessKeyId, secretAccessKey or
roleArn; for ADLS interval, storageAccount, fileSystem, path, sasToken. Plus endpoint, name, and
secretAccessKeyEnv or sasTokenEnv (the name of an environment variable holding the secret). "-"
reads standard input. Commands taking ID accept a configuration's name too.

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
	// byID is a command that resolves ID (or a name), runs `operation`'s field(id: $id) and
	// prints the fields asked.
	byID := func(use, short, operation, field, fields string, print func(json.RawMessage) error) *cobra.Command {
		return &cobra.Command{Use: use + " ID", Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			id, err := c.resolveID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			raw, err := c.graphQL(cmd.Context(), operation+`($id: ID!) { `+field+`(id: $id) { `+fields+` } }`, map[string]any{"id": id}, field)
			if err != nil {
				return err
			}
			return print(raw)
		}}
	}
	// Printers are looked up when a command runs: c.print is set up by prepare, after this.
	printConfig := func(raw json.RawMessage) error { return c.print.config(raw) }
	printJob := func(raw json.RawMessage) error { return c.print.jobs(raw, true) }
	cmd.AddCommand(
		addWait(c.createCommand(typeAccessKey, &wait)),
		addWait(c.createCommand(typeAssumedRole, &wait)),
		addWait(c.updateCommand(typeAccessKey, &wait)),
		addWait(c.updateCommand(typeAssumedRole, &wait)),
		addWait(c.createCommand(typeADLS, &wait)),
		addWait(c.updateCommand(typeADLS, &wait)),
		&cobra.Command{Use: "list", Short: "List the export configurations", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := c.graphQL(cmd.Context(), `{ getAllExportConfigurations { `+configFields+` } }`, nil, "getAllExportConfigurations")
			if err != nil {
				return err
			}
			return c.print.configs(raw)
		}},
		byID("get", "Show one export configuration", "query", "getExportConfiguration", configFields, printConfig),
		byID("enable", "Enable exports of a configuration (checks its destination)", "mutation", "enableExportConfiguration", configFields, printConfig),
		byID("disable", "Disable exports of a configuration", "mutation", "disableExportConfiguration", configFields, printConfig),
		byID("delete", "Delete a configuration", "mutation", "deleteExportConfiguration", configFields, printConfig),
		addWait(&cobra.Command{Use: "verify ID", Short: "Check the destination now (with --wait, until SUCCESS)", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			id, err := c.resolveID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.verify(cmd.Context(), id, wait)
		}}),
		byID("run", "Export what is pending now and show the job", "mutation", "runExportNow", jobFields, printJob),
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

// configMutation is a mutation that creates or updates a configuration, and its input type.
type configMutation struct{ name, input string }

// configMutations are, per destination type, the mutations that create and update it.
var configMutations = map[string]struct{ create, update configMutation }{
	typeAccessKey: {
		configMutation{"createS3AccessKeyExportConfiguration", "S3AccessKeyExportConfigurationInput"},
		configMutation{"updateS3AccessKeyExportConfiguration", "UpdateS3AccessKeyExportConfigurationInput"},
	},
	typeAssumedRole: {
		configMutation{"createS3AssumedRoleExportConfiguration", "S3AssumedRoleExportConfigurationInput"},
		configMutation{"updateS3AssumedRoleExportConfiguration", "UpdateS3AssumedRoleExportConfigurationInput"},
	},
	typeADLS: { // Immuta's names: "Endpoint" to create, "Export" to update
		configMutation{"createAdlsSasTokenEndpointConfiguration", "AdlsSasTokenExportConfigurationInput"},
		configMutation{"updateAdlsSasTokenExportConfiguration", "UpdateAdlsSasTokenExportConfigurationInput"},
	},
}

// sendConfig runs m with data and returns the fields asked of the configuration.
func (c *cli) sendConfig(ctx context.Context, m configMutation, data map[string]any, fields string) (json.RawMessage, error) {
	return c.graphQL(ctx, `mutation($d: `+m.input+`!) { `+m.name+`(data: $d) { `+fields+` } }`, map[string]any{"d": data}, m.name)
}

func (c *cli) createCommand(kind string, wait *time.Duration) *cobra.Command {
	return &cobra.Command{
		Use: "create:" + kind + " FILE", Short: "Create an " + kind + " export configuration from FILE", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := c.readConfigFile(args[0], fileRules{kind: kind, create: true})
			if err != nil {
				return err
			}
			raw, err := c.sendConfig(cmd.Context(), configMutations[kind].create, f.destinationInput(), configFields)
			if err != nil {
				return err
			}
			return c.printOrWait(cmd.Context(), raw, *wait)
		},
	}
}

func (c *cli) updateCommand(kind string, wait *time.Duration) *cobra.Command {
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
			raw, err := c.sendConfig(cmd.Context(), configMutations[kind].update, in, configFields)
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
