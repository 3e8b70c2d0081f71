package graph

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/auditexport/auditexport/graph/generated"
)

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	Resolver *Resolver
	Logger   *slog.Logger
	// MaxDepth bounds how deeply selections nest. Default 15, enough for GraphiQL's introspection.
	MaxDepth int
	// MaxComplexity bounds gqlgen's complexity score of an operation. Default 500.
	MaxComplexity int
}

// NewHandler returns the GraphQL handler: POST with a JSON body only, errors presented by
// presentError, panics recovered, depth and complexity bounded. Authentication happens before it,
// in the HTTP middleware; authorization in @hasPermission.
func NewHandler(cfg HandlerConfig) *handler.Server {
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.MaxDepth = cmp.Or(max(cfg.MaxDepth, 0), 15)
	cfg.MaxComplexity = cmp.Or(max(cfg.MaxComplexity, 0), 500)
	if cfg.Resolver.Logger == nil {
		cfg.Resolver.Logger = cfg.Logger
	}
	schema := generated.NewExecutableSchema(generated.Config{
		Resolvers:  cfg.Resolver,
		Directives: generated.DirectiveRoot{HasPermission: hasPermission, Authenticated: authenticated},
	})
	srv := handler.New(schema)
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.AroundOperations(withOperationCache)
	srv.Use(extension.Introspection{})
	srv.Use(depthLimit{max: cfg.MaxDepth})
	srv.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	srv.SetErrorPresenter(presentError(cfg.Logger))
	srv.SetRecoverFunc(recoverPanic(cfg.Logger))
	return srv
}

// depthLimit refuses operations whose selections nest deeper than max, before anything runs.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil {
		return nil
	}
	if depth := selectionDepth(opCtx.Operation.SelectionSet, map[string]bool{}); depth > d.max {
		err := gqlerror.Errorf("operation nests %d levels deep, more than the limit of %d", depth, d.max)
		err.Extensions = map[string]any{"code": CodeBadRequest}
		return err
	}
	return nil
}

// selectionDepth is the deepest field nesting of set, following fragments; inFragment guards
// against cycles (validation rejects them, but this must not depend on it).
func selectionDepth(set ast.SelectionSet, inFragment map[string]bool) int {
	deepest := 0
	for _, sel := range set {
		var depth int
		switch s := sel.(type) {
		case *ast.Field:
			depth = 1 + selectionDepth(s.SelectionSet, inFragment)
		case *ast.InlineFragment:
			depth = selectionDepth(s.SelectionSet, inFragment)
		case *ast.FragmentSpread:
			if s.Definition == nil || inFragment[s.Name] {
				continue
			}
			inFragment[s.Name] = true
			depth = selectionDepth(s.Definition.SelectionSet, inFragment)
			delete(inFragment, s.Name)
		default:
			panic(fmt.Sprintf("unknown selection type %T", sel))
		}
		deepest = max(deepest, depth)
	}
	return deepest
}
