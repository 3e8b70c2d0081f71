package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// planStep is one change apply makes, or would make.
type planStep struct {
	Action  string   `json:"action"` // create, update, enable, disable, delete, unchanged
	Name    string   `json:"name"`
	ID      string   `json:"id,omitempty"`
	Type    string   `json:"type"`
	Changes []string `json:"changes,omitempty"`

	want *exportConfigFile // create and update
}

func (c *cli) applyCommand() *cobra.Command {
	var file string
	var prune, dryRun bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make the server's named export configurations match FILE",
		Long: `Make the server's named export configurations match FILE (YAML or JSON):

  exportConfigurations:
    - name: acme-prod              # required and unique: apply finds configurations by name
      type: s3:accessKey           # or s3:assumedRole
      interval: EVERY_HOUR
      enabled: true                # default true
      bucket: acme-audit
      path: auditexport
      region: us-east-1
      accessKeyId: AKIA…
      secretAccessKeyEnv: ACME_SECRET   # or secretAccessKey (then keep the file secret)
      startTime: 2026-11-01T00:00:00Z   # optional, on creation: export what is buffered since
    - name: acme-role
      type: s3:assumedRole
      interval: EVERY_24_HOURS
      bucket: acme-audit
      region: us-east-1
      roleArn: arn:aws:iam::123456789012:role/auditexport
    - name: acme-lake
      type: adls:sasToken
      interval: EVERY_12_HOURS
      storageAccount: acmeaudit
      fileSystem: audit-logs
      path: auditexport
      sasTokenEnv: ACME_SAS_TOKEN       # or sasToken

Configurations missing on the server are created, different ones updated, and with --prune
named ones missing from FILE deleted (unnamed ones are never touched). Applying the same file
again changes nothing. The secret is sent on create and whenever accessKeyId (S3) or
storageAccount or fileSystem (ADLS) changes: the server never reveals it, so apply cannot compare
it; rotate a secret with update:s3:accessKey or update:adls:sasToken.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{fmt.Errorf("-f FILE is required")}
			}
			data, err := readInput(file, c.stdin)
			if err != nil {
				return usageError{err}
			}
			want, err := parseApplyFile(file, data)
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			raw, err := c.graphQL(ctx, `{ getAllExportConfigurations { `+configFields+` } }`, nil, "getAllExportConfigurations")
			if err != nil {
				return err
			}
			var have []exportConfig
			if err := json.Unmarshal(raw, &have); err != nil {
				return err
			}
			plan, err := planApply(want, have, prune)
			if err != nil {
				return err
			}
			if !dryRun {
				if err := c.execute(ctx, plan); err != nil {
					c.printPlan(plan, false)
					return err
				}
			}
			c.printPlan(plan, dryRun)
			if dryRun {
				fmt.Fprintln(c.stderr, "dry run: nothing was changed")
				return nil
			}
			if wait > 0 {
				return c.waitAll(ctx, plan, wait)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `the file of configurations ("-" reads standard input)`)
	cmd.Flags().BoolVar(&prune, "prune", false, "delete named configurations that FILE does not list")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().DurationVar(&wait, "wait", 0, "then wait up to this long for every created or updated configuration to reach SUCCESS")
	return cmd
}

// planApply compares the file with the server.
func planApply(want []exportConfigFile, have []exportConfig, prune bool) ([]planStep, error) {
	byName := map[string]exportConfig{}
	for _, h := range have {
		if h.Name != nil {
			byName[*h.Name] = h
		}
	}
	var plan []planStep
	listed := map[string]bool{}
	for i := range want {
		w := &want[i]
		name, kind := *w.Name, *w.Type
		listed[name] = true
		enabled := w.Enabled == nil || *w.Enabled
		h, exists := byName[name]
		if !exists {
			plan = append(plan, planStep{Action: "create", Name: name, Type: kind, want: w})
			if !enabled {
				plan = append(plan, planStep{Action: "disable", Name: name, Type: kind})
			}
			continue
		}
		if h.kind() != kind {
			return nil, &apiError{Code: "CONFLICT", Message: fmt.Sprintf(
				"configuration %q is %s on the server but %s in the file: delete it first (its id, the ExternalId of an assumed role, would change)", name, h.kind(), kind)}
		}
		if changes := differences(w, h); len(changes) > 0 {
			plan = append(plan, planStep{Action: "update", Name: name, ID: h.ID, Type: kind, Changes: changes, want: w})
		} else if enabled == h.Enabled {
			plan = append(plan, planStep{Action: "unchanged", Name: name, ID: h.ID, Type: kind})
		}
		if enabled != h.Enabled {
			plan = append(plan, planStep{Action: map[bool]string{true: "enable", false: "disable"}[enabled], Name: name, ID: h.ID, Type: kind})
		}
	}
	if prune {
		for _, h := range have {
			if h.Name != nil && !listed[*h.Name] {
				plan = append(plan, planStep{Action: "delete", Name: *h.Name, ID: h.ID, Type: h.kind()})
			}
		}
	}
	return plan, nil
}

// differences names the fields of w that differ from the server's h.
func differences(w *exportConfigFile, h exportConfig) []string {
	ep := h.EndpointConfiguration
	var out []string
	// Optional fields a file leaves out are cleared on the server: the file is the whole truth.
	optional := map[string]bool{"path": true, "endpoint": true, "serverSideEncryption": true, "sseKmsKeyId": true}
	diff := func(name string, want *string, have string) {
		if want != nil && *want != have || want == nil && have != "" && optional[name] {
			out = append(out, name)
		}
	}
	diff("interval", w.Interval, h.Interval)
	diff("bucket", w.Bucket, ep.Bucket)
	diff("path", w.Path, str(ep.Path))
	diff("region", w.Region, ep.Region)
	diff("endpoint", w.Endpoint, str(ep.Endpoint))
	diff("serverSideEncryption", w.ServerSideEncryption, str(ep.ServerSideEncryption))
	diff("sseKmsKeyId", w.SSEKMSKeyID, str(ep.SseKmsKeyID))
	switch *w.Type {
	case typeAccessKey:
		diff("accessKeyId", w.AccessKeyID, ep.AccessKeyID)
	case typeAssumedRole:
		diff("roleArn", w.RoleARN, ep.RoleArn)
	case typeADLS:
		diff("storageAccount", w.StorageAccount, ep.StorageAccount)
		diff("fileSystem", w.FileSystem, ep.FileSystem)
	}
	return out
}

// secretOf names the secret sent again when a field it belongs to changes.
var secretOf = map[string]string{"accessKeyId": "secretAccessKey", "storageAccount": "sasToken", "fileSystem": "sasToken"}

// execute carries out the plan in order; it stops at the first refusal.
func (c *cli) execute(ctx context.Context, plan []planStep) error {
	for i := range plan {
		step := &plan[i]
		var err error
		switch step.Action {
		case "create":
			var raw json.RawMessage
			raw, err = c.sendConfig(ctx, configMutations[step.Type].create, step.want.destinationInput(), "id")
			if err == nil {
				var created struct{ ID string }
				err = json.Unmarshal(raw, &created)
				step.ID = created.ID
				for j := i + 1; j < len(plan); j++ {
					if plan[j].Name == step.Name {
						plan[j].ID = created.ID
					}
				}
			}
		case "update":
			in := map[string]any{"id": step.ID}
			all := step.want.destinationInput()
			for _, field := range step.Changes {
				in[field] = all[field]
				if secret := secretOf[field]; secret != "" {
					in[secret] = all[secret]
				}
			}
			_, err = c.sendConfig(ctx, configMutations[step.Type].update, in, "id")
		case "enable", "disable", "delete":
			mutation := step.Action + "ExportConfiguration"
			_, err = c.graphQL(ctx, `mutation($id: ID!) { `+mutation+`(id: $id) { id } }`, map[string]any{"id": step.ID}, mutation)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", step.Action, step.Name, err)
		}
	}
	return nil
}

func (c *cli) printPlan(plan []planStep, dryRun bool) {
	if c.print.format == "json" {
		raw, _ := json.Marshal(map[string]any{"dryRun": dryRun, "actions": plan})
		c.print.json(raw)
		return
	}
	rows := make([][]string, len(plan))
	for i, s := range plan {
		changes := ""
		for j, ch := range s.Changes {
			if j > 0 {
				changes += ","
			}
			changes += ch
		}
		rows[i] = []string{s.Action, s.Name, s.Type, s.ID, changes}
	}
	c.print.table("ACTION\tNAME\tTYPE\tID\tCHANGES", rows)
}

// waitAll waits for every created or updated configuration that is enabled to reach SUCCESS.
func (c *cli) waitAll(ctx context.Context, plan []planStep, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	disabled := map[string]bool{}
	for _, s := range plan {
		if s.Action == "disable" {
			disabled[s.Name] = true
		}
	}
	quiet := *c
	quiet.print.format, quiet.print.out = "json", io.Discard
	for _, s := range plan {
		if (s.Action == "create" || s.Action == "update") && !disabled[s.Name] {
			if err := quiet.verify(ctx, s.ID, max(time.Until(deadline), time.Second)); err != nil {
				return err
			}
		}
	}
	return nil
}
