package store_test

import (
	"context"

	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// jobRow is a jobs row for insertJobRows; nil times are NULL.
type jobRow struct {
	target, id, status string
	created            *time.Time
	statusSince        *time.Time
	activity           *time.Time
	stalled            *time.Time
	suspended          *time.Time
	removed            *time.Time
	succeeded, failed  int64
}

// insertJobRows writes rows straight into jobs, as the sweeps would have left
// them, and a targets row for each target named.
func insertJobRows(t *testing.T, st *store.Store, targets []string, rows ...jobRow) {
	t.Helper()
	for _, tg := range targets {
		if _, err := st.Pool().Exec(t.Context(), `INSERT INTO targets (target) VALUES ($1)`, tg); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rows {
		_, err := st.Pool().Exec(t.Context(), `
			INSERT INTO jobs (target, job_id, status, operation, description, priority, creation_time,
			                  tasks_total, tasks_succeeded, tasks_failed, descriptor,
			                  first_seen_at, last_seen_at, last_changed_at, removed_at, last_sequence,
			                  status_since, activity_at, stalled_at, suspended_since)
			VALUES ($1, $2, $3, 'PutObjectTagging', 'desc of ' || $2, 7, $4, 1000, $5, $6, '{}',
			        now(), now(), now(), $7, 1, $8, $9, $10, $11)`,
			r.target, r.id, r.status, r.created, r.succeeded, r.failed, r.removed,
			r.statusSince, r.activity, r.stalled, r.suspended)
		if err != nil {
			t.Fatalf("insert job %s: %v", r.id, err)
		}
	}
}

func at(now time.Time, ago time.Duration) *time.Time {
	t := now.Add(-ago)
	return &t
}

// jobsWorld is a database holding jobs in every state the listing must
// tell apart, with now the reference time of their timestamps.
func jobsWorld(t *testing.T) (*store.Store, time.Time) {
	t.Helper()
	st := storetest.NewStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	ago := func(d time.Duration) *time.Time { return at(now, d) }
	h := time.Hour
	insertJobRows(t, st, []string{"hz", "sh", "idle"},
		jobRow{target: "hz", id: "a-active", status: "Active", created: ago(h), statusSince: ago(30 * time.Minute), activity: ago(10 * time.Minute), succeeded: 100, failed: 5},
		jobRow{target: "hz", id: "b-stalled", status: "Active", created: ago(2 * h), statusSince: ago(2 * h), activity: ago(90 * time.Minute), stalled: ago(30 * time.Minute)},
		// Discovered already Suspended: suspended_since is its creation time.
		jobRow{target: "hz", id: "c-suspended", status: "Suspended", created: ago(50 * h), statusSince: ago(40 * h), activity: ago(40 * h), suspended: ago(50 * h)},
		jobRow{target: "sh", id: "d-suspended", status: "Suspended", created: ago(3 * h), statusSince: ago(h), activity: ago(h), suspended: ago(h)},
		// Finished, and with a stale stalled_at: never counted as stalled.
		jobRow{target: "hz", id: "e-complete", status: "Complete", created: ago(30 * time.Minute), stalled: ago(time.Minute), succeeded: 1000},
		// Removed: never shown, never counted, however urgent it looks.
		jobRow{target: "hz", id: "f-removed", status: "Suspended", created: ago(5 * time.Minute), suspended: ago(300 * h), removed: ago(time.Minute)},
		jobRow{target: "sh", id: "g-failed", status: "Failed", created: ago(4 * h)},
		jobRow{target: "hz", id: "h-no-creation", status: "Preparing"},
		// Same creation time: job id decides.
		jobRow{target: "hz", id: "k-2", status: "Ready", created: ago(150 * time.Minute)},
		jobRow{target: "hz", id: "k-1", status: "Ready", created: ago(150 * time.Minute)},
		// A status OSS may add one day: unfinished.
		jobRow{target: "sh", id: "x-frobbing", status: "Frobbing", created: ago(6 * h)},
	)
	return st, now
}

func TestJobs(t *testing.T) {
	t.Parallel()
	st, _ := jobsWorld(t)
	unfinished := map[string]int{"Active": 2, "Ready": 2, "Suspended": 2, "Preparing": 1, "Frobbing": 1}
	for _, tc := range []struct {
		name     string
		q        store.JobsQuery
		want     []string
		total    int
		byStatus map[string]int
	}{
		{"default: live unfinished, newest first", store.JobsQuery{},
			[]string{"a-active", "b-stalled", "k-1", "k-2", "d-suspended", "x-frobbing", "c-suspended", "h-no-creation"}, 8, unfinished},
		{"finished too", store.JobsQuery{Finished: true},
			[]string{"e-complete", "a-active", "b-stalled", "k-1", "k-2", "d-suspended", "g-failed", "x-frobbing", "c-suspended", "h-no-creation"}, 10,
			map[string]int{"Active": 2, "Ready": 2, "Suspended": 2, "Preparing": 1, "Frobbing": 1, "Complete": 1, "Failed": 1}},
		{"a target", store.JobsQuery{Target: "sh"}, []string{"d-suspended", "x-frobbing"}, 2, map[string]int{"Suspended": 1, "Frobbing": 1}},
		{"a target, finished too", store.JobsQuery{Target: "sh", Finished: true}, []string{"d-suspended", "g-failed", "x-frobbing"}, 3,
			map[string]int{"Suspended": 1, "Failed": 1, "Frobbing": 1}},
		{"statuses", store.JobsQuery{Statuses: []string{"Active", "Complete"}, Finished: true}, []string{"e-complete", "a-active", "b-stalled"}, 3,
			map[string]int{"Active": 2, "Complete": 1}},
		{"a finished status without Finished", store.JobsQuery{Statuses: []string{"Complete"}}, nil, 0, map[string]int{}},
		{"stalled", store.JobsQuery{Stalled: true}, []string{"b-stalled"}, 1, map[string]int{"Active": 1}},
		{"suspended", store.JobsQuery{Suspended: true}, []string{"d-suspended", "c-suspended"}, 2, map[string]int{"Suspended": 2}},
		{"suspended in a target", store.JobsQuery{Suspended: true, Target: "hz"}, []string{"c-suspended"}, 1, map[string]int{"Suspended": 1}},
		{"limit: counts cover every job selected", store.JobsQuery{Limit: 3}, []string{"a-active", "b-stalled", "k-1"}, 8, unfinished},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := st.Jobs(t.Context(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, j := range list.Jobs {
				ids = append(ids, j.JobID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("jobs %q, want %q", ids, tc.want)
			}
			if list.Total != tc.total || !equalCounts(list.ByStatus, tc.byStatus) {
				t.Errorf("total %d by status %v, want %d and %v", list.Total, list.ByStatus, tc.total, tc.byStatus)
			}
		})
	}
	if _, err := st.Jobs(t.Context(), store.JobsQuery{Limit: -1}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative limit: %v", err)
	}
}

func TestJobsFields(t *testing.T) {
	t.Parallel()
	st, now := jobsWorld(t)
	list, err := st.Jobs(t.Context(), store.JobsQuery{Finished: true})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.JobRow{}
	for _, j := range list.Jobs {
		byID[j.JobID] = j
	}
	day := 24 * time.Hour
	a, b, c, d, h := byID["a-active"], byID["b-stalled"], byID["c-suspended"], byID["d-suspended"], byID["h-no-creation"]
	for _, tc := range []struct {
		what      string
		got, want time.Time
	}{
		{"a created", a.CreationTime, now.Add(-time.Hour)},
		{"a status since", a.StatusSince, now.Add(-30 * time.Minute)},
		{"a activity", a.ActivityAt, now.Add(-10 * time.Minute)},
		{"a stalled since (not stalled)", a.StalledSince(), time.Time{}},
		{"a fails at (not suspended)", a.FailsAt(), time.Time{}},
		{"b stalled at", b.StalledAt, now.Add(-30 * time.Minute)},
		{"b stalled since = activity_at", b.StalledSince(), now.Add(-90 * time.Minute)},
		{"c suspended since", c.SuspendedSince, now.Add(-50 * time.Hour)},
		{"c fails at = suspended_since + 14 days", c.FailsAt(), now.Add(-50 * time.Hour).Add(14 * day)},
		{"d fails at = suspended_since + 14 days", d.FailsAt(), now.Add(-time.Hour).Add(14 * day)},
		{"h created (null)", h.CreationTime, time.Time{}},
		{"h status since (null)", h.StatusSince, time.Time{}},
	} {
		if !tc.got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, tc.got, tc.want)
		}
	}
	if a.Target != "hz" || a.Status != "Active" || a.Operation != "PutObjectTagging" || a.Description != "desc of a-active" ||
		a.Priority != 7 || a.Tasks.Total != 1000 || a.Tasks.Succeeded != 100 || a.Tasks.Failed != 5 {
		t.Errorf("a-active: %+v", a)
	}
}

func TestAttention(t *testing.T) {
	t.Parallel()
	st, now := jobsWorld(t)
	got, err := st.Attention(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	want := []store.AttentionStats{
		{Target: "hz", Stalled: 1, AwaitingConfirmation: 1, SoonestFailsAt: now.Add(-50 * time.Hour).Add(14 * day)},
		{Target: "idle"},
		{Target: "sh", AwaitingConfirmation: 1, SoonestFailsAt: now.Add(-time.Hour).Add(14 * day)},
	}
	if len(got) != len(want) {
		t.Fatalf("Attention = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Target != w.Target || g.Stalled != w.Stalled || g.AwaitingConfirmation != w.AwaitingConfirmation || !g.SoonestFailsAt.Equal(w.SoonestFailsAt) {
			t.Errorf("Attention[%d] = %+v, want %+v", i, g, w)
		}
	}
}

// The metrics query runs at every scrape: it must reach the live unfinished
// jobs through jobs_attention_idx, not read every job ever seen.
func TestAttentionUsesItsIndex(t *testing.T) {
	t.Parallel()
	st, _ := jobsWorld(t)
	err := st.WithTx(t.Context(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		var plan strings.Builder
		rows, err := tx.Query(context.Background(), `EXPLAIN `+store.AttentionSQL)
		if err != nil {
			return err
		}
		var line string
		if _, err := pgx.ForEachRow(rows, []any{&line}, func() error { plan.WriteString(line + "\n"); return nil }); err != nil {
			return err
		}
		if !strings.Contains(plan.String(), "jobs_attention_idx") {
			t.Errorf("the attention query does not use jobs_attention_idx:\n%s", plan.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
