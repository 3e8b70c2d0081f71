package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/azuritetest"
	"github.com/auditexport/auditexport/internal/testserver"
)

var createWrite = sas.ContainerPermissions{Create: true, Write: true}

// Immuta's documented ADLS requests, as written there but for the values (and the endpoint,
// which targets Azurite), work against the real server; the SAS token is never returned or
// logged; the other operations work on ADLS configurations as on S3 ones.
func TestImmutaADLSRequests(t *testing.T) {
	az := azuritetest.Require(t)
	container, token := az.NewContainerWithSAS(t, createWrite, time.Now().Add(time.Hour))
	server := testserver.Start(t, testserver.Options{})
	signature := sasSignature(t, token)

	create := `mutation { createAdlsSasTokenEndpointConfiguration(data: { interval: "EVERY_12_HOURS", storageAccount: "yourstorageaccount", fileSystem: "your-file-system", path: "your/optional/path", sasToken: "sv=…" }) { id interval enabled connectionStatus endpointConfiguration { ... on AdlsSasTokenEndpointConfiguration { storageAccount fileSystem path } } } }`
	create = strings.NewReplacer(`"yourstorageaccount"`, `"`+az.Account+`"`, `"your-file-system"`, `"`+container+`"`,
		`sasToken: "sv=…"`, fmt.Sprintf(`sasToken: %q, endpoint: %q`, "?"+token, az.Endpoint)).Replace(create)
	var created struct {
		Create struct {
			ID, Interval, ConnectionStatus string
			Enabled                        bool
			EndpointConfiguration          map[string]string
		} `json:"createAdlsSasTokenEndpointConfiguration"`
	}
	server.MustGraphQL(server.AdminToken, create, nil, &created)
	c := created.Create
	if c.Interval != "EVERY_12_HOURS" || !c.Enabled || c.ConnectionStatus != "SUCCESS" ||
		fmt.Sprint(c.EndpointConfiguration) != fmt.Sprintf("map[fileSystem:%s path:your/optional/path storageAccount:%s]", container, az.Account) {
		t.Fatalf("created %+v", c)
	}
	if blobs := az.ListBlobs(t, container, "your/optional/path/auditexport-verify-"); len(blobs) != 1 {
		t.Fatalf("verification blobs: %v", blobs)
	}

	newToken := az.ContainerSAS(t, container, createWrite, time.Time{}, time.Now().Add(2*time.Hour))
	update := `mutation { updateAdlsSasTokenExportConfiguration(data: { id: "<id>", interval: EVERY_2_HOURS, storageAccount: "…", fileSystem: "…", path: "…", sasToken: "…" }) { __typename } }`
	update = strings.NewReplacer(`"<id>"`, `"`+c.ID+`"`, `storageAccount: "…"`, `storageAccount: "`+az.Account+`"`,
		`fileSystem: "…"`, `fileSystem: "`+container+`"`, `path: "…"`, `path: "audit"`, `sasToken: "…"`, `sasToken: "`+newToken+`"`).Replace(update)
	var updated map[string]map[string]string
	server.MustGraphQL(server.AdminToken, update, nil, &updated)
	if updated["updateAdlsSasTokenExportConfiguration"]["__typename"] != "ExportConfiguration" {
		t.Fatalf("update answered %v", updated)
	}

	// The rest as for S3: disable, enable (a check), verify, export now, its jobs and tasks.
	for _, op := range []string{"disableExportConfiguration", "enableExportConfiguration", "verifyExportConfiguration"} {
		server.MustGraphQL(server.AdminToken, `mutation($id: ID!) { `+op+`(id: $id) { id } }`, map[string]any{"id": c.ID}, nil)
	}
	ingestNDJSON(t, server, eventtest.NDJSON(0, 500, time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), 10*time.Second))
	var run struct{ RunExportNow exportJob }
	server.MustGraphQL(server.AdminToken, `mutation($id: ID!) { runExportNow(id: $id) { id status eventCount objectCount } }`, map[string]any{"id": c.ID}, &run)
	if run.RunExportNow.Status != "SUCCEEDED" || run.RunExportNow.EventCount < 500 {
		t.Fatalf("runExportNow: %+v", run.RunExportNow)
	}
	var got struct {
		GetExportConfiguration json.RawMessage
		GetAllExportJobs       []exportJob
	}
	server.MustGraphQL(server.AdminToken, `query($id: ID!) { getExportConfiguration(id: $id) { `+configFields+` } getAllExportJobs(exportConfigurationId: $id) { id status } }`,
		map[string]any{"id": c.ID}, &got)
	var cfg exportConfig
	if err := json.Unmarshal(got.GetExportConfiguration, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Interval != "EVERY_2_HOURS" || str(cfg.EndpointConfiguration.Path) != "audit" || cfg.ConnectionStatus != "SUCCESS" || len(got.GetAllExportJobs) != 1 {
		t.Fatalf("after the update and the export: %s %+v", got.GetExportConfiguration, got.GetAllExportJobs)
	}
	var tasks struct{ GetAllExportJobTasks []exportTask }
	server.MustGraphQL(server.AdminToken, `query($id: String!) { getAllExportJobTasks(exportJobId: $id) { `+taskFields+` } }`, map[string]any{"id": run.RunExportNow.ID}, &tasks)
	var keys []string
	for _, task := range tasks.GetAllExportJobTasks {
		keys = append(keys, task.Key)
	}
	slices.Sort(keys)
	if blobs := az.ListBlobs(t, container, "audit/year="); len(keys) == 0 || !slices.Equal(blobs, keys) {
		t.Fatalf("task keys %v, blobs %v", keys, blobs)
	}
	for _, text := range []string{string(got.GetExportConfiguration), server.Logs()} {
		if strings.Contains(text, signature) || strings.Contains(text, token) {
			t.Fatal("the SAS token was returned or logged")
		}
	}
	server.MustGraphQL(server.AdminToken, `mutation($id: ID!) { deleteExportConfiguration(id: $id) { id } }`, map[string]any{"id": c.ID}, nil)

	// A quoted interval that names none is refused with the store's message; so is an S3 update
	// of an ADLS configuration, naming the right mutation.
	bad := strings.Replace(create, `"EVERY_12_HOURS"`, `"EVERY_MINUTE"`, 1)
	if resp := server.GraphQL(server.AdminToken, bad, nil); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "BAD_USER_INPUT" ||
		!strings.Contains(resp.Errors[0].Message, "interval") {
		t.Fatalf("an unknown interval: %s", resp.Body)
	}
}

