package app

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// TestMetricsServedWhileTheDatabaseIsDown takes the app's database away in
// the two ways an outage looks from the client, a server that hangs and one
// that refuses connections, and checks that /metrics still answers 200 with
// every series that does not need the database and ossjobwatch_database_up 0.
func TestMetricsServedWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 20, Seed: 2}, 1, "@every 1m")
	a := b.open(t)
	if _, err := a.SweepAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler())
	t.Cleanup(srv.Close)

	// Series that need no database: they must survive an outage.
	independent := []string{
		`ossjobwatch_sweep_duration_seconds_count{mode="full",outcome="success",target="target-0"} 1`,
		`ossjobwatch_last_successful_sweep_timestamp_seconds{target="target-0"}`,
		`ossjobwatch_events_total{target="target-0",type="discovered"} 20`,
		`go_goroutines`,
	}
	check := func(when string, dbUp bool) {
		t.Helper()
		body := get(t, srv.URL+"/metrics", 200)
		for _, want := range independent {
			if !strings.Contains(body, want) {
				t.Errorf("%s: /metrics lacks %s", when, want)
			}
		}
		up, outbox := "ossjobwatch_database_up 0", false
		if dbUp {
			up, outbox = "ossjobwatch_database_up 1", true
		}
		if !strings.Contains(body, up+"\n") {
			t.Errorf("%s: /metrics lacks %q", when, up)
		}
		if got := strings.Contains(body, "\nossjobwatch_outbox_pending_events "); got != outbox {
			t.Errorf("%s: outbox series present = %v, want %v", when, got, outbox)
		}
	}
	check("database up", true)

	// A database that hangs: the outbox query waits behind a lock until the
	// collector's timeout.
	admin, err := pgx.Connect(t.Context(), b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `LOCK TABLE job_events IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	check("database hung", false)
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("database answering again", true)

	// A database that refuses: no new connections, the existing ones
	// terminated (this test's database only).
	cfg, err := pgx.ParseConfig(b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	server, err := pgx.Connect(t.Context(), storetest.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close(context.Background()) })
	db := pgx.Identifier{cfg.Database}.Sanitize()
	if _, err := server.Exec(t.Context(), `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = server.Exec(context.Background(), `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`) })
	if _, err := server.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, cfg.Database); err != nil {
		t.Fatal(err)
	}
	check("database refusing connections", false)
	if _, err := server.Exec(t.Context(), `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	check("database back", true)
}
