package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ossjobwatch/ossjobwatch/migrations"
)

const (
	// migrationsTable records which migrations are applied. It is not goose's
	// default goose_db_version, so that ossjobwatch can share a database
	// schema with another goose-managed application.
	migrationsTable = "ossjobwatch_migrations"

	// migrationLockID is the session advisory lock that serialises migrators
	// ("ossjob" in ASCII); also not goose's default, for the same reason.
	migrationLockID int64 = 0x6f73736a6f62

	// goose's session locker polls pg_try_advisory_lock: a migrator that
	// finds the lock taken retries every second (the least goose allows) for
	// up to five minutes, unless ctx ends first.
	migrationLockPollSeconds = 1
	migrationLockPolls       = 300
)

// Migrate applies the embedded migrations that the database lacks and returns
// how many it applied: 0 when the schema is up to date.
//
// Migrate is safe to run from several processes at once: each takes a
// PostgreSQL session advisory lock first, and the ones that wait then find
// nothing left to do. Each migration runs in its own transaction; on failure
// the ones before it stay applied and are counted.
func (s *Store) Migrate(ctx context.Context) (applied int, err error) {
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockID),
		lock.WithLockTimeout(migrationLockPollSeconds, migrationLockPolls),
	)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	// goose needs database/sql. Give it connections of its own, closed
	// afterwards, rather than a view of the pool: should the unlock fail, the
	// session lock then dies with its connection instead of going back into
	// the pool still held.
	db := stdlib.OpenDB(*s.pool.Config().ConnConfig)
	defer db.Close()

	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithTableName(migrationsTable),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			return len(partial.Applied), fmt.Errorf("migrate: %s: %w", partial.Failed.Source.Path, partial.Err)
		}
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return len(results), nil
}
