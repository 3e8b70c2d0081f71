package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// securityOperations is one operation per root field of the schema, with the permission it
// needs ("" for any valid token). TestSecurity fails when the schema has a field this table lacks.
var securityOperations = map[string]struct {
	query      string
	permission string
}{
	"getAllExportConfigurations":              {`{ getAllExportConfigurations { id } }`, "AUDIT"},
	"getExportConfiguration":                  {`{ getExportConfiguration(id: "x") { id } }`, "AUDIT"},
	"auditEvents":                             {`{ auditEvents { pageInfo { hasNextPage } } }`, "AUDIT"},
	"eventBuffer":                             {`{ eventBuffer { events } }`, "AUDIT"},
	"getAllExportJobs":                        {`{ getAllExportJobs(exportConfigurationId: "x") { id } }`, "AUDIT"},
	"getAllExportJobTasks":                    {`{ getAllExportJobTasks(exportJobId: "x") { id } }`, "AUDIT"},
	"createS3AccessKeyExportConfiguration":    {`mutation { createS3AccessKeyExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" accessKeyId: "AKIAIOSFODNN7EXAMPLE" secretAccessKey: "YOUR/SECRET/ACCESSKEY" }) { id } }`, "AUDIT"},
	"createS3AssumedRoleExportConfiguration":  {`mutation { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" }) { id } }`, "AUDIT"},
	"updateS3AccessKeyExportConfiguration":    {`mutation { updateS3AccessKeyExportConfiguration(data: { id: "x" }) { id } }`, "AUDIT"},
	"updateS3AssumedRoleExportConfiguration":  {`mutation { updateS3AssumedRoleExportConfiguration(data: { id: "x" }) { id } }`, "AUDIT"},
	"createAdlsSasTokenEndpointConfiguration": {`mutation { createAdlsSasTokenEndpointConfiguration(data: { interval: "EVERY_HOUR", storageAccount: "account1", fileSystem: "files", sasToken: "sv=2024-01-01&sp=cw&sig=c2VjcmV0" }) { id } }`, "AUDIT"},
	"updateAdlsSasTokenExportConfiguration":   {`mutation { updateAdlsSasTokenExportConfiguration(data: { id: "x" }) { id } }`, "AUDIT"},
	"enableExportConfiguration":               {`mutation { enableExportConfiguration(id: "x") { id } }`, "AUDIT"},
	"disableExportConfiguration":              {`mutation { disableExportConfiguration(id: "x") { id } }`, "AUDIT"},
	"deleteExportConfiguration":               {`mutation { deleteExportConfiguration(id: "x") { id } }`, "AUDIT"},
	"verifyExportConfiguration":               {`mutation { verifyExportConfiguration(id: "x") { id } }`, "AUDIT"},
	"runExportNow":                            {`mutation { runExportNow(id: "x") { id } }`, "AUDIT"},
	"createApiToken":                          {`mutation { createApiToken(name: "n", permissions: [AUDIT]) }`, "ADMIN"},
	"apiTokens":                               {`{ apiTokens { name } }`, "ADMIN"},
	"digestPublicKey":                         {`{ digestPublicKey }`, "AUDIT"},
	"revokeApiToken":                          {`mutation { revokeApiToken(name: "no-such-token") { name } }`, "ADMIN"},
	"viewer":                                  {`{ viewer { name permissions } }`, ""}, // any valid token: who it is
}

