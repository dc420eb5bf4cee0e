package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestPrune(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabaseURL(t)
	st, err := store.Open(t.Context(), dbURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// job-1: discovered and 4 progress events, six weeks old and published;
	// job-2: a progress event as old, never published.
	old := time.Now().Add(-1000 * time.Hour)
	var evs []event.Event
	for seq := int64(1); seq <= 5; seq++ {
		evs = append(evs, storetest.NewEvent(t, "hz", "job-1", seq, old.Add(time.Duration(seq)*time.Minute)))
	}
	storetest.InsertEvents(t, st, "hz", evs...)
	exec := func(sql string) {
		t.Helper()
		if _, err := st.Pool().Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	exec(`WITH m AS (UPDATE job_events SET published_at = observed_at RETURNING pos) DELETE FROM outbox WHERE pos IN (SELECT pos FROM m)`)
	storetest.InsertEvents(t, st, "hz", storetest.NewEvent(t, "hz", "job-2", 2, old))
	exec(`INSERT INTO sweeps (id, target, started_at) VALUES (gen_random_uuid(), 'hz', now() - interval '200 hours'), (gen_random_uuid(), 'hz', now())`)

	env := map[string]string{"OSSJOBWATCH_DATABASE_URL": dbURL}
	code, stdout, stderr := runVerb(t, env, "prune")
	if code != exitOK {
		t.Fatalf("prune: code %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"deleted 5 rows in ",
		"progress         4  published progress events observed over 720h0m0s ago",
		"events           0  kept (OSSJOBWATCH_RETENTION_EVENTS is 0)",
		"sweeps           1  sweep records started over 168h0m0s ago",
		"replicas         0  replicas silent for over 1h0m0s",
		"leases           0  target leases expired over 1h0m0s ago",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("prune output lacks %q:\n%s", want, stdout)
		}
	}
	var events, sweeps int
	if err := st.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM job_events), (SELECT count(*) FROM sweeps)`).Scan(&events, &sweeps); err != nil {
		t.Fatal(err)
	}
	if events != 2 || sweeps != 1 {
		t.Errorf("%d events and %d sweeps left, want 2 (job-1's discovered, job-2's pending progress) and 1", events, sweeps)
	}

	// With the events retention too, job-1's discovered event goes; the
	// unpublished one stays however old.
	env["OSSJOBWATCH_RETENTION_EVENTS"] = "720h"
	code, stdout, _ = runVerb(t, env, "prune")
	if code != exitOK || !strings.Contains(stdout, "deleted 1 rows") || !strings.Contains(stdout, "events           1  other published events observed over 720h0m0s ago") {
		t.Errorf("prune with OSSJOBWATCH_RETENTION_EVENTS=720h: code %d\n%s", code, stdout)
	}

	code, _, stderr = runVerb(t, map[string]string{"OSSJOBWATCH_DATABASE_URL": dbURL, "OSSJOBWATCH_RETENTION_SWEEPS": "a week"}, "prune")
	if code != exitUsage || !strings.Contains(stderr, `OSSJOBWATCH_RETENTION_SWEEPS: "a week" is not a duration`) {
		t.Errorf("bad retention: code %d, stderr %q", code, stderr)
	}
}
