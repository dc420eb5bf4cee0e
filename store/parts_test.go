package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	jobevent "github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// firstSweep is the Apply of a first sweep of target with n jobs, each
// with a discovered event, as the poller makes it: snapshots and events in
// job id order.
func firstSweep(t *testing.T, st *store.Store, target string, n int) store.Apply {
	t.Helper()
	a := startApply(t, st, target)
	a.Snapshots = make([]job.Snapshot, n)
	evs := make([]jobevent.Event, n)
	for i := range n {
		id := fmt.Sprintf("job-%06d", i)
		a.Snapshots[i] = job.Snapshot{Job: job.Job{ID: id, Status: job.StatusActive}, Sequence: 1}
		evs[i] = storetest.NewEvent(t, target, id, 1, a.ListedAt)
	}
	a.Events = func(yield func(jobevent.Event, error) bool) {
		for _, ev := range evs {
			if !yield(ev, nil) {
				return
			}
		}
	}
	a.Record = store.SweepRecord{Pages: n / 1000, JobsListed: n}
	return a
}

// partsOf returns, for every job of target, the transaction that wrote its
// snapshot, and checks that its events were written by the same one.
func partsOf(t *testing.T, st *store.Store, target string) map[string]string {
	t.Helper()
	rows, err := st.Pool().Query(t.Context(), `
		SELECT j.job_id, j.xmin::text, coalesce(string_agg(DISTINCT e.xmin::text, ','), '')
		FROM jobs j LEFT JOIN job_events e ON e.target = j.target AND e.job_id = j.job_id
		WHERE j.target = $1 GROUP BY j.job_id, j.xmin::text`, target)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	parts := map[string]string{}
	for rows.Next() {
		var id, snap, events string
		if err := rows.Scan(&id, &snap, &events); err != nil {
			t.Fatal(err)
		}
		if events != snap {
			t.Errorf("job %s: snapshot written by transaction %s, its events by %q", id, snap, events)
		}
		parts[id] = snap
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return parts
}

// A first sweep of more jobs than a part holds commits in parts of
// FirstSweepPart jobs, each job's events in its snapshot's transaction,
// and ends as one sweep: every job and event written once, the sweep's
// record counting them all, the target baselined. Between parts the
// target's version is the sweep's, and it is not baselined.
func TestFirstSweepCommitsInParts(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	n := 2*store.FirstSweepPart + 123
	a := firstSweep(t, st, "big", n)
	var between []int
	store.AfterPart(st, func(ctx context.Context, part int) error {
		between = append(between, part)
		state, err := st.TargetState(ctx, "big")
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("%s#%d", a.SweepID, part+1); state.Baselined || state.LastSweepID != a.SweepID || state.Version() != want {
			t.Errorf("after part %d: baselined %v, last sweep %s, version %s; want false, %s and %s", part, state.Baselined, state.LastSweepID, state.Version(), a.SweepID, want)
		}
		var jobs, events, counted int
		if err := st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM jobs WHERE target = 'big'),
			(SELECT count(*) FROM job_events WHERE target = 'big'), (SELECT events FROM sweeps WHERE id = $1)`, a.SweepID).
			Scan(&jobs, &events, &counted); err != nil {
			return err
		}
		if want := (part + 1) * store.FirstSweepPart; jobs != want || events != want || counted != want {
			t.Errorf("after part %d: %d jobs, %d events, record counts %d; want %d of each", part, jobs, events, counted, want)
		}
		return nil
	})
	written, err := st.ApplySweep(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	if written != n {
		t.Errorf("ApplySweep wrote %d events, want %d", written, n)
	}
	if !slices.Equal(between, []int{0, 1}) {
		t.Errorf("parts committed before the last: %v, want [0 1]", between)
	}
	parts := partsOf(t, st, "big")
	if len(parts) != n {
		t.Fatalf("%d jobs written, want %d", len(parts), n)
	}
	sizes := map[string]int{}
	for _, tx := range parts {
		sizes[tx]++
	}
	got := slices.Sorted(func(yield func(int) bool) {
		for _, k := range sizes {
			if !yield(k) {
				return
			}
		}
	})
	if want := []int{123, store.FirstSweepPart, store.FirstSweepPart}; !slices.Equal(got, want) {
		t.Errorf("jobs per transaction: %v, want %v", got, want)
	}
	var events, queued, counted int
	var complete bool
	if err := st.Pool().QueryRow(t.Context(), `SELECT (SELECT count(DISTINCT id) FROM job_events WHERE target = 'big'),
		(SELECT count(*) FROM outbox), events, complete FROM sweeps WHERE id = $1`, a.SweepID).
		Scan(&events, &queued, &counted, &complete); err != nil {
		t.Fatal(err)
	}
	if events != n || queued != n || counted != n || !complete {
		t.Errorf("%d events, %d queued, record counts %d (complete %v); want %d of each, complete", events, queued, counted, complete, n)
	}
	state, err := st.TargetState(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if !state.Baselined || state.LastSweepID != a.SweepID || state.Version() != a.SweepID {
		t.Errorf("after the sweep: baselined %v, last sweep %s, version %s; want true and %s for both", state.Baselined, state.LastSweepID, state.Version(), a.SweepID)
	}
}

// Between two parts of a first sweep the parts written count as applied:
// an apply of snapshots read before them conflicts, a listing older than
// the sweep's is stale, and a newer sweep applied on top of them makes the
// next part conflict instead of writing over it; no job is written twice.
func TestFirstSweepPartsAreFenced(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	older := startApply(t, st, "big") // its listing began first
	a := firstSweep(t, st, "big", 3*store.FirstSweepPart)
	var newer store.Apply
	store.AfterPart(st, func(ctx context.Context, part int) error {
		if part != 0 {
			t.Errorf("part %d committed after a newer sweep was applied", part)
			return nil
		}
		before := startApply(t, st, "big")
		if _, err := st.ApplySweep(ctx, before); !errors.Is(err, store.ErrConflict) {
			t.Errorf("apply of snapshots read before the first part: %v, want ErrConflict", err)
		}
		older.Expect = a.SweepID
		if _, err := st.ApplySweep(ctx, older); !errors.Is(err, store.ErrStale) {
			t.Errorf("apply of a listing older than the sweep's: %v, want ErrStale", err)
		}
		newer = startApply(t, st, "big")
		state, err := st.TargetState(ctx, "big")
		if err != nil {
			return err
		}
		newer.Expect = state.Version()
		newer.Snapshots = []job.Snapshot{{Job: job.Job{ID: "job-new", Status: job.StatusActive}, Sequence: 1}}
		ev := storetest.NewEvent(t, "big", "job-new", 1, newer.ListedAt)
		newer.Events = func(yield func(jobevent.Event, error) bool) { yield(ev, nil) }
		if _, err := st.ApplySweep(ctx, newer); err != nil {
			t.Errorf("apply of a newer sweep on top of the first part: %v", err)
		}
		return nil
	})
	written, err := st.ApplySweep(t.Context(), a)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the sweep's second part after a newer sweep: %v, want ErrConflict", err)
	}
	if written != store.FirstSweepPart {
		t.Errorf("ApplySweep reports %d events written, want the first part's %d", written, store.FirstSweepPart)
	}
	var jobs, events, distinct int
	if err := st.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM jobs WHERE target = 'big'),
		(SELECT count(*) FROM job_events WHERE target = 'big'),
		(SELECT count(DISTINCT (job_id, sequence)) FROM job_events WHERE target = 'big')`).Scan(&jobs, &events, &distinct); err != nil {
		t.Fatal(err)
	}
	if want := store.FirstSweepPart + 1; jobs != want || events != want || distinct != want {
		t.Errorf("%d jobs, %d events (%d distinct); want %d of each: the first part and the newer sweep", jobs, events, distinct, want)
	}
	state, err := st.TargetState(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if state.LastSweepID != newer.SweepID {
		t.Errorf("target's version %s, want the newer sweep's %s", state.LastSweepID, newer.SweepID)
	}
	var counted int
	if err := st.Pool().QueryRow(t.Context(), `SELECT events FROM sweeps WHERE id = $1`, a.SweepID).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	if counted != store.FirstSweepPart {
		t.Errorf("the sweep's record counts %d events, want its first part's %d", counted, store.FirstSweepPart)
	}
	// What its failure record adds keeps the parts' count.
	if err := st.FinishSweep(t.Context(), store.SweepRecord{ID: a.SweepID, Err: "conflict"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Pool().QueryRow(t.Context(), `SELECT events FROM sweeps WHERE id = $1`, a.SweepID).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	if counted != store.FirstSweepPart {
		t.Errorf("after its failure was recorded, the sweep's record counts %d events, want %d", counted, store.FirstSweepPart)
	}
}

// Events out of job id order cannot be split with their snapshots: a sweep
// written in parts refuses them with an error naming the jobs, and writes
// nothing of the part.
func TestFirstSweepPartsNeedEventsInJobOrder(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	a := firstSweep(t, st, "big", store.FirstSweepPart+10)
	evs := slices.Collect(func(yield func(jobevent.Event) bool) {
		for ev := range a.Events {
			if !yield(ev) {
				return
			}
		}
	})
	evs[1], evs[2] = evs[2], evs[1]
	a.Events = func(yield func(jobevent.Event, error) bool) {
		for _, ev := range evs {
			if !yield(ev, nil) {
				return
			}
		}
	}
	_, err := st.ApplySweep(t.Context(), a)
	if err == nil || !strings.Contains(err.Error(), "event of job job-000001 after one of job job-000002") {
		t.Fatalf("ApplySweep of events out of order: %v, want an error naming job-000001 and job-000002", err)
	}
	var jobs int
	if err := st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM jobs`).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if jobs != 0 {
		t.Errorf("%d jobs written, want none", jobs)
	}
}

// Snapshots read between two parts of a first sweep are out of date once
// the next part commits: an apply of them is refused with ErrConflict (and
// recomputed by the poller), not left to collide with that part's rows.
func TestSnapshotsReadBetweenPartsAreOutOfDate(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	a := firstSweep(t, st, "big", 3*store.FirstSweepPart)
	var b store.Apply
	var bErr error
	store.AfterPart(st, func(ctx context.Context, part int) error {
		switch part {
		case 0:
			b = startApply(t, st, "big") // listed after the sweep's listing ended
			state, snaps, err := st.Snapshots(ctx, "big", 0)
			if err != nil {
				return err
			}
			if len(snaps) != store.FirstSweepPart {
				t.Errorf("read %d snapshots after the first part, want %d", len(snaps), store.FirstSweepPart)
			}
			b.Expect = state.Version()
			// The first job of the next part, new to what b read.
			id := fmt.Sprintf("job-%06d", store.FirstSweepPart)
			b.Snapshots = []job.Snapshot{{Job: job.Job{ID: id, Status: job.StatusActive}, Sequence: 1}}
			ev := storetest.NewEvent(t, "big", id, 1, b.ListedAt)
			b.Events = func(yield func(jobevent.Event, error) bool) { yield(ev, nil) }
		case 1:
			_, bErr = st.ApplySweep(ctx, b)
		}
		return nil
	})
	if _, err := st.ApplySweep(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(bErr, store.ErrConflict) {
		t.Errorf("apply of snapshots read before the second part committed: %v, want ErrConflict", bErr)
	}
}
