package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// TestLargeSweepsWriteAsSmallOnesDo: more than SnapshotChunk snapshots go
// by COPY, straight into jobs on a target's first sweep and through a
// temporary table after; either way every column of every row is what the
// unnest'ed statement of small sweeps writes, tombstones, anomalies, odd
// ids and null times included.
func TestLargeSweepsWriteAsSmallOnesDo(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	ctx := t.Context()
	n := store.SnapshotChunk + 500
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	snapshot := func(i int, round int64) job.Snapshot {
		j := job.Job{ID: fmt.Sprintf("job %05d", i), Status: job.Statuses[i%len(job.Statuses)],
			Operation: "PutObjectTagging", Description: fmt.Sprintf("round %d <&> \"%d\"", round, i), Priority: int64(i % 7),
			Tasks: job.Tasks{Total: int64(i) + round, Succeeded: int64(i / 2), Failed: int64(i % 3)}, ElapsedActiveSeconds: int64(i)}
		if i%5 != 0 {
			j.CreationTime = base.Add(-time.Duration(i) * time.Minute)
		}
		if j.Status.Terminal() {
			j.TerminationTime = base.Add(time.Duration(round) * time.Hour)
		}
		if i%97 == 0 {
			j.Anomalies = []job.Anomaly{{Field: "TerminationDate", Raw: "-5", Reason: "negative Unix time"}}
		}
		sn := job.Snapshot{Job: j, Sequence: round + int64(i%4)}
		sn.StatusSince, sn.ActivityAt = base.Add(time.Duration(round)*time.Minute), base
		if j.Status == job.StatusSuspended {
			sn.SuspendedSince, sn.RemindersSent, sn.RemindedUpTo = base.Add(-48*time.Hour), 1, 24*time.Hour
		}
		if i%11 == 0 {
			sn.StalledAt = base.Add(time.Hour)
		}
		return sn
	}

	// apply writes snaps to target "copy" by ApplySweep, and to target
	// "unnest" the way a small sweep does, at the same listing time and
	// sweep id.
	expect := ""
	apply := func(snaps []job.Snapshot) {
		t.Helper()
		id := uuid.Must(uuid.NewV7()).String()
		listed, err := st.StartSweep(ctx, id, "copy")
		if err != nil {
			t.Fatal(err)
		}
		a := store.Apply{Target: "copy", SweepID: id, ListedAt: listed, Expect: expect, Snapshots: snaps}
		if _, err := st.ApplySweep(ctx, a); err != nil {
			t.Fatalf("ApplySweep of %d snapshots: %v", len(snaps), err)
		}
		expect = id
		a.Target = "unnest"
		if err := store.UpsertUnnest(ctx, st, a); err != nil {
			t.Fatalf("upsert of %d snapshots over unnest: %v", len(snaps), err)
		}
		compareTargets(t, st, "copy", "unnest")
	}

	first := make([]job.Snapshot, n)
	for i := range first {
		first[i] = snapshot(i, 1)
	}
	apply(first) // no rows yet: COPY into jobs

	// A second sweep: the first half changed, every 13th of them removed,
	// and as many new jobs.
	var second []job.Snapshot
	for i := range n / 2 {
		sn := snapshot(i, 2)
		sn.Removed = i%13 == 0
		second = append(second, sn)
	}
	for i := n; i < n+n/2; i++ {
		second = append(second, snapshot(i, 2))
	}
	apply(second) // rows exist: COPY into a temporary table, merged

	var rows int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs WHERE target = 'copy'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := n + n/2; rows != want {
		t.Errorf("%d rows, want %d", rows, want)
	}
}

// compareTargets fails t unless the jobs rows of targets a and b agree in
// every column but target, the descriptors' text byte for byte.
func compareTargets(t *testing.T, st *store.Store, a, b string) {
	t.Helper()
	var differ int
	var example *string
	err := st.Pool().QueryRow(context.Background(), `
		WITH x AS (SELECT job_id, to_jsonb(j) - 'target' || jsonb_build_object('descriptor', descriptor::text) AS r FROM jobs j WHERE target = $1),
		     y AS (SELECT job_id, to_jsonb(j) - 'target' || jsonb_build_object('descriptor', descriptor::text) AS r FROM jobs j WHERE target = $2)
		SELECT count(*), min(coalesce(x.r::text, '(none)') || ' vs ' || coalesce(y.r::text, '(none)'))
		FROM x FULL JOIN y USING (job_id) WHERE x.r IS DISTINCT FROM y.r`, a, b).Scan(&differ, &example)
	if err != nil {
		t.Fatal(err)
	}
	if differ > 0 {
		t.Errorf("%d rows of target %s differ from %s's, e.g.\n%s", differ, a, b, *example)
	}
}
