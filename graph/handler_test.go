package graph

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"

	"github.com/auditexport/auditexport/graph/generated"
	"github.com/auditexport/auditexport/store"
)

// brokenStore fails in the two ways a resolver's dependency can: a panic and an error carrying
// internal detail. Its other methods are nil and panic if called.
type brokenStore struct{ Store }

func (brokenStore) Configurations(context.Context) ([]store.ExportConfiguration, error) {
	panic("bbolt page 42 is corrupt")
}

func (brokenStore) Configuration(context.Context, string) (store.ExportConfiguration, error) {
	return store.ExportConfiguration{}, errors.New("open /var/lib/auditexport/auditexport.db: input/output error")
}

// asAdmin injects a principal, as the server's authentication middleware does.
func asAdmin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := store.Principal{Name: "admin", Permissions: []store.Permission{store.PermissionAdmin}}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func TestPanicInResolverIsAnInternalErrorAndLogged(t *testing.T) {
	var logs bytes.Buffer
	h := NewHandler(HandlerConfig{Resolver: &Resolver{Store: brokenStore{}}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	c := client.New(asAdmin(h))
	for range 2 { // the handler keeps serving after a panic
		resp, err := c.RawPost(`{ getAllExportConfigurations { id } }`)
		if err != nil {
			t.Fatal(err)
		}
		body := string(resp.Errors)
		if !strings.Contains(body, `"internal server error"`) || !strings.Contains(body, CodeInternal) || strings.Contains(body, "page 42") {
			t.Fatalf("errors = %s", body)
		}
	}
	if !strings.Contains(logs.String(), "panic in graphql resolver") || !strings.Contains(logs.String(), "bbolt page 42 is corrupt") ||
		!strings.Contains(logs.String(), "handler_test.go") {
		t.Fatalf("the panic and its stack were not logged: %s", logs.String())
	}
}

func TestInternalErrorsAreHidden(t *testing.T) {
	var logs bytes.Buffer
	h := NewHandler(HandlerConfig{Resolver: &Resolver{Store: brokenStore{}}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	resp, err := client.New(asAdmin(h)).RawPost(`{ getExportConfiguration(id: "x") { id } }`)
	if err != nil {
		t.Fatal(err)
	}
	if body := string(resp.Errors); strings.Contains(body, "/var/lib") || !strings.Contains(body, "internal server error") {
		t.Fatalf("errors = %s", body)
	}
	if !strings.Contains(logs.String(), "/var/lib/auditexport") {
		t.Fatalf("the detail was not logged for the operator: %s", logs.String())
	}
}

func TestNoPrincipalMeansUnauthenticated(t *testing.T) {
	h := NewHandler(HandlerConfig{Resolver: &Resolver{Store: brokenStore{}}})
	resp, err := client.New(h).RawPost(`{ getAllExportConfigurations { id } }`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp.Errors), CodeUnauthenticated) {
		t.Fatalf("errors = %s", resp.Errors)
	}
}

// Every root field must declare its permission: a field without @hasPermission would be open to
// any token. @authenticated says so on purpose (viewer).
func TestEveryRootFieldNeedsAPermission(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{Resolvers: &Resolver{}}).Schema()
	checked := 0
	for _, typ := range []string{"Query", "Mutation"} {
		for _, field := range schema.Types[typ].Fields {
			if strings.HasPrefix(field.Name, "__") {
				continue
			}
			checked++
			if field.Directives.ForName("hasPermission") == nil && field.Directives.ForName("authenticated") == nil {
				t.Errorf("%s.%s has neither @hasPermission nor @authenticated", typ, field.Name)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d root fields", checked)
	}
}

func TestSelectionDepth(t *testing.T) {
	h := NewHandler(HandlerConfig{Resolver: &Resolver{Store: brokenStore{}}, Limits: Limits{MaxDepth: 3}})
	c := client.New(asAdmin(h))
	ok, err := c.RawPost(`{ __schema { queryType { name } } }`)
	if err != nil || len(ok.Errors) != 0 && string(ok.Errors) != "null" {
		t.Fatalf("depth 3: %v %s", err, ok.Errors)
	}
	// Refused before it runs: 422, like a validation error.
	_, err = c.RawPost(`{ __schema { queryType { fields { name } } } }`)
	if err == nil || !strings.Contains(err.Error(), "http 422") || !strings.Contains(err.Error(), "nests 4 levels deep, more than the limit of 3") {
		t.Fatalf("depth 4: %v", err)
	}
}
