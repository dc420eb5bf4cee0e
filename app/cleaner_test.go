package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// TestRunPrunes: the daemon prunes on its own, soon after start and then
// every PruneInterval, counts what it deleted in its metrics, and stops
// its cleaner with the rest.
func TestRunPrunes(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true}, 1, "@every 1h")
	a := b.open(t)
	st := a.Store()

	// 1,200 published progress events six weeks old (two batches), and
	// the row of a replica gone two hours ago.
	old := time.Now().Add(-1000 * time.Hour)
	var evs []event.Event
	for i := range 1200 {
		evs = append(evs, storetest.NewEvent(t, "target-0", "job-1", int64(i+2), old.Add(time.Duration(i)*time.Second)))
	}
	storetest.InsertEvents(t, st, "target-0", evs...)
	if _, err := st.Pool().Exec(t.Context(), `
		WITH m AS (UPDATE job_events SET published_at = observed_at WHERE published_at IS NULL RETURNING pos)
		DELETE FROM outbox WHERE pos IN (SELECT pos FROM m)`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(t.Context(), `INSERT INTO replicas (id, heartbeat_at) VALUES ('gone', now() - interval '2 hours')`); err != nil {
		t.Fatal(err)
	}

	passes := make(chan PruneResult, 64)
	ln := httptestListener(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, RunOptions{
			Listener: ln, PruneInterval: 50 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
			OnPrune: func(r PruneResult) {
				select {
				case passes <- r:
				default:
				}
			},
		})
	}()

	total := store.Pruned{}
	deadline := time.After(30 * time.Second)
	for n := 0; total[store.PruneProgress] < 1200 || total[store.PruneReplicas] < 1 || n < 3; n++ {
		select {
		case r := <-passes:
			if r.Err != nil || !r.Locked {
				t.Fatalf("prune pass = %+v; want it done (the only replica)", r)
			}
			for k, v := range r.Pruned {
				total[k] += v
			}
		case <-deadline:
			t.Fatalf("after 30s the cleaner had pruned %v, want 1200 progress events and 1 replica, in 3 passes or more", total)
		}
	}
	if total[store.PruneProgress] != 1200 || total[store.PruneReplicas] != 1 {
		t.Errorf("pruned %v, want 1200 progress events and 1 replica", total)
	}
	var left, replicas int
	if err := st.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM job_events), (SELECT count(*) FROM replicas)`).Scan(&left, &replicas); err != nil {
		t.Fatal(err)
	}
	if left != 0 || replicas != 1 {
		t.Errorf("%d events and %d replicas left, want 0 and this one", left, replicas)
	}
	body := get(t, "http://"+ln.Addr().String()+"/metrics", 200)
	for _, want := range []string{
		`ossjobwatch_pruned_rows_total{kind="progress"} 1200`,
		`ossjobwatch_pruned_rows_total{kind="replicas"} 1`,
		`ossjobwatch_pruned_rows_total{kind="events"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s of cancellation (shutdown timeout 10s)")
	}
}

func TestPruneConfig(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(func(k string) string { return map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z"}[k] }, config.Flags{}, config.Needs{Database: true})
	if err != nil {
		t.Fatal(err)
	}
	pc := PruneConfig(cfg)
	if pc.Progress != 720*time.Hour || pc.Events != 0 || pc.Sweeps != 168*time.Hour || pc.DeadAfter != time.Hour {
		t.Errorf("PruneConfig of the defaults = %+v", pc)
	}
	cfg.LeaseTTL = 30 * time.Minute
	if pc := PruneConfig(cfg); pc.DeadAfter != 5*time.Hour {
		t.Errorf("DeadAfter with a 30m lease TTL = %s, want 10 × the TTL", pc.DeadAfter)
	}
}
