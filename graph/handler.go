package graph

import (
	"cmp"
	"context"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/auditexport/auditexport/graph/generated"
)

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	Resolver *Resolver
	Logger   *slog.Logger
	// Limits bound the work of one request; zero fields take DefaultLimits.
	Limits Limits
}

// Query cache bounds: the texts of the few operations clients send again and again are kept
// parsed and validated; a large text is parsed each time instead of pinning its memory.
const (
	queryCacheEntries  = 256
	maxCachedQueryText = 16 << 10
)

// NewHandler returns the GraphQL handler: POST with a JSON body only, errors presented by
// presentError, panics recovered, the work of a request bounded by cfg.Limits before it runs
// and its answer while it runs, and execution stopped when the request's context ends.
// Authentication happens before it, in the HTTP middleware; authorization in @hasPermission.
func NewHandler(cfg HandlerConfig) *handler.Server {
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Resolver.Logger == nil {
		cfg.Resolver.Logger = cfg.Logger
	}
	schema := generated.NewExecutableSchema(generated.Config{
		Resolvers:  cfg.Resolver,
		Directives: generated.DirectiveRoot{HasPermission: hasPermission, Authenticated: authenticated},
	})
	srv := handler.New(schema)
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(smallQueryCache{lru.New[*ast.QueryDocument](queryCacheEntries)})
	srv.SetParserTokenLimit(cfg.Limits.MaxTokens)
	srv.AroundOperations(withOperationCache)
	srv.Use(extension.Introspection{})
	srv.Use(queryLimits{schema: schema.Schema(), limits: cfg.Limits})
	srv.Use(responseBudget{maxBytes: cfg.Limits.MaxResponseBytes})
	srv.SetErrorPresenter(presentError(cfg.Logger))
	srv.SetRecoverFunc(recoverPanic(cfg.Logger))
	return srv
}

// smallQueryCache caches the documents of short query texts only.
type smallQueryCache struct {
	graphql.Cache[*ast.QueryDocument]
}

func (c smallQueryCache) Add(ctx context.Context, query string, doc *ast.QueryDocument) {
	if len(query) <= maxCachedQueryText {
		c.Cache.Add(ctx, query, doc)
	}
}
