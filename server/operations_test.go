package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/auditexport/auditexport/store"
)

func TestEveryConfigurationOperation(t *testing.T) {
	api := newTestAPI(t)
	c := api.client(adminToken)

	var ak struct{ CreateS3AccessKeyExportConfiguration configResult }
	c.MustPost(`mutation($d: S3AccessKeyExportConfigurationInput!) { createS3AccessKeyExportConfiguration(data: $d) { `+configFields+` } }`, &ak,
		client.Var("d", map[string]any{
			"interval": "EVERY_HOUR", "bucket": "audit-bucket", "path": "tenant=acme/audit", "region": "us-east-1",
			"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": testSecret, "endpoint": "http://127.0.0.1:9000",
		}))
	a := ak.CreateS3AccessKeyExportConfiguration
	if a.EndpointConfiguration.Typename != "S3AccessKeyEndpointConfiguration" || a.EndpointConfiguration.AccessKeyID != "AKIAIOSFODNN7EXAMPLE" ||
		deref(a.EndpointConfiguration.Endpoint) != "http://127.0.0.1:9000" || a.CreatedBy != "admin" || a.UpdatedBy != "admin" ||
		a.ConnectionStatus != "PENDING" || a.ConnectionCheckedAt != nil || a.CreatedAt == "" {
		t.Fatalf("access-key configuration = %+v", a)
	}

	var ar struct{ CreateS3AssumedRoleExportConfiguration configResult }
	c.MustPost(`mutation { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_24_HOURS bucket: "role-bucket" region: "eu-central-1" roleArn: "arn:aws:iam::123456789012:role/auditexport" }) { `+configFields+` } }`, &ar)
	r := ar.CreateS3AssumedRoleExportConfiguration
	if r.EndpointConfiguration.Typename != "S3AssumedRoleEndpointConfiguration" || r.EndpointConfiguration.ExternalID != r.ID ||
		r.EndpointConfiguration.RoleArn != "arn:aws:iam::123456789012:role/auditexport" || r.EndpointConfiguration.Path != nil ||
		r.EndpointConfiguration.Endpoint != nil {
		t.Fatalf("assumed-role configuration = %+v", r)
	}

	// An AUDIT token's name is what updatedBy records.
	var tok struct{ CreateAPIToken string }
	c.MustPost(`mutation { createApiToken(name: "ci-pipeline", permissions: [AUDIT]) }`, &tok)
	ci := api.client(tok.CreateAPIToken)

	t.Run("update access key keeps the secret when omitted and clears path with null", func(t *testing.T) {
		var up struct{ UpdateS3AccessKeyExportConfiguration configResult }
		ci.MustPost(`mutation($id: ID!) { updateS3AccessKeyExportConfiguration(data: { id: $id interval: EVERY_6_HOURS path: null }) { `+configFields+` } }`, &up, client.Var("id", a.ID))
		u := up.UpdateS3AccessKeyExportConfiguration
		if u.Interval != "EVERY_6_HOURS" || u.EndpointConfiguration.Path != nil || u.UpdatedBy != "ci-pipeline" || u.CreatedBy != "admin" ||
			u.EndpointConfiguration.Bucket != "audit-bucket" || deref(u.EndpointConfiguration.Endpoint) != "http://127.0.0.1:9000" {
			t.Fatalf("updated = %+v", u)
		}
		if s, _ := api.store.Secret(t.Context(), a.ID); s != testSecret {
			t.Fatal("an update without secretAccessKey changed the secret")
		}
		ci.MustPost(`mutation($id: ID!) { updateS3AccessKeyExportConfiguration(data: { id: $id secretAccessKey: "rotated/secret/value" endpoint: "" }) { id } }`, &up, client.Var("id", a.ID))
		if s, _ := api.store.Secret(t.Context(), a.ID); s != "rotated/secret/value" {
			t.Fatal("the new secret was not stored")
		}
		got, _ := api.store.Configuration(t.Context(), a.ID)
		if got.Endpoint != "" {
			t.Fatalf("endpoint \"\" did not clear it: %+v", got)
		}
	})
	t.Run("update assumed role", func(t *testing.T) {
		var up struct{ UpdateS3AssumedRoleExportConfiguration configResult }
		ci.MustPost(`mutation($id: ID!) { updateS3AssumedRoleExportConfiguration(data: { id: $id roleArn: "arn:aws:iam::210987654321:role/other" bucket: "new-bucket" path: "p" }) { `+configFields+` } }`, &up, client.Var("id", r.ID))
		u := up.UpdateS3AssumedRoleExportConfiguration
		if u.EndpointConfiguration.RoleArn != "arn:aws:iam::210987654321:role/other" || u.EndpointConfiguration.Bucket != "new-bucket" ||
			deref(u.EndpointConfiguration.Path) != "p" || u.EndpointConfiguration.ExternalID != r.ID || u.Interval != "EVERY_24_HOURS" {
			t.Fatalf("updated = %+v", u)
		}
	})
	t.Run("server-side encryption: set, key dropped when leaving KMS, cleared with null", func(t *testing.T) {
		type sse struct {
			ServerSideEncryption *string
			SseKmsKeyID          *string
		}
		set := func(fields string) sse {
			t.Helper()
			var up struct {
				UpdateS3AssumedRoleExportConfiguration struct{ EndpointConfiguration sse }
			}
			ci.MustPost(`mutation($id: ID!) { updateS3AssumedRoleExportConfiguration(data: { id: $id `+fields+` }) {
				endpointConfiguration { ... on S3AssumedRoleEndpointConfiguration { serverSideEncryption sseKmsKeyId } } } }`, &up, client.Var("id", r.ID))
			return up.UpdateS3AssumedRoleExportConfiguration.EndpointConfiguration
		}
		if got := set(`serverSideEncryption: AWS_KMS sseKmsKeyId: "alias/audit"`); deref(got.ServerSideEncryption) != "AWS_KMS" || deref(got.SseKmsKeyID) != "alias/audit" {
			t.Fatalf("set SSE-KMS: %+v", got)
		}
		if stored, _ := api.store.Configuration(t.Context(), r.ID); stored.ServerSideEncryption != store.SSEKMS || stored.ConnectionStatus == "SUCCESS" {
			t.Fatalf("stored %q, status %q: want aws:kms and a check voided by the change", stored.ServerSideEncryption, stored.ConnectionStatus)
		}
		if got := set(`serverSideEncryption: AES256`); deref(got.ServerSideEncryption) != "AES256" || got.SseKmsKeyID != nil {
			t.Fatalf("switch to SSE-S3: %+v", got)
		}
		if got := set(`serverSideEncryption: null`); got.ServerSideEncryption != nil {
			t.Fatalf("clear: %+v", got)
		}
	})
	t.Run("get one and all", func(t *testing.T) {
		var one struct{ GetExportConfiguration configResult }
		ci.MustPost(`query($id: ID!) { getExportConfiguration(id: $id) { `+configFields+` } }`, &one, client.Var("id", r.ID))
		if one.GetExportConfiguration.ID != r.ID || one.GetExportConfiguration.EndpointConfiguration.Bucket != "new-bucket" {
			t.Fatalf("getExportConfiguration = %+v", one)
		}
		var all struct{ GetAllExportConfigurations []configResult }
		ci.MustPost(`{ getAllExportConfigurations { `+configFields+` } }`, &all)
		if len(all.GetAllExportConfigurations) != 2 {
			t.Fatalf("getAllExportConfigurations returned %d", len(all.GetAllExportConfigurations))
		}
	})
	t.Run("disable, enable, delete", func(t *testing.T) {
		var d struct{ DisableExportConfiguration configResult }
		ci.MustPost(`mutation($id: ID!) { disableExportConfiguration(id: $id) { `+configFields+` } }`, &d, client.Var("id", a.ID))
		if d.DisableExportConfiguration.Enabled {
			t.Fatal("still enabled")
		}
		var e struct{ EnableExportConfiguration configResult }
		ci.MustPost(`mutation($id: ID!) { enableExportConfiguration(id: $id) { `+configFields+` } }`, &e, client.Var("id", a.ID))
		if !e.EnableExportConfiguration.Enabled {
			t.Fatal("not enabled")
		}
		var del struct{ DeleteExportConfiguration configResult }
		ci.MustPost(`mutation($id: ID!) { deleteExportConfiguration(id: $id) { `+configFields+` } }`, &del, client.Var("id", a.ID))
		if del.DeleteExportConfiguration.ID != a.ID {
			t.Fatalf("deleted %+v", del)
		}
		if _, err := api.store.Secret(t.Context(), a.ID); err == nil {
			t.Fatal("the secret outlived its configuration")
		}
		var all struct{ GetAllExportConfigurations []configResult }
		ci.MustPost(`{ getAllExportConfigurations { id } }`, &all)
		if len(all.GetAllExportConfigurations) != 1 || all.GetAllExportConfigurations[0].ID != r.ID {
			t.Fatalf("after delete: %+v", all)
		}
	})
	t.Run("the secret cannot be selected", func(t *testing.T) {
		status, resp := api.query(adminToken, `{ getAllExportConfigurations { endpointConfiguration { ... on S3AccessKeyEndpointConfiguration { secretAccessKey } } } }`, nil)
		if status != http.StatusUnprocessableEntity || !strings.Contains(resp.message(), "secretAccessKey") {
			t.Fatalf("status %d, %s", status, resp.Body)
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestBadInputIsRefusedAndStoresNothing(t *testing.T) {
	api := newTestAPI(t)
	var seed struct{ CreateS3AccessKeyExportConfiguration struct{ ID string } }
	api.client(adminToken).MustPost(`mutation { createS3AccessKeyExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" accessKeyId: "AKIAIOSFODNN7EXAMPLE" secretAccessKey: "YOUR/SECRET/ACCESSKEY" }) { id } }`, &seed)
	id := seed.CreateS3AccessKeyExportConfiguration.ID
	var role struct{ CreateS3AssumedRoleExportConfiguration struct{ ID string } }
	api.client(adminToken).MustPost(`mutation { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" }) { id } }`, &role)
	roleID := role.CreateS3AssumedRoleExportConfiguration.ID
	before, _ := api.store.Configurations(t.Context())

	createAK := func(field string, value any) (string, map[string]any) {
		d := map[string]any{"interval": "EVERY_HOUR", "bucket": "audit-bucket", "region": "us-east-1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": testSecret}
		d[field] = value
		return `mutation($d: S3AccessKeyExportConfigurationInput!) { createS3AccessKeyExportConfiguration(data: $d) { id } }`, map[string]any{"d": d}
	}
	createAR := func(field string, value any) (string, map[string]any) {
		d := map[string]any{"interval": "EVERY_HOUR", "bucket": "audit-bucket", "region": "us-east-1", "roleArn": "arn:aws:iam::123456789012:role/r"}
		d[field] = value
		return `mutation($d: S3AssumedRoleExportConfigurationInput!) { createS3AssumedRoleExportConfiguration(data: $d) { id } }`, map[string]any{"d": d}
	}
	updateAK := func(field string, value any) (string, map[string]any) {
		return `mutation($d: UpdateS3AccessKeyExportConfigurationInput!) { updateS3AccessKeyExportConfiguration(data: $d) { id } }`,
			map[string]any{"d": map[string]any{"id": id, field: value}}
	}
	type tc struct {
		query    string
		vars     map[string]any
		code     string
		contains string
	}
	with := func(q string, v map[string]any, code, contains string) tc { return tc{q, v, code, contains} }
	tests := map[string]tc{}
	add := func(name string, c tc) { tests[name] = c }
	q, v := createAK("bucket", "Invalid_Bucket")
	add("bucket with upper case and underscore", with(q, v, "BAD_USER_INPUT", "bucket: may contain only lower-case"))
	q, v = createAK("bucket", "ab")
	add("bucket too short", with(q, v, "BAD_USER_INPUT", "bucket: must be 3 to 63"))
	q, v = createAK("bucket", "10.0.0.1")
	add("bucket like an IP address", with(q, v, "BAD_USER_INPUT", "IP address"))
	q, v = createAK("region", "moon-base")
	add("region", with(q, v, "BAD_USER_INPUT", "region: must be an AWS region"))
	q, v = createAR("roleArn", "arn:aws:iam::123:role/x")
	add("role ARN", with(q, v, "BAD_USER_INPUT", "roleArn: must be an IAM role ARN"))
	q, v = createAK("path", "/leading")
	add("path with leading slash", with(q, v, "BAD_USER_INPUT", "path: must not begin with '/'"))
	q, v = createAK("path", "a/../b")
	add("path with ..", with(q, v, "BAD_USER_INPUT", "'..'"))
	q, v = createAK("path", "a//b")
	add("path with empty segment", with(q, v, "BAD_USER_INPUT", "empty segments"))
	q, v = createAK("path", strings.Repeat("p", 513))
	add("path over 512 bytes", with(q, v, "BAD_USER_INPUT", "at most 512 bytes"))
	q, v = createAK("path", "caf\u00e9/\u202etxt")
	add("path with odd unicode", with(q, v, "BAD_USER_INPUT", "may contain only ASCII"))
	q, v = createAK("endpoint", "https://user:pw@s3.example.com")
	add("endpoint with credentials", with(q, v, "BAD_USER_INPUT", "must not contain user credentials"))
	q, v = createAK("secretAccessKey", "short")
	add("secret too short", with(q, v, "BAD_USER_INPUT", "secretAccessKey: must be 8"))
	q, v = createAK("interval", "EVERY_3_HOURS")
	add("interval outside the enum", with(q, v, "GRAPHQL_VALIDATION_FAILED", "EVERY_3_HOURS"))
	add("interval literal outside the enum", with(`mutation { createS3AssumedRoleExportConfiguration(data: { interval: HOURLY bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" }) { id } }`, nil, "GRAPHQL_VALIDATION_FAILED", "HOURLY"))
	q, v = createAR("startTime", time.Now().Add(time.Hour).Format(time.RFC3339))
	add("start time in the future", with(q, v, "BAD_USER_INPUT", "startTime: must not be in the future"))
	q, v = createAR("startTime", "last week")
	add("start time not a time", with(q, v, "BAD_USER_INPUT", "RFC 3339"))
	q, v = createAK("sseKmsKeyId", "alias/audit")
	add("KMS key without SSE-KMS", with(q, v, "BAD_USER_INPUT", "sseKmsKeyId: is used only with server-side encryption aws:kms"))
	q, v = createAK("serverSideEncryption", "aws:kms")
	add("encryption outside the enum", with(q, v, "GRAPHQL_VALIDATION_FAILED", "aws:kms"))
	q, v = createAK("accessKeyId", nil)
	add("missing required field", with(q, v, "GRAPHQL_VALIDATION_FAILED", "variable $d.accessKeyId: cannot be null"))
	q, v = updateAK("bucket", "BAD")
	add("update with bad bucket", with(q, v, "BAD_USER_INPUT", "bucket"))
	q, v = updateAK("region", "x")
	add("update with bad region", with(q, v, "BAD_USER_INPUT", "region"))
	add("update of the other kind", with(`mutation($id: ID!) { updateS3AssumedRoleExportConfiguration(data: { id: $id bucket: "other-bucket" }) { id } }`,
		map[string]any{"id": id}, "BAD_USER_INPUT", "use updateS3AccessKeyExportConfiguration"))
	add("secret on an assumed-role update is not a field", with(`mutation($id: ID!) { updateS3AssumedRoleExportConfiguration(data: { id: $id secretAccessKey: "x" }) { id } }`,
		map[string]any{"id": roleID}, "GRAPHQL_VALIDATION_FAILED", "secretAccessKey"))
	for _, op := range []string{"enableExportConfiguration", "disableExportConfiguration", "deleteExportConfiguration", "verifyExportConfiguration", "runExportNow"} {
		add(op+" of an unknown id", with(`mutation { `+op+`(id: "01a1ffdb-3f23-7df1-80b5-645a8cda7506") { id } }`, nil, "NOT_FOUND", `export configuration "01a1ffdb-3f23-7df1-80b5-645a8cda7506" not found`))
	}
	add("get of an unknown id", with(`{ getExportConfiguration(id: "no-such-id") { id } }`, nil, "NOT_FOUND", `"no-such-id" not found`))
	add("update of an unknown id", with(`mutation { updateS3AccessKeyExportConfiguration(data: { id: "nope" }) { id } }`, nil, "NOT_FOUND", "not found"))
	add("token without permissions", with(`mutation { createApiToken(name: "x", permissions: []) }`, nil, "BAD_USER_INPUT", "at least one permission"))
	add("token with a bad name", with(`mutation { createApiToken(name: "", permissions: [AUDIT]) }`, nil, "BAD_USER_INPUT", "name"))
	add("token with a taken name", with(`mutation { createApiToken(name: "admin", permissions: [AUDIT]) }`, nil, "CONFLICT", "already exists"))

	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			_, resp := api.query(adminToken, c.query, c.vars)
			if resp.code() != c.code || !strings.Contains(resp.message(), c.contains) {
				t.Fatalf("got code %q message %q; want %q containing %q\n%s", resp.code(), resp.message(), c.code, c.contains, resp.Body)
			}
		})
	}
	after, _ := api.store.Configurations(t.Context())
	if len(after) != len(before) {
		t.Fatalf("bad input changed the number of configurations: %d -> %d", len(before), len(after))
	}
	for i := range before {
		if after[i] != before[i] {
			t.Errorf("bad input changed a configuration:\n%+v\n%+v", before[i], after[i])
		}
	}
	if s, _ := api.store.Secret(t.Context(), id); s != testSecret {
		t.Error("bad input changed a secret")
	}
}

func TestAuthentication(t *testing.T) {
	api := newTestAPI(t)
	ingest, _, err := api.store.CreateToken(t.Context(), "ingester", []store.Permission{store.PermissionIngest}, store.Principal{Name: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	audit, _, err := api.store.CreateToken(t.Context(), "auditor", []store.Permission{store.PermissionAudit}, store.Principal{Name: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	operations := map[string]string{
		"getAllExportConfigurations":             `{ getAllExportConfigurations { id } }`,
		"getExportConfiguration":                 `{ getExportConfiguration(id: "x") { id } }`,
		"createS3AccessKeyExportConfiguration":   `mutation { createS3AccessKeyExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" accessKeyId: "AKIAIOSFODNN7EXAMPLE" secretAccessKey: "YOUR/SECRET/ACCESSKEY" }) { id } }`,
		"createS3AssumedRoleExportConfiguration": `mutation { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_HOUR bucket: "audit-bucket" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/r" }) { id } }`,
		"updateS3AccessKeyExportConfiguration":   `mutation { updateS3AccessKeyExportConfiguration(data: { id: "x" }) { id } }`,
		"updateS3AssumedRoleExportConfiguration": `mutation { updateS3AssumedRoleExportConfiguration(data: { id: "x" }) { id } }`,
		"enableExportConfiguration":              `mutation { enableExportConfiguration(id: "x") { id } }`,
		"disableExportConfiguration":             `mutation { disableExportConfiguration(id: "x") { id } }`,
		"deleteExportConfiguration":              `mutation { deleteExportConfiguration(id: "x") { id } }`,
		"verifyExportConfiguration":              `mutation { verifyExportConfiguration(id: "x") { id } }`,
		"auditEvents":                            `{ auditEvents { pageInfo { hasNextPage } } }`,
		"eventBuffer":                            `{ eventBuffer { events } }`,
		"runExportNow":                           `mutation { runExportNow(id: "x") { id } }`,
		"getAllExportJobs":                       `{ getAllExportJobs(exportConfigurationId: "x") { id } }`,
		"getAllExportJobTasks":                   `{ getAllExportJobTasks(exportJobId: "x") { id } }`,
		"createApiToken":                         `mutation { createApiToken(name: "new", permissions: [AUDIT]) }`,
		"apiTokens":                              `{ apiTokens { name } }`,
		"digestPublicKey":                        `{ digestPublicKey }`,
		"revokeApiToken":                         `mutation { revokeApiToken(name: "no-such-token") { name } }`,
	}
	for name, query := range operations {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				token  string
				status int
				code   string
			}{
				{"", http.StatusUnauthorized, "UNAUTHENTICATED"},
				{"wrong-token-value", http.StatusUnauthorized, "UNAUTHENTICATED"},
				{ingest, http.StatusForbidden, "FORBIDDEN"},
			} {
				status, resp := api.query(tc.token, query, nil)
				if status != tc.status || resp.code() != tc.code || string(resp.Data) == `{"`+name+`":{}}` {
					t.Errorf("token %.8q: status %d code %q, want %d %q: %s", tc.token, status, resp.code(), tc.status, tc.code, resp.Body)
				}
			}
			// AUDIT may do everything but manage tokens.
			status, resp := api.query(audit, query, nil)
			if strings.Contains(strings.ToLower(name), "apitoken") {
				if status != http.StatusForbidden || resp.code() != "FORBIDDEN" || !strings.Contains(resp.message(), "ADMIN") {
					t.Errorf("AUDIT token managing tokens: %d %s", status, resp.Body)
				}
			} else if status != http.StatusOK || resp.code() == "FORBIDDEN" {
				t.Errorf("AUDIT token: %d %s", status, resp.Body)
			}
		})
	}
	if all, _ := api.store.Configurations(t.Context()); len(all) != 2 {
		t.Fatalf("want exactly the AUDIT token's two creates, got %d configurations", len(all))
	}
	for _, c := range mustConfigs(t, api) {
		if c.CreatedBy != "auditor" {
			t.Errorf("createdBy = %q, want the token's name", c.CreatedBy)
		}
	}
	t.Run("other schemes and malformed headers", func(t *testing.T) {
		for _, header := range []string{"Basic YWRtaW46cHc=", "Bearer", "Bearer ", adminToken, "bearer " + adminToken + "x"} {
			req := `{"query":"{ getAllExportConfigurations { id } }"}`
			rec := serve(api.handler, http.MethodPost, GraphQLPath, map[string]string{"Authorization": header, "Content-Type": "application/json"}, req)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("Authorization %.20q: status %d", header, rec.Code)
			}
		}
		rec := serve(api.handler, http.MethodPost, GraphQLPath, map[string]string{"Authorization": "bearer " + adminToken, "Content-Type": "application/json"}, `{"query":"{ getAllExportConfigurations { id } }"}`)
		if rec.Code != http.StatusOK {
			t.Errorf("lower-case bearer scheme refused: %d", rec.Code)
		}
	})
	t.Run("a revoked token is refused at once", func(t *testing.T) {
		var tok struct{ CreateAPIToken string }
		api.client(adminToken).MustPost(`mutation { createApiToken(name: "short-lived", permissions: [AUDIT]) }`, &tok)
		if status, _ := api.query(tok.CreateAPIToken, `{ apiTokens { name } }`, nil); status != http.StatusForbidden {
			t.Fatalf("an AUDIT token listing tokens: %d", status)
		}
		var revoked struct {
			RevokeAPIToken struct {
				Name        string
				Permissions []string
			}
		}
		api.client(adminToken).MustPost(`mutation { revokeApiToken(name: "Short-Lived") { name permissions } }`, &revoked)
		if revoked.RevokeAPIToken.Name != "short-lived" || fmt.Sprint(revoked.RevokeAPIToken.Permissions) != "[AUDIT]" {
			t.Fatalf("revokeApiToken = %+v", revoked)
		}
		if status, resp := api.query(tok.CreateAPIToken, `{ getAllExportConfigurations { id } }`, nil); status != http.StatusUnauthorized || resp.code() != "UNAUTHENTICATED" {
			t.Fatalf("revoked token: %d %s", status, resp.Body)
		}
		var list struct{ APITokens []struct{ Name string } }
		api.client(adminToken).MustPost(`{ apiTokens { name } }`, &list)
		for _, tk := range list.APITokens {
			if tk.Name == "short-lived" {
				t.Fatalf("apiTokens still lists the revoked token: %+v", list)
			}
		}
		if _, resp := api.query(adminToken, `mutation { revokeApiToken(name: "admin") { name } }`, nil); resp.code() != "BAD_USER_INPUT" || !strings.Contains(resp.message(), "cannot revoke itself") {
			t.Fatalf("a token revoking itself: %s", resp.Body)
		}
		if _, resp := api.query(adminToken, `mutation { revokeApiToken(name: "short-lived") { name } }`, nil); resp.code() != "NOT_FOUND" {
			t.Fatalf("revoking a revoked token: %s", resp.Body)
		}
	})
	t.Run("a created token works at once", func(t *testing.T) {
		var tok struct{ CreateAPIToken string }
		api.client(adminToken).MustPost(`mutation { createApiToken(name: "fresh", permissions: [AUDIT, INGEST]) }`, &tok)
		status, resp := api.query(tok.CreateAPIToken, `{ getAllExportConfigurations { id } }`, nil)
		if status != http.StatusOK || len(resp.Errors) != 0 {
			t.Fatalf("new token: %d %s", status, resp.Body)
		}
		if strings.Contains(api.logs.String(), tok.CreateAPIToken) {
			t.Fatal("the new token was logged")
		}
	})
}

func mustConfigs(t *testing.T, api *testAPI) []store.ExportConfiguration {
	t.Helper()
	cs, err := api.store.Configurations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func serve(h http.Handler, method, path string, headers map[string]string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
