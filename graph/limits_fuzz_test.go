package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/auditexport/auditexport/internal/testserver"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

// noExporter refuses every export: the fuzzed requests never reach a destination.
type noExporter struct{}

func (noExporter) RunNow(context.Context, string) (store.ExportJob, error) {
	return store.ExportJob{}, store.ErrNotFound
}

func (noExporter) Cancel(string) {}

// FuzzGraphQLRequest sends random documents within the body limit to the handler over a real
// store. Each must be answered or refused with a JSON body, without a panic anywhere (a panic in
// a resolver is recovered and logged: the log is checked too). The work is bounded by counting,
// not timing: the limiter visits each written selection at most twice, a refused document
// resolves no field, and an accepted one is within every limit.
//
//	go test ./graph/ -run '^$' -fuzz FuzzGraphQLRequest -fuzztime 1m
func FuzzGraphQLRequest(f *testing.F) {
	for _, seed := range []string{
		testserver.IntrospectionQuery,
		doubling(12, "Query", "{ ...G0 }", "eventBuffer { events }"),
		doubling(8, "__Type", "{ __schema { types { ...G0 } } }", "name fields { name }"),
		repeated(150, "eventBuffer { events }"), // quadratic to validate: big versions are in TestQueryLimits
		repeated(12, `a%[1]d: getExportConfiguration(id: "x") { id lastExport { id } }`),
		`{ a: auditEvents(first: 1000) { edges { node { id } } } b: auditEvents { pageInfo { hasNextPage } } }`,
		`{ getAllExportConfigurations { id ... @defer { lastExport { id } } } }`,
		`{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }`,
		`query Q($n: Int) { auditEvents(first: $n) { edges { cursor } } } query R { eventBuffer { events } }`,
		`mutation { createS3AccessKeyExportConfiguration(data: { interval: EVERY_12_HOURS bucket: "your-s3-bucket" region: "us-east-1" accessKeyId: "YOURACCESSKEYID" secretAccessKey: "YOUR/SECRET/ACCESSKEY" }) { id } }`,
		"{ __schema { types { " + strings.Repeat("ofType { ", 40) + "name" + strings.Repeat(" }", 40) + " } } }",
		`{ getExportConfiguration(id: "` + strings.Repeat("\\u0000", 50) + `") { id } }`,
		"{", "", "# only a comment", `subscription { x }`, `{ __typename ... on Query { __typename } }`,
	} {
		f.Add(seed)
	}
	st := storetest.New(f)
	logs := &testserver.LogBuffer{}
	srv := NewHandler(HandlerConfig{
		Resolver: &Resolver{Store: st, Checker: instantChecker{}, Exporter: noExporter{}},
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
	})
	var resolved atomic.Int64
	srv.AroundFields(func(ctx context.Context, next graphql.Resolver) (any, error) {
		resolved.Add(1)
		return next(ctx)
	})
	limits := defaultQueryLimits()
	f.Fuzz(func(t *testing.T, query string) {
		body, _ := json.Marshal(map[string]string{"query": query})
		if len(body) > 1<<20 {
			t.Skip("over the body limit the server refuses before GraphQL")
		}
		m, refusal := limits.check(&graphql.RawParams{Query: query})
		if doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, limits.limits.MaxTokens); err == nil {
			if m == nil || m.steps > 2*countSelections(doc) {
				t.Fatalf("the limiter took %v steps for %d selections", m, countSelections(doc))
			}
			if refusal == nil {
				if total := m.document(doc); total.fields > limits.limits.MaxFields {
					t.Fatalf("accepted %d fields", total.fields)
				}
			}
		}

		resolved.Store(0)
		status, answer := post(srv, context.Background(), query)
		var resp struct {
			Data   json.RawMessage
			Errors []struct {
				Message    string
				Extensions map[string]any
			}
		}
		if err := json.Unmarshal([]byte(answer), &resp); err != nil || len(resp.Data) == 0 && len(resp.Errors) == 0 {
			t.Fatalf("%d %.300q: %v", status, answer, err)
		}
		if refusal != nil && (status != http.StatusUnprocessableEntity || resolved.Load() != 0 || resp.Errors[0].Message != refusal.Message) {
			t.Fatalf("refused with %q, yet answered %d after resolving %d fields: %.300s", refusal.Message, status, resolved.Load(), answer)
		}
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("a resolver panicked: %s", logs.String())
		}
	})
}