// httpCall is one request to the real server, returning status and body.
func httpCall(t *testing.T, method, url, token, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestSecurity(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	dataDir := filepath.Join(t.TempDir(), "data")
	server := testserver.Start(t, testserver.Options{DataDir: dataDir, Env: []string{"AWS_MAX_ATTEMPTS=3"}})
	admin := server.AdminToken
	graphql := server.URL + "/api/audit/graphql"
	var responses []string // every body the server sent, scanned for secrets at the end
	call := func(method, url, token, contentType string, body []byte) (int, string) {
		status, out := httpCall(t, method, url, token, contentType, body)
		responses = append(responses, out)
		return status, out
	}
	query := func(token, q string, vars map[string]any) (int, string) {
		body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
		return call(http.MethodPost, graphql, token, "application/json", body)
	}
	newToken := func(name, permission string) string {
		_, out := query(admin, `mutation($n: String!, $p: [Permission!]!) { createApiToken(name: $n, permissions: $p) }`, map[string]any{"n": name, "p": []string{permission}})
		var resp struct {
			Data struct{ CreateAPIToken string }
		}
		json.Unmarshal([]byte(out), &resp)
		return resp.Data.CreateAPIToken
	}
	tokens := map[string]string{"AUDIT": newToken("auditor", "AUDIT"), "INGEST": newToken("ingester", "INGEST"), "METRICS": newToken("prometheus", "METRICS")}
	lacking := map[string]string{"AUDIT": tokens["INGEST"], "ADMIN": tokens["AUDIT"], "INGEST": tokens["AUDIT"], "METRICS": tokens["INGEST"]}

	t.Run("every GraphQL operation", func(t *testing.T) {
		_, out := query(admin, `{ __schema { queryType { fields { name } } mutationType { fields { name } } } }`, nil)
		var schema struct {
			Data struct {
				Schema struct {
					QueryType, MutationType struct{ Fields []struct{ Name string } }
				} `json:"__schema"`
			}
		}
		if err := json.Unmarshal([]byte(out), &schema); err != nil {
			t.Fatal(err)
		}
		fields := append(schema.Data.Schema.QueryType.Fields, schema.Data.Schema.MutationType.Fields...)
		if len(fields) < len(securityOperations) {
			t.Fatalf("introspection found %d root fields: %s", len(fields), out)
		}
		for _, f := range fields {
			op, ok := securityOperations[f.Name]
			if !ok {
				t.Errorf("the schema has %s, which this test does not cover: add it to securityOperations", f.Name)
				continue
			}
			for _, c := range []struct {
				token  string
				status int
				code   string
			}{{"", 401, "UNAUTHENTICATED"}, {"aex_0000000000000000_wrongwrongwrongwrongwrongwrongwrongwrongwro", 401, "UNAUTHENTICATED"}, {lacking[op.permission], 403, "FORBIDDEN"}} {
				if op.permission == "" && c.code == "FORBIDDEN" {
					if status, body := query(tokens["INGEST"], op.query, nil); status != 200 || strings.Contains(body, `"errors"`) {
						t.Errorf("%s with an INGEST token: %d %s; want it answered", f.Name, status, body)
					}
					continue
				}
				status, body := query(c.token, op.query, nil)
				if status != c.status || !strings.Contains(body, `"code":"`+c.code+`"`) || strings.Contains(body, `"data":{"`+f.Name+`":{`) {
					t.Errorf("%s with token %.10q: %d %s; want %d %s", f.Name, c.token, status, body, c.status, c.code)
				}
			}
		}
	})

	t.Run("every HTTP route", func(t *testing.T) {
		event := eventtest.Sample(1, time.Now())
		routes := []struct {
			method, path, contentType string
			body                      []byte
			permission                string
		}{
			{http.MethodPost, "/api/audit/graphql", "application/json", []byte(`{"query":"{ __typename }"}`), ""},
			{http.MethodPost, "/api/audit/events", "application/x-ndjson", event, "INGEST"},
			{http.MethodGet, "/metrics", "", nil, "METRICS"},
		}
		for _, r := range routes {
			for _, token := range []string{"", "not-a-valid-token-value"} {
				if status, body := call(r.method, server.URL+r.path, token, r.contentType, r.body); status != 401 || !strings.Contains(body, "UNAUTHENTICATED") {
					t.Errorf("%s %s with token %q: %d %s", r.method, r.path, token, status, body)
				}
			}
			if r.permission != "" {
				if status, body := call(r.method, server.URL+r.path, lacking[r.permission], r.contentType, r.body); status != 403 || !strings.Contains(body, "FORBIDDEN") {
					t.Errorf("%s %s without %s: %d %s", r.method, r.path, r.permission, status, body)
				}
				if status, _ := call(r.method, server.URL+r.path, tokens[r.permission], r.contentType, r.body); status >= 400 {
					t.Errorf("%s %s with %s: %d", r.method, r.path, r.permission, status)
				}
			}
		}
		// Public by design, and carrying no data: health checks, the playground and console pages.
		for _, path := range []string{"/healthz", "/readyz", "/api/audit/graphql", "/", "/console/app.js"} {
			if status, _ := call(http.MethodGet, server.URL+path, "", "", nil); status != 200 {
				t.Errorf("GET %s: %d", path, status)
			}
		}
	})

	t.Run("limits", func(t *testing.T) {
		big := []byte(`{"query":"{ __typename }","variables":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`)
		if status, _ := call(http.MethodPost, graphql, admin, "application/json", big); status != 413 {
			t.Errorf("a body over 1 MiB: %d", status)
		}
		deep := "{ __schema { types { " + strings.Repeat("ofType { ", 30) + "name" + strings.Repeat(" }", 30) + " } } }"
		if _, body := query(admin, deep, nil); !strings.Contains(body, "more than the limit") {
			t.Errorf("a deeply nested query: %.300s", body)
		}
		var wide strings.Builder
		for i := range 300 {
			wide.WriteString(" a" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ": getAllExportConfigurations { id }")
		}
		if _, body := query(admin, "{"+wide.String()+" }", nil); !strings.Contains(body, "exceeds the limit") {
			t.Errorf("a query of 300 aliases: %.300s", body)
		}
	})

	t.Run("path traversal and odd Unicode", func(t *testing.T) {
		before, _ := query(admin, `{ getAllExportConfigurations { id } }`, nil)
		for _, path := range []string{"../escape", "a/../../b", "/abs", "a//b", "./a", "caf\u00e9", "a\u202eb", "a\u200bb", "a\uff0fb", "a\x00b", "a\\b", "%2e%2e/x"} {
			_, body := query(admin, `mutation($p: String) { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" path: $p }) { id } }`, map[string]any{"p": path})
			if !strings.Contains(body, `"code":"BAD_USER_INPUT"`) || !strings.Contains(body, "path:") {
				t.Errorf("path %q: %s", path, body)
			}
		}
		if after, _ := query(admin, `{ getAllExportConfigurations { id } }`, nil); after != before {
			t.Error("refused paths changed the stored configurations")
		}
	})

	// Everything that handles secrets, once: create, update with a new secret, check, export.
	newSecret := secret + "-rotated"
	_, out := query(tokens["AUDIT"], `mutation($d: S3AccessKeyExportConfigurationInput!) { createS3AccessKeyExportConfiguration(data: $d) { id connectionStatus } }`,
		map[string]any{"d": map[string]any{"interval": "EVERY_HOUR", "bucket": bucket, "region": "us-east-1", "endpoint": srv.Endpoint, "accessKeyId": key, "secretAccessKey": secret}})
	var created struct {
		Data struct {
			CreateS3AccessKeyExportConfiguration struct{ ID, ConnectionStatus string }
		}
	}
	json.Unmarshal([]byte(out), &created)
	id := created.Data.CreateS3AccessKeyExportConfiguration.ID
	if created.Data.CreateS3AccessKeyExportConfiguration.ConnectionStatus != "SUCCESS" {
		t.Fatalf("create: %s", out)
	}
	call(http.MethodPost, server.URL+"/api/audit/events", tokens["INGEST"], "application/x-ndjson", eventtest.NDJSON(0, 20, time.Now(), time.Second))
	query(admin, `mutation($id: ID!) { runExportNow(id: $id) { status } }`, map[string]any{"id": id})
	query(admin, `mutation($id: ID!, $s: String!) { updateS3AccessKeyExportConfiguration(data: { id: $id secretAccessKey: $s }) { connectionStatus } }`, map[string]any{"id": id, "s": newSecret})
	query(admin, `mutation($id: ID!) { verifyExportConfiguration(id: $id) { connectionStatus } }`, map[string]any{"id": id})
	query(admin, `{ getAllExportConfigurations { id name connectionStatus endpointConfiguration { ... on S3AccessKeyEndpointConfiguration { bucket accessKeyId endpoint } } lastExport { failureReason } } }`, nil)
	query(admin, `{ auditEvents(first: 1000) { edges { node { id auditPayload additionalFields actor { name } } } } }`, nil)
	_, metrics := call(http.MethodGet, server.URL+"/metrics", tokens["METRICS"], "", nil)
	if !strings.Contains(metrics, "auditexport_export_events_total") {
		t.Fatalf("the metrics scrape proves nothing: %.300s", metrics)
	}
	server.Stop()

	masterKey, _ := os.ReadFile(filepath.Join(dataDir, "master.key"))
	db, err := os.ReadFile(filepath.Join(dataDir, "auditexport.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(db, []byte(key)) {
		t.Fatal("the data file lacks the access key id: the secret scan would prove nothing")
	}
	secrets := map[string]string{"the secret": secret, "the rotated secret": newSecret, "the admin token": admin,
		"the master key": strings.TrimSpace(string(masterKey))}
	for name, tok := range tokens {
		secrets[name+" token"] = tok
	}
	places := map[string]string{"the logs": server.Logs(), "the data file": string(db), "a response": strings.Join(responses, "\n")}
	for what, s := range secrets {
		for where, text := range places {
			if strings.Contains(text, s) && !(where == "a response" && slices.Contains([]string{"AUDIT token", "INGEST token", "METRICS token"}, what)) {
				t.Errorf("%s appears in %s", what, where)
			}
		}
	}

	t.Run("file modes", func(t *testing.T) {
		for path, want := range map[string]os.FileMode{
			"": 0o700, "export-tmp": 0o700, "auditexport.db": 0o600, "master.key": 0o600, "admin-token": 0o600,
		} {
			info, err := os.Stat(filepath.Join(dataDir, path))
			if err != nil || info.Mode().Perm() != want {
				t.Errorf("%s: %v %v, want %v", path, info.Mode().Perm(), err, want)
			}
		}
	})
}
