package postgres_test

import (
	"testing"

	"github.com/auditexport/auditexport/internal/pgtest"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/postgres"
	"github.com/auditexport/auditexport/store/storetest"
)

// engines is the PostgreSQL engine for the conformance suite: a database of its own per data.
var engines = storetest.Engine{
	NewData: func(t testing.TB) string { return pgtest.Require(t).NewDatabase(t) },
	Open: func(t testing.TB, url string, o storetest.EngineOptions) (store.Engine, error) {
		return postgres.Open(t.Context(), url, postgres.Options{Now: o.Now, BlockMaxEvents: o.SegmentMaxEvents})
	},
}

func TestConformance(t *testing.T) { storetest.Run(t, engines) }
