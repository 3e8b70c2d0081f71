package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/auditexport/auditexport/store"
)

// Destination types, as apply files and the create/update commands name them.
const (
	typeAccessKey   = "s3:accessKey"
	typeAssumedRole = "s3:assumedRole"
)

// exportConfigFile is Immuta's exportConfig.json, plus our endpoint, name, id (for updates),
// enabled (for apply), startTime (on creation), serverSideEncryption and sseKmsKeyId, and
// secretAccessKeyEnv: the name of an environment variable holding the secret, so CI keeps it out
// of files.
type exportConfigFile struct {
	ID                 *string `json:"id,omitempty"`
	Name               *string `json:"name,omitempty"`
	Type               *string `json:"type,omitempty"` // apply files only
	Enabled            *bool   `json:"enabled,omitempty"`
	Interval           *string `json:"interval,omitempty"`
	Bucket             *string `json:"bucket,omitempty"`
	Path               *string `json:"path,omitempty"`
	Region             *string `json:"region,omitempty"`
	Endpoint           *string `json:"endpoint,omitempty"`
	AccessKeyID        *string `json:"accessKeyId,omitempty"`
	SecretAccessKey    *string `json:"secretAccessKey,omitempty"`
	SecretAccessKeyEnv *string `json:"secretAccessKeyEnv,omitempty"`
	RoleARN            *string `json:"roleArn,omitempty"`
	StartTime          *string `json:"startTime,omitempty"`
	// ServerSideEncryption takes the API's values, AES256 or AWS_KMS.
	ServerSideEncryption *string `json:"serverSideEncryption,omitempty"`
	SSEKMSKeyID          *string `json:"sseKmsKeyId,omitempty"`
}

// storeSSE maps the API's server-side encryption values to the store's.
var storeSSE = map[string]string{"AES256": store.SSEAES256, "AWS_KMS": store.SSEKMS}

// fileError is a problem with a file the user gave; nothing was sent.
type fileError struct {
	file string
	msgs []string
}

func (e *fileError) Error() string {
	return fmt.Sprintf("%s: %s (nothing was sent)", e.file, strings.Join(e.msgs, "; "))
}

// readInput reads a file, or standard input for "-".
func readInput(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(path)
}

// parseExportConfigFile parses one configuration as JSON, refusing unknown fields and trailing
// data.
func parseExportConfigFile(name string, data []byte) (exportConfigFile, error) {
	var f exportConfigFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, &fileError{name, []string{jsonProblem(err)}}
	}
	if dec.More() {
		return f, &fileError{name, []string{"more than one JSON value"}}
	}
	return f, nil
}

func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("%s must be a %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.Is(err, io.EOF):
		return "the file is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: the file ends in the middle of a value"
	}
	return strings.TrimPrefix(err.Error(), "json: ") // "unknown field \"x\""
}

// fileRules says which fields one use of a file needs and allows.
type fileRules struct {
	kind               string
	create             bool // all destination fields required; id refused
	allowType, allowID bool
}

// check applies the rules and the store's own validation to f, so a bad file is refused with
// every problem named before anything is sent. The secret is resolved from the environment.
func (f *exportConfigFile) check(file string, r fileRules) error {
	var msgs []string
	problem := func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf(format, args...)) }
	set := func(p *string) bool { return p != nil }
	accessKey := r.kind == typeAccessKey
	type requirement struct {
		name  string
		given bool
	}
	required := []requirement{{"interval", set(f.Interval)}, {"bucket", set(f.Bucket)}, {"region", set(f.Region)}}
	if accessKey {
		required = append(required, requirement{"accessKeyId", set(f.AccessKeyID)},
			requirement{"secretAccessKey or secretAccessKeyEnv", set(f.SecretAccessKey) || set(f.SecretAccessKeyEnv)})
	} else {
		required = append(required, requirement{"roleArn", set(f.RoleARN)})
	}
	if r.create {
		for _, req := range required {
			if !req.given {
				problem("%s is required", req.name)
			}
		}
	}
	if !r.allowID && f.ID != nil {
		problem("id is not used here")
	}
	if r.allowID && !r.create && f.ID == nil && f.Name == nil {
		problem("id (or name) of the configuration to update is required")
	}
	if !r.allowType && f.Type != nil {
		problem("type is not used here: the command says it")
	}
	if accessKey && f.RoleARN != nil {
		problem("roleArn is not used by access-key configurations")
	}
	if !accessKey && (f.AccessKeyID != nil || f.SecretAccessKey != nil || f.SecretAccessKeyEnv != nil) {
		problem("accessKeyId and secretAccessKey are not used by assumed-role configurations")
	}
	if f.StartTime != nil {
		if !r.create {
			problem("startTime is used only when a configuration is created")
		} else if _, err := time.Parse(time.RFC3339, *f.StartTime); err != nil {
			problem("startTime must be an RFC 3339 time such as 2026-11-21T00:00:00Z")
		}
	}
	if f.ServerSideEncryption != nil && storeSSE[*f.ServerSideEncryption] == "" {
		problem("serverSideEncryption must be AES256 or AWS_KMS")
	}
	if f.SecretAccessKey != nil && f.SecretAccessKeyEnv != nil {
		problem("give secretAccessKey or secretAccessKeyEnv, not both")
	}
	if f.SecretAccessKeyEnv != nil {
		v, ok := os.LookupEnv(*f.SecretAccessKeyEnv)
		if !ok || v == "" {
			problem("secretAccessKeyEnv: environment variable %s is not set", *f.SecretAccessKeyEnv)
		} else {
			f.SecretAccessKey, f.SecretAccessKeyEnv = &v, nil
		}
	}
	msgs = append(msgs, f.fieldProblems(r.kind)...)
	if len(msgs) > 0 {
		return &fileError{file, msgs}
	}
	return nil
}

