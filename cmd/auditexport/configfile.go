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
	typeADLS        = "adls:sasToken"
)

// destinationTypes are the types, in the order messages list them.
var destinationTypes = []string{typeAccessKey, typeAssumedRole, typeADLS}

// exportConfigFile is Immuta's exportConfig.json (S3: interval, bucket, path, region,
// accessKeyId, secretAccessKey or roleArn; ADLS: interval, storageAccount, fileSystem, path,
// sasToken), plus our endpoint, name, id (for updates), enabled (for apply), startTime (on
// creation), serverSideEncryption and sseKmsKeyId, and secretAccessKeyEnv and sasTokenEnv: the
// name of an environment variable holding the secret, so CI keeps it out of files.
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
	// ADLS Gen2.
	StorageAccount *string `json:"storageAccount,omitempty"`
	FileSystem     *string `json:"fileSystem,omitempty"`
	SASToken       *string `json:"sasToken,omitempty"`
	SASTokenEnv    *string `json:"sasTokenEnv,omitempty"`
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
	type requirement struct {
		name  string
		given bool
	}
	var required []requirement
	switch r.kind {
	case typeAccessKey:
		required = []requirement{{"interval", set(f.Interval)}, {"bucket", set(f.Bucket)}, {"region", set(f.Region)},
			{"accessKeyId", set(f.AccessKeyID)}, {"secretAccessKey or secretAccessKeyEnv", set(f.SecretAccessKey) || set(f.SecretAccessKeyEnv)}}
		if f.RoleARN != nil {
			problem("roleArn is not used by access-key configurations")
		}
	case typeAssumedRole:
		required = []requirement{{"interval", set(f.Interval)}, {"bucket", set(f.Bucket)}, {"region", set(f.Region)}, {"roleArn", set(f.RoleARN)}}
		if f.AccessKeyID != nil || f.SecretAccessKey != nil || f.SecretAccessKeyEnv != nil {
			problem("accessKeyId and secretAccessKey are not used by assumed-role configurations")
		}
	case typeADLS:
		required = []requirement{{"interval", set(f.Interval)}, {"storageAccount", set(f.StorageAccount)}, {"fileSystem", set(f.FileSystem)},
			{"sasToken or sasTokenEnv", set(f.SASToken) || set(f.SASTokenEnv)}}
		for _, s3Field := range []requirement{{"bucket", set(f.Bucket)}, {"region", set(f.Region)}, {"accessKeyId", set(f.AccessKeyID)},
			{"secretAccessKey", set(f.SecretAccessKey) || set(f.SecretAccessKeyEnv)}, {"roleArn", set(f.RoleARN)},
			{"serverSideEncryption", set(f.ServerSideEncryption)}, {"sseKmsKeyId", set(f.SSEKMSKeyID)}} {
			if s3Field.given {
				problem("%s is not used by ADLS configurations", s3Field.name)
			}
		}
	}
	if r.kind != typeADLS && (f.StorageAccount != nil || f.FileSystem != nil || f.SASToken != nil || f.SASTokenEnv != nil) {
		problem("storageAccount, fileSystem and sasToken are used by ADLS configurations only")
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
	fromEnv := func(name string, value, env **string) {
		if *value != nil && *env != nil {
			problem("give %s or %sEnv, not both", name, name)
		}
		if *env != nil {
			v, ok := os.LookupEnv(**env)
			if !ok || v == "" {
				problem("%sEnv: environment variable %s is not set", name, **env)
			} else {
				*value, *env = &v, nil
			}
		}
	}
	fromEnv("secretAccessKey", &f.SecretAccessKey, &f.SecretAccessKeyEnv)
	fromEnv("sasToken", &f.SASToken, &f.SASTokenEnv)
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
	switch kind {
	case typeAssumedRole:
		c.Kind, c.AccessKeyID, c.RoleARN = store.KindS3AssumedRole, "", "arn:aws:iam::123456789012:role/placeholder"
	case typeADLS:
		c = store.ExportConfiguration{Kind: store.KindADLSSASToken, Interval: store.EveryHour, StorageAccount: "placeholder", FileSystem: "placeholder"}
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
	switch kind {
	case typeAccessKey:
		assign("accessKeyId", &c.AccessKeyID, f.AccessKeyID)
	case typeAssumedRole:
		assign("roleArn", &c.RoleARN, f.RoleARN)
	case typeADLS:
		assign("storageAccount", &c.StorageAccount, f.StorageAccount)
		assign("fileSystem", &c.FileSystem, f.FileSystem)
		c.Bucket, c.Region = "", "" // refused above when the file gives them
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
	if f.SASToken != nil {
		if errors.As(store.ValidateSASToken(*f.SASToken), &v) {
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
	put("storageAccount", f.StorageAccount)
	put("fileSystem", f.FileSystem)
	put("sasToken", f.SASToken)
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
		if e.Type == nil || !slices.Contains(destinationTypes, *e.Type) {
			msgs = append(msgs, where+": type must be s3:accessKey, s3:assumedRole or adls:sasToken")
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
