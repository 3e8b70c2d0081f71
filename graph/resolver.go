// Package graph is the GraphQL control plane: gqlgen resolvers over the store. Resolvers only
// translate between GraphQL and store types; rules live in the store, HTTP concerns in server.
package graph

//go:generate go -C .. tool gqlgen generate --config gqlgen.yml

import (
	"context"
	"log/slog"
	"time"

	"github.com/auditexport/auditexport/graph/model"
	"github.com/auditexport/auditexport/store"
)

// Store is what the resolvers need from persistence.
type Store interface {
	store.Configurations
	store.Tokens
	store.EventBuffer
	store.Cursors
	store.Jobs
	store.DigestKeys
}

var _ Store = (*store.Store)(nil)

// Checker runs connectivity checks.
type Checker interface {
	// CheckNow checks the destination and returns the configuration with the result.
	CheckNow(ctx context.Context, id string) (store.ExportConfiguration, error)
	// Forget drops what was cached for a deleted configuration.
	Forget(id string)
	// Cancel cuts short the running check of a configuration just disabled or deleted.
	Cancel(id string)
}

// Exporter runs exports.
type Exporter interface {
	// RunNow exports what is pending for a configuration and returns the job.
	RunNow(ctx context.Context, configID string) (store.ExportJob, error)
	// Cancel stops the export job, queued or running, of a configuration just disabled or
	// deleted.
	Cancel(configID string)
}

// Resolver is the root resolver: it carries the dependencies the resolvers call.
type Resolver struct {
	Store    Store
	Checker  Checker
	Exporter Exporter
	Logger   *slog.Logger
	// Now is the clock for nextExportAt, exportHistory and exportLag; default time.Now.
	Now func() time.Time
	// TrustPrincipal is the AWS principal assumed-role trust policies name (ParseTrustPrincipal);
	// empty: a placeholder.
	TrustPrincipal string
}

// checked runs a connectivity check of a configuration just written and returns it with the
// result; a configuration whose check fails is still stored and returned, with the error text.
func (r *Resolver) checked(ctx context.Context, c store.ExportConfiguration, err error) (*model.ExportConfiguration, error) {
	if err != nil {
		return nil, err
	}
	return r.modelOf(ctx)(r.Checker.CheckNow(ctx, c.ID))
}

// stopWork stops the running work of a configuration that was just disabled or deleted, which
// would otherwise go on, for as long as its destination lets it, with nobody waiting for it.
// It follows the store's change: an export that starts afterwards finds the configuration
// disabled or gone.
func (r *Resolver) stopWork(id string) {
	r.Exporter.Cancel(id)
	r.Checker.Cancel(id)
}

// modelOf returns a converter of a store result, passing its error through.
func (r *Resolver) modelOf(ctx context.Context) func(store.ExportConfiguration, error) (*model.ExportConfiguration, error) {
	return func(c store.ExportConfiguration, err error) (*model.ExportConfiguration, error) {
		if err != nil {
			return nil, err
		}
		pending, err := r.Store.PendingEvents(ctx, c.Cursor)
		if err != nil {
			return nil, err
		}
		return toModel(c, pending, r.now()), nil
	}
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