// fieldProblems runs the store's validation over the fields f sets: the server applies the same
// rules, so what passes here is not refused there for its shape.
func (f *exportConfigFile) fieldProblems(kind string) []string {
	c := store.ExportConfiguration{ // valid placeholders for the fields f leaves out
		Kind: store.KindS3AccessKey, Interval: store.EveryHour, Bucket: "placeholder-bucket", Region: "us-east-1",
		AccessKeyID: "PLACEHOLDER",
	}
	if kind == typeAssumedRole {
		c.Kind, c.AccessKeyID, c.RoleARN = store.KindS3AssumedRole, "", "arn:aws:iam::123456789012:role/placeholder"
	}
	given := map[string]bool{}
	assign := func(field string, dst *string, v *string) {
		if v != nil {
			*dst, given[field] = *v, true
		}
	}
	assign("name", &c.Name, f.Name)
	if f.Interval != nil {
		c.Interval, given["interval"] = store.Interval(*f.Interval), true
	}
	assign("bucket", &c.Bucket, f.Bucket)
	assign("path", &c.Path, f.Path)
	assign("region", &c.Region, f.Region)
	assign("endpoint", &c.Endpoint, f.Endpoint)
	if kind == typeAccessKey {
		assign("accessKeyId", &c.AccessKeyID, f.AccessKeyID)
	} else {
		assign("roleArn", &c.RoleARN, f.RoleARN)
	}
	if f.ServerSideEncryption != nil {
		c.ServerSideEncryption = storeSSE[*f.ServerSideEncryption] // an unknown value is reported by check
	}
	if f.SSEKMSKeyID != nil {
		c.SSEKMSKeyID, given["sseKmsKeyId"] = *f.SSEKMSKeyID, true
		if f.ServerSideEncryption == nil {
			// Only the key's form is checked here: whether the stored encryption is aws:kms is
			// for the server to say.
			c.ServerSideEncryption = store.SSEKMS
		}
	}
	var msgs []string
	var v *store.ValidationError
	if errors.As(c.Validate(), &v) {
		for _, fe := range v.Fields {
			if given[fe.Field] || fe.Field == "region" && given["endpoint"] {
				msgs = append(msgs, fe.Error())
			}
		}
	}
	if f.SecretAccessKey != nil {
		if errors.As(store.ValidateSecretAccessKey(*f.SecretAccessKey), &v) {
			msgs = append(msgs, v.Fields[0].Error())
		}
	}
	return msgs
}

// destinationInput is f as the fields of a GraphQL create or update input.
func (f *exportConfigFile) destinationInput() map[string]any {
	in := map[string]any{}
	put := func(key string, v *string) {
		if v != nil {
			in[key] = *v
		}
	}
	put("name", f.Name)
	put("interval", f.Interval)
	put("bucket", f.Bucket)
	put("path", f.Path)
	put("region", f.Region)
	put("endpoint", f.Endpoint)
	put("accessKeyId", f.AccessKeyID)
	put("secretAccessKey", f.SecretAccessKey)
	put("roleArn", f.RoleARN)
	put("startTime", f.StartTime)
	put("serverSideEncryption", f.ServerSideEncryption)
	put("sseKmsKeyId", f.SSEKMSKeyID)
	return in
}

// applyFile is the file of `exportConfig apply`: the named configurations the server should have.
type applyFile struct {
	ExportConfigurations []exportConfigFile `json:"exportConfigurations"`
}

// parseApplyFile parses an apply file (YAML or JSON) and checks every entry.
func parseApplyFile(file string, data []byte) ([]exportConfigFile, error) {
	var af applyFile
	if err := strictYAML(data, &af); err != nil {
		return nil, &fileError{file, []string{err.Error()}}
	}
	if len(af.ExportConfigurations) == 0 {
		return nil, &fileError{file, []string{"exportConfigurations lists no configuration"}}
	}
	var msgs []string
	seen := map[string]bool{}
	for i := range af.ExportConfigurations {
		e := &af.ExportConfigurations[i]
		where := fmt.Sprintf("exportConfigurations[%d]", i)
		if e.Name == nil || *e.Name == "" {
			msgs = append(msgs, where+": name is required: apply finds configurations by it")
		} else {
			where = fmt.Sprintf("%s (%s)", where, *e.Name)
			if seen[*e.Name] {
				msgs = append(msgs, where+": the name appears twice")
			}
			seen[*e.Name] = true
		}
		if e.Type == nil || !slices.Contains([]string{typeAccessKey, typeAssumedRole}, *e.Type) {
			msgs = append(msgs, where+": type must be s3:accessKey or s3:assumedRole")
			continue
		}
		var fe *fileError
		if errors.As(e.check(where, fileRules{kind: *e.Type, create: true, allowType: true}), &fe) {
			for _, m := range fe.msgs {
				msgs = append(msgs, where+": "+m)
			}
		}
	}
	if len(msgs) > 0 {
		return nil, &fileError{file, msgs}
	}
	return af.ExportConfigurations, nil
}

// strictYAML decodes YAML (or JSON) into v with v's JSON field names, refusing unknown and
// duplicate fields. A panic in the YAML library, on input it cannot handle, is an error here:
// bad input must never crash the CLI.
func strictYAML(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not a YAML document this program can read")
		}
	}()
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		return errors.New(strings.TrimPrefix(strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "), "error unmarshaling JSON: while decoding JSON: json: "))
	}
	return nil
}
