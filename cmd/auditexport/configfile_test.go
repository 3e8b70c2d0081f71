package main

import (
	"errors"
	"slices"
	"testing"
)

// FuzzParseExportConfigFile: any input is either refused as a fileError or accepted, and what
// check accepts satisfies the rules it claims to enforce.
func FuzzParseExportConfigFile(f *testing.F) {
	f.Add([]byte(`{"interval":"EVERY_12_HOURS","bucket":"your-s3-bucket","path":"your-optional-s3-bucket-path","region":"us-east-1","accessKeyId":"YOURACCESSKEYID","secretAccessKey":"YOUR/SECRET/ACCESSKEY"}`), true)
	f.Add([]byte(`{"interval":"EVERY_HOUR","bucket":"b-b-b","region":"eu-west-1","roleArn":"arn:aws:iam::123456789012:role/r","endpoint":"http://127.0.0.1:9000"}`), false)
	f.Add([]byte(`{"id":"x","interval":7}`), true)
	f.Add([]byte(`[`), false)
	f.Fuzz(func(t *testing.T, data []byte, accessKey bool) {
		kind := typeAssumedRole
		if accessKey {
			kind = typeAccessKey
		}
		cfg, err := parseExportConfigFile("f.json", data)
		if err == nil {
			err = cfg.check("f.json", fileRules{kind: kind, create: true})
		}
		var fe *fileError
		if err != nil {
			if !errors.As(err, &fe) || len(fe.msgs) == 0 {
				t.Fatalf("error %v is not a fileError naming a problem", err)
			}
			return
		}
		if cfg.Interval == nil || cfg.Bucket == nil || cfg.Region == nil || cfg.ID != nil {
			t.Fatalf("accepted an incomplete create: %+v", cfg)
		}
		if accessKey && (cfg.AccessKeyID == nil || cfg.SecretAccessKey == nil || cfg.RoleARN != nil) {
			t.Fatalf("accepted an access-key file without its credentials: %+v", cfg)
		}
		if !accessKey && (cfg.RoleARN == nil || cfg.AccessKeyID != nil || cfg.SecretAccessKey != nil) {
			t.Fatalf("accepted an assumed-role file with the wrong fields: %+v", cfg)
		}
		if len(cfg.fieldProblems(kind)) != 0 {
			t.Fatalf("accepted a file the store would refuse: %+v", cfg)
		}
	})
}

// FuzzParseApplyFile: an accepted apply file has unique names and known types in every entry.
func FuzzParseApplyFile(f *testing.F) {
	f.Add([]byte("exportConfigurations:\n  - name: a\n    type: s3:assumedRole\n    interval: EVERY_HOUR\n    bucket: audit-bucket\n    region: us-east-1\n    roleArn: arn:aws:iam::123456789012:role/r\n"))
	f.Add([]byte(`{"exportConfigurations":[{"name":"a","type":"s3:accessKey"}]}`))
	f.Add([]byte("exportConfigurations: [\n"))
	f.Add([]byte("exportConfigurations:\n  - &a {name: x}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseApplyFile("a.yaml", data)
		var fe *fileError
		if err != nil {
			if !errors.As(err, &fe) || len(fe.msgs) == 0 {
				t.Fatalf("error %v is not a fileError naming a problem", err)
			}
			return
		}
		names := map[string]bool{}
		for _, e := range entries {
			if e.Name == nil || *e.Name == "" || names[*e.Name] || e.Type == nil || !slices.Contains([]string{typeAccessKey, typeAssumedRole}, *e.Type) {
				t.Fatalf("accepted entry %+v", e)
			}
			names[*e.Name] = true
		}
	})
}
