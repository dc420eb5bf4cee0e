package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// startApply begins a sweep of target and returns the Apply that writes
// one snapshot for it.
func startApply(t *testing.T, st *store.Store, target string) store.Apply {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	listed, err := st.StartSweep(t.Context(), id, target)
	if err != nil {
		t.Fatal(err)
	}
	ended, err := st.EndListing(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return store.Apply{
		Target: target, SweepID: id, ListedAt: listed, ListingEndedAt: ended,
		Snapshots: []job.Snapshot{{Job: job.Job{ID: "job-1", Status: job.StatusActive}, Sequence: 0}},
		Record:    store.SweepRecord{Pages: 1, JobsListed: 1},
	}
}

// An apply whose COMMIT reached the server but whose answer was lost looks
// failed to its sweep, which then records the failure: that record must
// not overwrite the one the apply committed.
func TestFailureRecordNeverOverwritesAnAppliedSweep(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	a := startApply(t, st, "t1")
	if _, err := st.ApplySweep(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	err := st.FinishSweep(t.Context(), store.SweepRecord{ID: a.SweepID, Pages: 1, Err: "commit transaction: connection reset"})
	if !errors.Is(err, store.ErrRecorded) {
		t.Errorf("FinishSweep after a committed apply: %v, want ErrRecorded", err)
	}
	var complete bool
	var errText *string
	if err := st.Pool().QueryRow(t.Context(), `SELECT complete, error FROM sweeps WHERE id = $1`, a.SweepID).Scan(&complete, &errText); err != nil {
		t.Fatal(err)
	}
	if !complete || errText != nil {
		t.Errorf("sweep record complete=%v error=%v, want the applied sweep's record", complete, errText)
	}
	if err := st.FinishSweep(t.Context(), store.SweepRecord{ID: "01937a2e-0000-7000-8000-000000000000"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FinishSweep of an unknown sweep: %v, want ErrNotFound", err)
	}
}

// openWith opens a store on a new database with cfg.
func openWith(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), storetest.NewDatabaseURL(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// A replica that holds a target's lock (hung, or dead with its connection
// not yet noticed) must not hold up another's apply for more than the
// lock timeout, and the error must say what happened.
func TestApplyWaitsForTheTargetLockNoLongerThanItsTimeout(t *testing.T) {
	t.Parallel()
	st := openWith(t, store.Config{LockTimeout: 200 * time.Millisecond})
	holder, err := st.Pool().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_lock(hashtextextended('ossjobwatch.target:' || 't1', 0))`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = st.ApplySweep(ctx, startApply(t, st, "t1"))
	if err == nil || !strings.Contains(err.Error(), "lock timeout (200ms)") {
		t.Fatalf("apply under a held lock: %v, want a lock timeout error", err)
	}
}

// A transaction left open (its process hung or its host lost power) is
// ended by the server, releasing its locks; every connection also runs
// TCP keepalives.
func TestSessionsEndTransactionsLeftOpen(t *testing.T) {
	t.Parallel()
	st := openWith(t, store.Config{IdleInTransactionTimeout: 300 * time.Millisecond})
	var idle string
	if err := st.Pool().QueryRow(t.Context(), `SELECT current_setting('tcp_keepalives_idle')`).Scan(&idle); err != nil {
		t.Fatal(err)
	}
	if idle != "30" {
		t.Errorf("tcp_keepalives_idle = %q, want 30", idle)
	}

	conn, err := st.Pool().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(t.Context(), `SELECT pg_advisory_xact_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	// The transaction now sits idle; wait for the server to end it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var held int
		err := st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242`).Scan(&held)
		if err != nil {
			t.Fatal(err)
		}
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle transaction still holds its lock after 20s")
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, not synchronising on time
	}
	if _, err := tx.Exec(t.Context(), `SELECT 1`); err == nil {
		t.Error("the ended transaction still works")
	}
}

// Snapshots reads the live jobs only; Tombstones the removed ones asked for.
func TestSnapshotsLeaveTombstonesOut(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	a := startApply(t, st, "t1")
	a.Snapshots = []job.Snapshot{
		{Job: job.Job{ID: "gone", Status: job.StatusComplete}, Sequence: 2, Removed: true},
		{Job: job.Job{ID: "live", Status: job.StatusActive}, Sequence: 1},
	}
	if _, err := st.ApplySweep(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	_, snaps, err := st.Snapshots(t.Context(), "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Job.ID != "live" {
		t.Errorf("Snapshots = %+v, want the live job only", snaps)
	}
	tombs, err := st.Tombstones(t.Context(), "t1", []string{"gone", "live", "never"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tombs) != 1 || tombs[0].Job.ID != "gone" || !tombs[0].Removed || tombs[0].Sequence != 2 {
		t.Errorf("Tombstones = %+v, want gone's", tombs)
	}
}
