package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/auditexport/auditexport/graph/generated"
	"github.com/auditexport/auditexport/internal/testserver"
)

var testSchema = generated.NewExecutableSchema(generated.Config{Resolvers: &Resolver{}}).Schema()

func defaultQueryLimits() queryLimits {
	return queryLimits{schema: testSchema, limits: DefaultLimits()}
}

// doubling is n fragments on typ, each spreading the next twice, around leaf: 2^n leaves once
// expanded, in a few hundred bytes.
func doubling(n int, typ, root, leaf string) string {
	var b strings.Builder
	b.WriteString(root)
	for i := range n {
		fmt.Fprintf(&b, " fragment G%d on %s { ...G%d ...G%d }", i, typ, i+1, i+1)
	}
	fmt.Fprintf(&b, " fragment G%d on %s { %s }", n, typ, leaf)
	return b.String()
}

// repeated is an operation of n selections, each format with its index (%[1]d).
func repeated(n int, format string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		b.WriteString(" ")
		b.WriteString(strings.ReplaceAll(format, "%[1]d", fmt.Sprint(i)))
	}
	b.WriteString(" }")
	return b.String()
}

const fullEventNode = `id tenantId action actionStatus eventTimestamp receivedTimestamp actorIp targetType targets
	relatedResources auditPayload requestId sessionId additionalFields actor { id name type identityProvider profileId }`

func TestQueryLimits(t *testing.T) {
	cases := map[string]struct {
		query     string
		variables map[string]any
		limit     string // "" accepted; else extensions.limit, or "validation"
	}{
		"fragments spreading fragments twice":       {doubling(26, "Query", "{ ...G0 }", "eventBuffer { events }"), nil, "fields"},
		"the same in introspection":                 {doubling(26, "__Type", "{ __schema { types { ...G0 } } }", "name"), nil, "fields"},
		"a few levels of doubling":                  {doubling(5, "Query", "{ ...G0 }", "eventBuffer { events }"), nil, ""},
		"one field repeated 5,000 times":            {repeated(5000, "eventBuffer { events }"), nil, "tokens"},
		"one field repeated 600 times":              {repeated(600, "eventBuffer { events }"), nil, "fields"},
		"the same response name twice is one field": {`{ eventBuffer { events } eventBuffer { bytes } }`, nil, ""},
		"60 aliases":                              {repeated(60, `a%[1]d: getExportConfiguration(id: "x") { id }`), nil, "aliases"},
		"an expensive field under two names":      {`{ a: getAllExportConfigurations { id } b: getAllExportConfigurations { id } }`, nil, "once"},
		"auditEvents twice through fragments":     {`{ ...A ...B } fragment A on Query { x: auditEvents { pageInfo { hasNextPage } } } fragment B on Query { y: auditEvents { pageInfo { hasNextPage } } }`, nil, "once"},
		"a fragment spread twice is asked once":   {`{ ...A ...A a: getExportConfiguration(id: "x") { ...C } } fragment A on Query { getAllExportConfigurations { ...C } } fragment C on ExportConfiguration { id }`, nil, ""},
		"verify twice":                            {`mutation { a: verifyExportConfiguration(id: "x") { id } b: verifyExportConfiguration(id: "y") { id } }`, nil, "once"},
		"two creates":                             {`mutation { a: createApiToken(name: "a", permissions: [AUDIT]) b: createApiToken(name: "b", permissions: [AUDIT]) }`, nil, ""},
		"different expensive fields":              {`{ eventBuffer { events } auditEvents { pageInfo { hasNextPage } } getAllExportConfigurations { id } }`, nil, ""},
		"a full page of 1,000 events":             {`{ auditEvents(first: 1000) { edges { cursor node { ` + fullEventNode + ` } } } }`, nil, ""},
		"a page of 1,000 events asked twice over": {`{ auditEvents(first: 1000) { edges { cursor node { ` + fullEventNode + ` a: id b: id c: id d: id e: id f: id g: id h: id } } } }`, nil, "complexity"},
		"the page size in a variable":             {`query($n: Int) { auditEvents(first: $n) { edges { node { ` + fullEventNode + ` a: id b: id c: id d: id e: id f: id g: id h: id } } } }`, map[string]any{"n": json.Number("1000")}, "complexity"},
		"a small page in a variable":              {`query($n: Int) { auditEvents(first: $n) { edges { node { ` + fullEventNode + ` a: id b: id c: id d: id e: id f: id g: id h: id } } } }`, map[string]any{"n": json.Number("10")}, ""},
		"a page size the resolver refuses":        {`{ auditEvents(first: 1000000) { edges { node { ` + fullEventNode + ` } } } }`, nil, ""},
		"deep nesting":                            {"{ __schema { types { " + strings.Repeat("ofType { ", 20) + "name" + strings.Repeat(" }", 20) + " } } }", nil, "depth"},
		"a fragment cycle":                        {`{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }`, nil, "validation"},
		"@defer":                                  {`{ getAllExportConfigurations { id ... @defer { lastExport { id } } } }`, nil, "validation"},
		"GraphiQL's introspection":                {testserver.IntrospectionQuery, nil, ""},
		"a syntax error is left to gqlgen":        {`{ eventBuffer { `, nil, ""},
		"unknown names are left to validation":    {`{ nope { ...Missing ... on Nothing { x } } }`, nil, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := defaultQueryLimits().check(&graphql.RawParams{Query: c.query, Variables: c.variables})
			switch {
			case c.limit == "" && err != nil:
				t.Fatalf("refused: %v %v", err.Message, err.Extensions)
			case c.limit == "":
			case err == nil:
				t.Fatalf("accepted, want refused by %s", c.limit)
			case c.limit == "validation" && err.Extensions["code"] != "GRAPHQL_VALIDATION_FAILED",
				c.limit != "validation" && (err.Extensions["code"] != CodeLimitExceeded || err.Extensions["limit"] != c.limit):
				t.Fatalf("refused with %s %v, want %s", err.Message, err.Extensions, c.limit)
			}
		})
	}
}

