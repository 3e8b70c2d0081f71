package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"

	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/internal/testserver"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
	"github.com/auditexport/auditexport/store/storetest"
)

const (
	adminToken = "test-admin-token-0123456789"
	testSecret = "YOUR/SECRET/ACCESSKEY"
)

type testAPI struct {
	t       testing.TB
	store   *store.Store
	handler http.Handler
	logs    *testserver.LogBuffer
}

func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	return newTestAPIWith(t, Config{}, store.BufferConfig{})
}

// newTestAPIWith builds the routes with cfg over a new store whose buffer has limits buf.
func newTestAPIWith(t testing.TB, cfg Config, buf store.BufferConfig) *testAPI {
	t.Helper()
	st := storetest.OpenBolt(t, filepath.Join(t.TempDir(), "auditexport.db"), store.Config{MasterKey: storetest.Key(), Buffer: buf}, bolt.Options{})
	return newTestAPIOn(t, cfg, st)
}

// newTestAPIOn builds the routes with cfg over st.
func newTestAPIOn(t testing.TB, cfg Config, st *store.Store) *testAPI {
	t.Helper()
	if err := st.SetBootstrapToken(t.Context(), adminToken); err != nil {
		t.Fatal(err)
	}
	logs := &testserver.LogBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The checker and exporter are not running: CheckNow returns configurations as stored
	// (PENDING) and RunNow the job it created (PENDING).
	clients := exporter.NewClients(exporter.ClientsConfig{})
	checker := exporter.NewChecker(exporter.CheckerConfig{}, st, clients)
	exp := exporter.NewExporter(exporter.ExporterConfig{TempDir: t.TempDir()}, st, clients)
	cfg.Logger, cfg.Playground = logger, true
	srv := New(cfg, st, checker, exp)
	api := &testAPI{t: t, store: st, handler: srv.Handler(), logs: logs}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testSecret) {
			t.Errorf("a secret appeared in the logs")
		}
	})
	return api
}

// client is a gqlgen test client sending token.
func (a *testAPI) client(token string) *client.Client {
	opts := []client.Option{client.Path(GraphQLPath)}
	if token != "" {
		opts = append(opts, client.AddHeader("Authorization", "Bearer "+token))
	}
	return client.New(a.handler, opts...)
}

// raw posts body to path and returns the status and decoded response.
func (a *testAPI) raw(method, path, token, contentType string, body []byte) (int, gqlResponse) {
	a.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	var resp gqlResponse
	resp.Body = rec.Body.String()
	json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec.Code, resp
}

// query posts a GraphQL operation and returns the status and decoded response.
func (a *testAPI) query(token, query string, vars map[string]any) (int, gqlResponse) {
	a.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	status, resp := a.raw(http.MethodPost, GraphQLPath, token, "application/json", body)
	if strings.Contains(resp.Body, testSecret) {
		a.t.Errorf("response contains the secret: %s", resp.Body)
	}
	return status, resp
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	Body string `json:"-"`
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

func (r gqlResponse) message() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Message
}

const configFields = `id interval enabled connectionStatus connectionCheckedAt createdBy createdAt updatedBy updatedAt
	endpointConfiguration {
		__typename
		... on S3AccessKeyEndpointConfiguration { bucket path region accessKeyId endpoint }
		... on S3AssumedRoleEndpointConfiguration { bucket path region roleArn externalId endpoint }
	}`

type configResult struct {
	ID                    string
	Interval              string
	Enabled               bool
	ConnectionStatus      string
	ConnectionCheckedAt   *string
	CreatedBy             string
	CreatedAt             string
	UpdatedBy             string
	UpdatedAt             string
	EndpointConfiguration struct {
		Typename    string `json:"__typename"`
		Bucket      string
		Path        *string
		Region      string
		AccessKeyID string
		RoleArn     string
		ExternalID  string
		Endpoint    *string
	}
}

func TestImmutaDocumentedRequestsWorkUnchanged(t *testing.T) {
	api := newTestAPI(t)
	c := api.client(adminToken)
	var created struct {
		CreateS3AccessKeyExportConfiguration struct {
			ID                    string
			Interval              string
			Enabled               bool
			ConnectionStatus      string
			EndpointConfiguration struct{ Bucket, Path, Region string }
		}
	}
	c.MustPost(`mutation { createS3AccessKeyExportConfiguration(data: { interval: EVERY_12_HOURS bucket: "your-s3-bucket" path: "your-optional-s3-bucket-path" region: "us-east-1" accessKeyId: "YOURACCESSKEYID" secretAccessKey: "YOUR/SECRET/ACCESSKEY" }) { id interval enabled connectionStatus endpointConfiguration { ... on S3AccessKeyEndpointConfiguration { bucket path region } } } }`, &created)
	got := created.CreateS3AccessKeyExportConfiguration
	if got.ID == "" || got.Interval != "EVERY_12_HOURS" || !got.Enabled || got.ConnectionStatus != "PENDING" ||
		got.EndpointConfiguration.Bucket != "your-s3-bucket" || got.EndpointConfiguration.Path != "your-optional-s3-bucket-path" ||
		got.EndpointConfiguration.Region != "us-east-1" {
		t.Fatalf("created = %+v", got)
	}

	var created2 struct {
		CreateS3AssumedRoleExportConfiguration struct{ ID, ConnectionStatus string }
	}
	c.MustPost(`mutation { createS3AssumedRoleExportConfiguration(data: { interval: EVERY_12_HOURS bucket: "your-s3-bucket" path: "your-optional-s3-bucket-path" region: "us-east-1" roleArn: "arn:aws:iam::123456789012:role/your-role-name" }) { id connectionStatus } }`, &created2)

	var all struct {
		GetAllExportConfigurations []struct{ ID, ConnectionStatus string }
	}
	c.MustPost(`query { getAllExportConfigurations { id connectionStatus } }`, &all)
	if len(all.GetAllExportConfigurations) != 2 || all.GetAllExportConfigurations[0].ID != got.ID {
		t.Fatalf("getAllExportConfigurations = %+v", all)
	}
	for _, id := range []string{got.ID, created2.CreateS3AssumedRoleExportConfiguration.ID} {
		var r struct{ DisableExportConfiguration struct{ Enabled bool } }
		c.MustPost(fmt.Sprintf(`mutation { disableExportConfiguration(id: "%s") { enabled } }`, id), &r)
		var e struct{ EnableExportConfiguration struct{ Enabled bool } }
		c.MustPost(fmt.Sprintf(`mutation { enableExportConfiguration(id: "%s") { enabled } }`, id), &e)
		var d struct{ DeleteExportConfiguration struct{ ID string } }
		c.MustPost(fmt.Sprintf(`mutation { deleteExportConfiguration(id: "%s") { id } }`, id), &d)
		if r.DisableExportConfiguration.Enabled || !e.EnableExportConfiguration.Enabled || d.DeleteExportConfiguration.ID != id {
			t.Fatalf("disable/enable/delete of %s: %+v %+v %+v", id, r, e, d)
		}
	}
}
