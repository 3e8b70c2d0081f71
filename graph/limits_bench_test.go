package graph

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/internal/testserver"
)

// BenchmarkWorstAcceptedDocuments runs documents at the default limits through the handler:
// what a request may cost once it is accepted (parse, validation, execution).
//
//	go test ./graph/ -run '^$' -bench WorstAccepted -benchtime 20x
func BenchmarkWorstAcceptedDocuments(b *testing.B) {
	srv := NewHandler(HandlerConfig{Resolver: &Resolver{Store: brokenStore{}}})
	for name, query := range map[string]string{
		// gqlparser compares fields of the same response name pairwise, with their selections.
		"333 same-name fields with selections":       "{" + strings.Repeat(" __schema { queryType { name } }", 333) + " }",
		"999 same-name leaves":                       "{" + strings.Repeat(" __typename", 999) + " }",
		"6 levels of doubling fragments":             doubling(6, "Query", "{ ...G0 }", "__typename"),
		"333 fragments of one field":                 manyFragments(333, "__typename"),
		"125 fragments of one field with selections": manyFragments(125, "__schema { queryType { name } }"),
		"50 aliased type introspections":             repeated(50, `a%[1]d: __type(name: "ExportConfiguration") { fields { name type { name kind ofType { name } } } }`),
		"GraphiQL introspection":                     testserver.IntrospectionQuery,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				// A new text each time: the query cache would hide the parse and validation.
				status, body := post(srv, context.Background(), query+strings.Repeat(" ", i%1000+1)+"#"+strings.Repeat("x", i/1000))
				if status != http.StatusOK || strings.Contains(body, `"errors"`) {
					b.Fatalf("%d %.300s", status, body)
				}
			}
		})
	}
}

// manyFragments is an operation spreading n fragments that each select the same field.
func manyFragments(n int, field string) string {
	var spreads, defs strings.Builder
	for i := range n {
		fmt.Fprintf(&spreads, " ...F%d", i)
		fmt.Fprintf(&defs, " fragment F%d on Query { %s }", i, field)
	}
	return "{" + spreads.String() + " }" + defs.String()
}
