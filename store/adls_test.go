package store_test

import (
	"strings"
	"testing"

	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

const testSAS = "sv=2023-11-03&ss=b&srt=co&sp=cw&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJlCg%3D%3D"

func adlsConfig() store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindADLSSASToken, Interval: store.Every12Hours, Enabled: true,
		StorageAccount: "yourstorageaccount", FileSystem: "your-file-system", Path: "your/optional/path",
	}
}

func TestADLSConfigurationKeepsItsSASTokenSealed(t *testing.T) {
	st := storetest.New(t)
	created, err := st.CreateConfiguration(t.Context(), adlsConfig(), "?"+testSAS, alice)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.Secret(t.Context(), created.ID); err != nil || got != testSAS {
		t.Fatalf("secret = %q, %v; want the token without the portal's leading '?'", got, err)
	}
	// The same token again is no change; another one is, and voids the connection status.
	same := testSAS
	if c, err := st.UpdateConfiguration(t.Context(), created.ID, alice, func(*store.ExportConfiguration) error { return nil }, &same); err != nil || c.Revision != created.Revision {
		t.Fatalf("same token: revision %d → %d, %v", created.Revision, c.Revision, err)
	}
	rotated := strings.Replace(testSAS, "sig=", "sig=b3RoZXI", 1)
	c, err := st.UpdateConfiguration(t.Context(), created.ID, alice, func(*store.ExportConfiguration) error { return nil }, &rotated)
	if err != nil || c.Revision != created.Revision+1 || c.ConnectionStatus != store.ConnectionPending {
		t.Fatalf("rotated token: %+v, %v", c, err)
	}
}

func TestADLSValidation(t *testing.T) {
	tests := map[string]struct {
		change func(*store.ExportConfiguration)
		sas    string
		field  string
	}{
		"short account":           {func(c *store.ExportConfiguration) { c.StorageAccount = "ab" }, testSAS, "storageAccount"},
		"upper-case account":      {func(c *store.ExportConfiguration) { c.StorageAccount = "MyAccount" }, testSAS, "storageAccount"},
		"long account":            {func(c *store.ExportConfiguration) { c.StorageAccount = strings.Repeat("a", 25) }, testSAS, "storageAccount"},
		"double hyphen":           {func(c *store.ExportConfiguration) { c.FileSystem = "a--b" }, testSAS, "fileSystem"},
		"hyphen first":            {func(c *store.ExportConfiguration) { c.FileSystem = "-abc" }, testSAS, "fileSystem"},
		"upper-case file system":  {func(c *store.ExportConfiguration) { c.FileSystem = "Logs" }, testSAS, "fileSystem"},
		"long file system":        {func(c *store.ExportConfiguration) { c.FileSystem = strings.Repeat("a", 64) }, testSAS, "fileSystem"},
		"bucket given":            {func(c *store.ExportConfiguration) { c.Bucket = "audit" }, testSAS, "bucket"},
		"endpoint with query":     {func(c *store.ExportConfiguration) { c.Endpoint = "http://127.0.0.1:10000/a?b=c" }, testSAS, "endpoint"},
		"endpoint with user":      {func(c *store.ExportConfiguration) { c.Endpoint = "http://u:p@127.0.0.1:10000/a" }, testSAS, "endpoint"},
		"path traversal":          {func(c *store.ExportConfiguration) { c.Path = "a/../b" }, testSAS, "path"},
		"token without signature": {func(*store.ExportConfiguration) {}, "sv=2023-11-03&sp=cw", "sasToken"},
		"token with a space":      {func(*store.ExportConfiguration) {}, "sv=1&sig=a b", "sasToken"},
		"empty token":             {func(*store.ExportConfiguration) {}, "", "sasToken"},
		"token of 5,000 bytes":    {func(*store.ExportConfiguration) {}, "sv=1&sig=" + strings.Repeat("a", 5000), "sasToken"},
	}
	st := storetest.New(t)
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := adlsConfig()
			tt.change(&c)
			_, err := st.CreateConfiguration(t.Context(), c, tt.sas, alice)
			if !isValidation(err, tt.field) {
				t.Fatalf("err = %v, want a validation error on %s", err, tt.field)
			}
			if tt.sas != "" && strings.Contains(err.Error(), tt.sas) {
				t.Fatalf("the error repeats the token: %v", err)
			}
		})
	}
	if all, _ := st.Configurations(t.Context()); len(all) != 0 {
		t.Fatalf("invalid configurations were stored: %d", len(all))
	}
	azurite := adlsConfig()
	azurite.Endpoint = "http://127.0.0.1:10000/devstoreaccount1"
	if _, err := st.CreateConfiguration(t.Context(), azurite, testSAS, alice); err != nil {
		t.Fatalf("Azurite's endpoint refused: %v", err)
	}
}
