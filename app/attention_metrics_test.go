package app

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// /metrics shows, per target, the stalled jobs, the jobs awaiting
// confirmation and when the soonest of those fails; a target with neither
// shows zeros and no failsAt; a database that does not answer in time
// leaves the three out.
func TestAttentionMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true}, 2, "@every 1m")
	created := time.Now().Add(-50 * time.Hour).Truncate(time.Second)
	b.sim.Put(job.Detail{Job: job.Job{ID: "job-moving", Status: job.StatusActive, CreationTime: created, Tasks: job.Tasks{Total: 10}}})
	b.sim.Put(job.Detail{Job: job.Job{ID: "job-frozen", Status: job.StatusActive, CreationTime: created, Tasks: job.Tasks{Total: 10}}})
	b.sim.Put(job.Detail{Job: job.Job{ID: "job-waiting", Status: job.StatusSuspended, CreationTime: created, Tasks: job.Tasks{Total: 10}}, ConfirmationRequired: true})
	a := b.open(t)
	if _, err := a.SweepAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The sweeps keep stalled_at and suspended_since; here they are set as a
	// sweep would have, so that this test is about the metrics alone. Only
	// target-0's rows: target-1 has the same jobs and nothing to show.
	admin, err := pgx.Connect(t.Context(), b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(t.Context(), sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE jobs SET stalled_at = now(), activity_at = now() - interval '2 hours' WHERE target = 'target-0' AND job_id = 'job-frozen'`)
	exec(`UPDATE jobs SET suspended_since = CASE target WHEN 'target-0' THEN creation_time END WHERE job_id = 'job-waiting'`)
	exec(`UPDATE jobs SET status = 'Preparing' WHERE target = 'target-1' AND job_id = 'job-waiting'`)

	srv := httptest.NewServer(a.handler())
	t.Cleanup(srv.Close)
	body := get(t, srv.URL+"/metrics", 200)
	for _, want := range []string{
		`ossjobwatch_jobs_stalled{target="target-0"} 1`,
		`ossjobwatch_jobs_stalled{target="target-1"} 0`,
		`ossjobwatch_jobs_awaiting_confirmation{target="target-0"} 1`,
		`ossjobwatch_jobs_awaiting_confirmation{target="target-1"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	m := regexp.MustCompile(`(?m)^ossjobwatch_confirmation_fails_at_timestamp_seconds\{target="target-0"\} (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics lacks target-0's ossjobwatch_confirmation_fails_at_timestamp_seconds:\n%s", body)
	}
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || int64(v) != created.Add(14*24*time.Hour).Unix() {
		t.Errorf("fails at %s, want %d (creation time + 14 days)", m[1], created.Add(14*24*time.Hour).Unix())
	}
	if strings.Contains(body, `ossjobwatch_confirmation_fails_at_timestamp_seconds{target="target-1"}`) {
		t.Errorf("target-1 has no job awaiting confirmation, yet a fails-at series")
	}

	// A database that hangs: the query waits behind a lock until the
	// collector's timeout, and the series are left out, the rest served.
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	body = get(t, srv.URL+"/metrics", 200)
	if strings.Contains(body, "\nossjobwatch_jobs_stalled{") || strings.Contains(body, "\nossjobwatch_jobs_awaiting_confirmation{") ||
		strings.Contains(body, "\nossjobwatch_confirmation_fails_at_timestamp_seconds{") || !strings.Contains(body, "ossjobwatch_sweep_duration_seconds_count") {
		t.Errorf("with the jobs table locked, /metrics must leave the attention series out and serve the rest:\n%s", body)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if body = get(t, srv.URL+"/metrics", 200); !strings.Contains(body, `ossjobwatch_jobs_stalled{target="target-0"} 1`) {
		t.Errorf("the attention series did not come back with the database")
	}
}
