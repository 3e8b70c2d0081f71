package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"

	"github.com/auditexport/auditexport/store"
)

// A list of configurations asks for each one's lastExport: fetched one by one that is a read per
// configuration. The list resolver instead fetches them all in one read (store.Jobs.LatestJobs)
// into a cache that lives as long as the operation, and the field resolver looks there first.

type operationCacheKey struct{}

// operationCache holds what one operation fetched in batch for its field resolvers.
type operationCache struct {
	mu         sync.Mutex
	latestJobs map[string]store.ExportJob // configuration id -> newest job; absent: none
	fetched    map[string]bool            // configuration ids whose newest job was looked for
}

// withOperationCache gives an operation its cache (graphql.OperationMiddleware).
func withOperationCache(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	return next(context.WithValue(ctx, operationCacheKey{}, &operationCache{}))
}

func cacheOf(ctx context.Context) *operationCache {
	c, _ := ctx.Value(operationCacheKey{}).(*operationCache)
	return c
}

// prefetchLatestJobs reads the newest job of every configuration listed, in one read, when the
// operation selects lastExport.
func prefetchLatestJobs(ctx context.Context, st store.Jobs, cs []store.ExportConfiguration) error {
	cache := cacheOf(ctx)
	if cache == nil || len(cs) == 0 || !selects(ctx, "lastExport") {
		return nil
	}
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	latest, err := st.LatestJobs(ctx, ids)
	if err != nil {
		return err
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	cache.latestJobs, cache.fetched = latest, make(map[string]bool, len(ids))
	for _, id := range ids {
		cache.fetched[id] = true
	}
	return nil
}

// latestJob is a configuration's newest job, from the operation's cache when it was prefetched.
func latestJob(ctx context.Context, st store.Jobs, configID string) (store.ExportJob, bool, error) {
	if cache := cacheOf(ctx); cache != nil {
		cache.mu.Lock()
		job, found := cache.latestJobs[configID]
		fetched := cache.fetched[configID]
		cache.mu.Unlock()
		if fetched {
			return job, found, nil
		}
	}
	latest, err := st.LatestJobs(ctx, []string{configID})
	job, found := latest[configID]
	return job, found, err
}

// selects reports whether the field being resolved selects a sub-field named name.
func selects(ctx context.Context, name string) bool {
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		if f.Name == name {
			return true
		}
	}
	return false
}
