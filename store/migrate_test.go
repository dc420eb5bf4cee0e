package store_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/migrations"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// publicObjects are the tables and views users query.
var publicObjects = []string{"targets", "sweeps", "jobs", "job_events", "job_status_history"}

func migrationCount(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	return len(files)
}

func openFresh(t *testing.T, databaseURL string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), databaseURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	s := openFresh(t, storetest.NewDatabaseURL(t))
	want := migrationCount(t)

	applied, err := s.Migrate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if applied != want {
		t.Errorf("first Migrate applied %d, want %d", applied, want)
	}
	applied, err = s.Migrate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if applied != 0 {
		t.Errorf("second Migrate applied %d, want 0", applied)
	}
	assertSchema(t, s, want)
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	databaseURL := storetest.NewDatabaseURL(t)
	// Two stores stand for two processes: separate pools, separate sessions.
	stores := []*store.Store{openFresh(t, databaseURL), openFresh(t, databaseURL)}

	type result struct {
		applied int
		err     error
	}
	start := make(chan struct{})
	results := make(chan result, len(stores))
	for _, s := range stores {
		go func() {
			<-start
			applied, err := s.Migrate(t.Context())
			results <- result{applied, err}
		}()
	}
	close(start)

	want := migrationCount(t)
	total := 0
	for range stores {
		r := <-results
		if r.err != nil {
			t.Errorf("Migrate: %v", r.err)
		}
		total += r.applied
	}
	if total != want {
		t.Errorf("the two Migrate calls applied %d migrations between them, want %d", total, want)
	}
	assertSchema(t, stores[0], want)
}

func TestMigrateCancelled(t *testing.T) {
	t.Parallel()
	s := openFresh(t, storetest.NewDatabaseURL(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Migrate(ctx); err == nil {
		t.Fatal("Migrate with a cancelled context succeeded")
	}
	if applied, err := s.Migrate(t.Context()); err != nil || applied != migrationCount(t) {
		t.Fatalf("Migrate after a cancelled one = %d, %v; want %d, nil", applied, err, migrationCount(t))
	}
}

// assertSchema checks that each public object exists and that each migration
// is recorded once.
func assertSchema(t *testing.T, s *store.Store, migrations int) {
	t.Helper()
	ctx := t.Context()
	for _, name := range publicObjects {
		var exists bool
		if err := s.Pool().QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("%s does not exist", name)
		}
	}
	var recorded, distinct int
	err := s.Pool().QueryRow(ctx,
		"SELECT count(*), count(DISTINCT version_id) FROM ossjobwatch_migrations WHERE version_id > 0 AND is_applied",
	).Scan(&recorded, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if recorded != migrations || distinct != migrations {
		t.Errorf("ossjobwatch_migrations records %d migrations (%d distinct), want %d", recorded, distinct, migrations)
	}
}

// TestSchemaComments keeps the public schema documented: people query it.
func TestSchemaComments(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	rows, err := s.Pool().Query(t.Context(), `
		SELECT c.relname
		FROM pg_class c
		WHERE c.relname = ANY($1) AND c.relnamespace = current_schema()::regnamespace
		  AND obj_description(c.oid, 'pg_class') IS NULL
		UNION ALL
		SELECT c.relname || '.' || a.attname
		FROM pg_class c
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.relname = ANY($1) AND c.relnamespace = current_schema()::regnamespace
		  AND col_description(c.oid, a.attnum) IS NULL
		ORDER BY 1`, publicObjects)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		missing = append(missing, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("objects without a COMMENT: %s", strings.Join(missing, ", "))
	}
}
