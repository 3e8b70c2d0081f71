package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Schema migrations are SQL files in migrations/, embedded in the binary and applied by goose
// (github.com/pressly/goose/v3): numbered NNNNN_name.sql, each run once in its own transaction,
// recorded in migrationsTable. To change the schema, add the next file; never edit one that has
// shipped. Replicas starting together apply them once: goose holds a session advisory lock
// (migrationsLockID) while it migrates, and the others wait for it.

//go:embed migrations/*.sql
var migrationFiles embed.FS

const (
	migrationsTable = "auditexport_schema_migrations"
	// migrationsLockID is the advisory lock held while migrating: its own, not goose's default,
	// so another application's goose in the same database neither waits for it nor races it.
	// (The first 8 bytes of SHA-256("auditexport schema migrations").)
	migrationsLockID int64 = 0x2b1f7a0c59d4e6b3
)

// migrate brings the schema up to date, or refuses a database whose schema is newer than this
// binary knows: a replica of an older release must not misread what a newer one wrote.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(pool) // closing it leaves the pool open
	defer db.Close()
	// Polled every second for up to 5 minutes: a replica starting beside one that migrates waits.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationsLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithTableName(migrationsTable), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("schema migrations: %w", err)
	}
	known := int64(0)
	for _, s := range p.ListSources() {
		known = max(known, s.Version)
	}
	if err := refuseNewer(ctx, p, known); err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate the database schema: %w", err)
	}
	for _, r := range results {
		log.Info("migrated the database schema", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration.String())
	}
	// Again after: a newer replica may have migrated between the check and the lock.
	if err := refuseNewer(ctx, p, known); err != nil {
		return err
	}
	return refuseDraft(ctx, pool)
}

// refuseDraft fails on a database made by a development build from before the first release,
// whose schema 1 kept one row per event in a table named events (00001_schema.sql was changed in
// place before that release). Its buffered events cannot be read here; refusing leaves them as
// they are for the build that wrote them to export.
func refuseDraft(ctx context.Context, pool *pgxpool.Pool) error {
	var draft bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('events') IS NOT NULL AND to_regclass('event_chunks') IS NULL").Scan(&draft); err != nil {
		return fmt.Errorf("read the database schema: %w", err)
	}
	if draft {
		return errors.New("the database was made by a development build of auditexport from before its first release " +
			"(schema 1 with a table named events), which this binary cannot read: export what it buffers with that build, " +
			"then start on a new, empty database")
	}
	return nil
}

// refuseNewer fails when the database's schema is newer than known.
func refuseNewer(ctx context.Context, p *goose.Provider, known int64) error {
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read the database schema version: %w", err)
	}
	if current > known {
		return fmt.Errorf("the database was migrated by a newer auditexport (schema %d, this binary knows %d): run the newer release", current, known)
	}
	return nil
}