// sasSignature is the secret part of a SAS token.
func sasSignature(t *testing.T, token string) string {
	t.Helper()
	_, after, ok := strings.Cut(token, "sig=")
	if !ok {
		t.Fatalf("no signature in %q", token)
	}
	sig, _, _ := strings.Cut(after, "&")
	return sig
}

// Checks of a token that cannot write name the cause in Immuta's form, on the real server.
func TestADLSCheckFailuresNameTheirCause(t *testing.T) {
	az := azuritetest.Require(t)
	container := az.NewContainer(t)
	server := testserver.Start(t, testserver.Options{})
	now := time.Now()
	expired := az.ContainerSAS(t, container, createWrite, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	for name, c := range map[string]struct{ fileSystem, token, want string }{
		"expired": {container, expired,
			"Error testing access to ADLS using SasToken - AuthorizationFailure: the SAS token expired at " + now.Add(-24*time.Hour).UTC().Format(time.RFC3339) + ". "},
		"read-only": {container, az.ContainerSAS(t, container, sas.ContainerPermissions{Read: true}, time.Time{}, now.Add(time.Hour)),
			"Error testing access to ADLS using SasToken - AuthorizationPermissionMismatch: the SAS token does not allow create and write (it grants sp=r; grant sp=cw on the file system). "},
		"unknown container": {"missing-container", az.ContainerSAS(t, "missing-container", createWrite, time.Time{}, now.Add(time.Hour)),
			`Error testing access to ADLS using SasToken - ContainerNotFound: the file system (container) "missing-container" does not exist in storage account "devstoreaccount1". `},
	} {
		var out struct {
			C struct{ ConnectionStatus string } `json:"createAdlsSasTokenEndpointConfiguration"`
		}
		server.MustGraphQL(server.AdminToken, `mutation($d: AdlsSasTokenExportConfigurationInput!) { createAdlsSasTokenEndpointConfiguration(data: $d) { connectionStatus } }`,
			map[string]any{"d": map[string]any{"interval": "EVERY_HOUR", "storageAccount": az.Account, "fileSystem": c.fileSystem, "sasToken": c.token, "endpoint": az.Endpoint}}, &out)
		if got := out.C.ConnectionStatus; !strings.HasPrefix(got, c.want) || strings.Contains(got, sasSignature(t, c.token)) {
			t.Errorf("%s: connectionStatus %q\nwant prefix %q", name, got, c.want)
		}
	}
}
