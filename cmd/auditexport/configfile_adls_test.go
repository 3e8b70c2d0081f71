package main

import (
	"errors"
	"testing"

	"github.com/auditexport/auditexport/store"
)

// FuzzParseADLSConfigFile: any input is refused as a fileError naming its problems, or accepted
// as a complete ADLS create with a SAS token of the right shape and no S3 field.
func FuzzParseADLSConfigFile(f *testing.F) {
	f.Add([]byte(`{"interval":"EVERY_12_HOURS","storageAccount":"yourstorageaccount","fileSystem":"your-file-system","path":"your/optional/path","sasToken":"?sv=2024-01-01&sp=cw&sig=abc"}`))
	f.Add([]byte(`{"interval":"EVERY_HOUR","storageAccount":"acct1","fileSystem":"files","sasTokenEnv":"HOME","endpoint":"http://127.0.0.1:10000/acct1"}`))
	f.Add([]byte(`{"interval":"EVERY_HOUR","storageAccount":"Bad_Name","fileSystem":"a--b","sasToken":"no","bucket":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseExportConfigFile("f.json", data)
		if err == nil {
			err = cfg.check("f.json", fileRules{kind: typeADLS, create: true})
		}
		var fe *fileError
		if err != nil {
			if !errors.As(err, &fe) || len(fe.msgs) == 0 {
				t.Fatalf("error %v is not a fileError naming a problem", err)
			}
			return
		}
		if cfg.Interval == nil || cfg.StorageAccount == nil || cfg.FileSystem == nil || cfg.SASToken == nil || cfg.SASTokenEnv != nil {
			t.Fatalf("accepted an incomplete ADLS create: %+v", cfg)
		}
		if cfg.Bucket != nil || cfg.Region != nil || cfg.AccessKeyID != nil || cfg.SecretAccessKey != nil || cfg.RoleARN != nil || cfg.ServerSideEncryption != nil {
			t.Fatalf("accepted S3 fields in an ADLS file: %+v", cfg)
		}
		if err := store.ValidateSASToken(*cfg.SASToken); err != nil {
			t.Fatalf("accepted a SAS token the server refuses: %v", err)
		}
		if in := cfg.destinationInput(); in["sasToken"] != *cfg.SASToken || in["storageAccount"] != *cfg.StorageAccount {
			t.Fatalf("input %v does not carry the file's fields", in)
		}
	})
}