// The handler refuses over limits before gqlgen parses, validates or runs anything: 422 with a
// message naming the limit, and no resolver called (brokenStore panics on any call).
func TestLimitsRefuseBeforeAnythingRuns(t *testing.T) {
	h := asAdmin(NewHandler(HandlerConfig{Resolver: &Resolver{Store: brokenStore{}}}))
	for query, want := range map[string]string{
		doubling(26, "Query", "{ ...G0 }", "getAllExportConfigurations { id }"):         "which exceeds the limit of 1000",
		repeated(5000, "getAllExportConfigurations { id }"):                             "more tokens than the limit of 10000",
		`{ a: getAllExportConfigurations { id } b: getAllExportConfigurations { id } }`: "getAllExportConfigurations may be asked once per request",
	} {
		body, _ := json.Marshal(map[string]string{"query": query})
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), want) ||
			!strings.Contains(rec.Body.String(), `"code":"LIMIT_EXCEEDED"`) || strings.Contains(rec.Body.String(), "internal") {
			t.Errorf("%.60s: %d %s", query, rec.Code, rec.Body.String())
		}
	}
}

// countSelections counts the selections written in doc, fragments not expanded.
func countSelections(doc *ast.QueryDocument) int {
	var count func(ast.SelectionSet) int
	count = func(set ast.SelectionSet) int {
		n := len(set)
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				n += count(s.SelectionSet)
			case *ast.InlineFragment:
				n += count(s.SelectionSet)
			}
		}
		return n
	}
	total := 0
	for _, op := range doc.Operations {
		total += count(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		total += count(f.SelectionSet)
	}
	return total
}

// The measure visits each written selection at most twice (once for the document, once for the
// operation), whatever the fragments expand to: its work is linear in the query's size.
func TestMeasureIsLinear(t *testing.T) {
	for _, n := range []int{10, 30, 60, 200} {
		for _, query := range []string{
			doubling(n, "Query", "{ ...G0 }", "eventBuffer { events }"),
			doubling(n, "__Type", "{ __schema { types { ...G0 } } }", "name ofType { ...G0 }"), // and a cycle
		} {
			doc, err := parser.ParseQuery(&ast.Source{Input: query})
			if err != nil {
				t.Fatal(err)
			}
			m, _ := queryLimits{schema: testSchema, limits: Limits{MaxTokens: 1 << 30}.withDefaults()}.check(&graphql.RawParams{Query: query})
			if m == nil || m.steps == 0 || m.steps > 2*countSelections(doc) {
				t.Fatalf("%d levels: %v steps for %d selections", n, m, countSelections(doc))
			}
		}
	}
}

func TestIntrospectionMeasure(t *testing.T) {
	m, err := defaultQueryLimits().check(&graphql.RawParams{Query: testserver.IntrospectionQuery})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := parser.ParseQuery(&ast.Source{Input: testserver.IntrospectionQuery})
	total, op := m.document(doc), m.operation(doc.Operations[0])
	t.Logf("GraphiQL introspection: %d fields in the document; operation: %d fields, depth %d, complexity %d",
		total.fields, op.fields, op.depth, op.complexity)
	if total.fields < 300 || total.fields > DefaultLimits().MaxFields/2 {
		t.Fatalf("introspection counts %d fields: the limit leaves it too little room, or the count is wrong", total.fields)
	}
}

func TestEscapedSize(t *testing.T) {
	for _, c := range []struct {
		value any
		want  int
	}{
		{"abc", 5}, {`a"b`, 6}, {"a\nb", 6}, {"<&>", 20}, {json.RawMessage(`{"a":"<"}`), 14}, {"\x01", 8},
	} {
		got := encodedSize(c.value)
		encoded, _ := json.Marshal(c.value)
		if got != int64(c.want) || len(encoded) != c.want {
			t.Errorf("%q: estimated %d, encoding/json writes %d (%s), want %d", c.value, got, len(encoded), encoded, c.want)
		}
	}
}

// A query text over 16 KiB is not kept: a client sending many large texts cannot fill the
// server's memory with their parsed documents.
func TestOnlyShortQueriesAreCached(t *testing.T) {
	ctx := context.Background()
	c := smallQueryCache{lru.New[*ast.QueryDocument](queryCacheEntries)}
	short, long := "{ eventBuffer { events } }", "{ eventBuffer { events } }"+strings.Repeat(" ", maxCachedQueryText)
	c.Add(ctx, short, &ast.QueryDocument{})
	c.Add(ctx, long, &ast.QueryDocument{})
	if _, ok := c.Get(ctx, short); !ok {
		t.Error("a short query was not cached")
	}
	if _, ok := c.Get(ctx, long); ok {
		t.Error("a long query was cached")
	}
}
