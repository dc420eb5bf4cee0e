package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// benchData fills a migrated database with generate_series: jobs in every
// status (70% Complete, 10% Failed, 8% Active, 2% Suspended, …) created
// 30 s apart, ten events each (discovered, a status change, progress, and
// the final status change of a finished job) in observation order, all
// published but the last thousand, and a notification for the first event
// of every hundredth job.
var benchData = []string{
	`INSERT INTO targets (target, baseline_done, last_listed_at, last_sweep_id, last_full_listed_at)
	 VALUES ('hz', true, now(), gen_random_uuid(), now()), ('sh', true, now(), gen_random_uuid(), now())`,
	`INSERT INTO sweeps (id, target, started_at, finished_at, listing_ended_at, pages, jobs_listed, events, complete, mode, error)
	 SELECT gen_random_uuid(), t, now() - g * interval '1 minute', now() - g * interval '1 minute' + interval '2.5 seconds',
	        now() - g * interval '1 minute' + interval '2 seconds', 60, 60000, 40, g % 97 <> 0,
	        CASE WHEN g % 15 = 0 THEN 'full' ELSE 'hot' END, CASE WHEN g % 97 = 0 THEN 'ListJobs: ServiceUnavailable' END
	 FROM unnest(ARRAY['hz', 'sh']) AS t, generate_series(1, 10080) AS g`,
	`CREATE TEMP TABLE bench_jobs AS
	 SELECT i,
	        CASE WHEN i % 5 < 3 THEN 'hz' ELSE 'sh' END AS target,
	        encode(sha256(('job ' || i)::bytea), 'base64') AS job_id,
	        CASE WHEN i % 100 < 70 THEN 'Complete' WHEN i % 100 < 80 THEN 'Failed' WHEN i % 100 < 85 THEN 'Cancelled'
	             WHEN i % 100 < 93 THEN 'Active' WHEN i % 100 < 95 THEN 'Suspended' WHEN i % 100 = 95 THEN 'New'
	             WHEN i % 100 = 96 THEN 'Preparing' WHEN i % 100 = 97 THEN 'Ready' WHEN i % 100 = 98 THEN 'Paused'
	             ELSE 'Failing' END AS status,
	        CASE WHEN i % 3 = 0 THEN 'RestoreObject' ELSE 'PutObjectTagging' END AS operation,
	        'nightly batch ' || i || ' of bucket logs-' || (i % 37) AS description,
	        now() - (100001 - i) * interval '30 seconds' AS created
	 FROM generate_series(1, 100000) AS i`,
	`INSERT INTO jobs (target, job_id, status, operation, description, priority, creation_time, termination_time,
	                   tasks_total, tasks_succeeded, tasks_failed, elapsed_active_seconds, descriptor,
	                   first_seen_at, last_seen_at, last_changed_at, last_sequence, listed_at,
	                   status_since, activity_at, stalled_at, suspended_since)
	 SELECT target, job_id, status, operation, description, i % 100, created,
	        CASE WHEN status IN ('Complete', 'Failed', 'Cancelled') THEN created + interval '9 minutes' END,
	        1000, 900, CASE WHEN status = 'Failed' THEN 100 ELSE 0 END, 540,
	        jsonb_build_object('jobId', job_id, 'operation', operation, 'description', description, 'priority', i % 100,
	                           'status', status, 'creationTime', created, 'tasks', jsonb_build_object('total', 1000, 'succeeded', 900, 'failed', 0),
	                           'elapsedActiveSeconds', 540),
	        created, created + interval '9 minutes', created + interval '9 minutes', 10, now(),
	        created + interval '9 minutes', created + interval '9 minutes',
	        CASE WHEN status = 'Active' AND i % 16 = 0 THEN created + interval '2 hours' END,
	        CASE WHEN status = 'Suspended' THEN created + interval '1 minute' END
	 FROM bench_jobs`,
	`INSERT INTO job_events (id, target, job_id, sequence, type, subject, from_status, to_status, payload, observed_at, published_at)
	 SELECT gen_random_uuid(), target, job_id, s, typ, 'ossjobs.' || target || '.' || kind,
	        CASE WHEN kind = 'status_changed' THEN prev END, CASE WHEN kind IN ('discovered', 'status_changed') THEN st END,
	        json_build_object('specversion', '1.0', 'id', gen_random_uuid(), 'source', '/ossjobwatch/' || target, 'type', typ,
	            'subject', job_id, 'time', at, 'datacontenttype', 'application/json',
	            'data', json_build_object('jobId', job_id, 'target', target, 'region', 'cn-hangzhou', 'status', st,
	                'operation', operation, 'description', description, 'priority', i % 100, 'creationTime', created,
	                'terminationTime', null, 'tasks', json_build_object('total', 1000, 'succeeded', s * 100, 'failed', 0),
	                'elapsedActiveSeconds', s * 60, 'failedDelta', 0, 'succeededDelta', 100, 'sequence', s,
	                'observedAt', at, 'sweepId', gen_random_uuid(), 'baseline', false)),
	        at, at
	 FROM (SELECT j.*, s, j.created + s * interval '1 minute' AS at,
	              CASE WHEN s = 1 THEN 'discovered' WHEN s = 2 OR (s = 10 AND j.status IN ('Complete', 'Failed', 'Cancelled')) THEN 'status_changed'
	                   ELSE 'progress' END AS kind,
	              CASE WHEN s = 1 THEN 'New' WHEN s < 10 OR j.status NOT IN ('Complete', 'Failed', 'Cancelled') THEN
	                   CASE WHEN j.status IN ('Complete', 'Failed', 'Cancelled') THEN 'Active' ELSE j.status END
	                   ELSE j.status END AS st,
	              CASE WHEN s = 2 THEN 'New' ELSE 'Active' END AS prev
	       FROM bench_jobs j, generate_series(1, 10) AS s) AS e,
	      LATERAL (SELECT 'ossjobwatch.job.' || kind AS typ) AS t
	 ORDER BY at, job_id`,
	`UPDATE job_events SET published_at = NULL WHERE pos > (SELECT max(pos) - 1000 FROM job_events)`,
	`INSERT INTO outbox (pos) SELECT pos FROM job_events WHERE published_at IS NULL`,
	`INSERT INTO notify_deliveries (event_id, receiver, route, target, job_id, attempts, first_attempt_at, last_attempt_at, delivered_at)
	 SELECT e.id, 'ops-dingtalk', 'failures', e.target, e.job_id, 1, e.observed_at, e.observed_at, e.observed_at
	 FROM job_events e JOIN bench_jobs j ON j.job_id = e.job_id AND j.target = e.target
	 WHERE e.sequence = 1 AND j.i % 100 = 70`,
	`VACUUM ANALYZE`,
}

// BenchmarkConsole measures each page (overview-uncounted: counting the
// jobs on every request, which the console otherwise does every 5 s) on a database of 100,000 jobs and
// 1,000,000 events: the handler's whole answer (queries in a read-only
// transaction, and rendering), reported as p50 and p95 in milliseconds.
//
//	go test -run '^$' -bench Console -benchtime 40x ./console
func BenchmarkConsole(b *testing.B) {
	st := storetest.NewStore(b)
	ctx := context.Background()
	start := time.Now()
	for _, sql := range benchData {
		if _, err := st.Pool().Exec(ctx, sql); err != nil {
			b.Fatalf("fill the database: %v\n%s", err, sql)
		}
	}
	var jobs, events int
	if err := st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_events)`).Scan(&jobs, &events); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled the database in %s: %d jobs, %d events", time.Since(start).Round(time.Second), jobs, events)

	c, err := New(Config{Reader: st.Reader()})
	if err != nil {
		b.Fatal(err)
	}
	uncached, err := New(Config{Reader: st.Reader(), CountsTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	var mid store.JobCursor
	var midCreated time.Time
	if err := st.Pool().QueryRow(ctx, `SELECT creation_time, target, job_id FROM jobs ORDER BY creation_time DESC, target DESC, job_id DESC OFFSET 50000 LIMIT 1`).
		Scan(&midCreated, &mid.Target, &mid.JobID); err != nil {
		b.Fatal(err)
	}
	mid.Created = midCreated
	var notified, stalled string
	if err := st.Pool().QueryRow(ctx, `SELECT job_id FROM notify_deliveries LIMIT 1`).Scan(&notified); err != nil {
		b.Fatal(err)
	}
	if err := st.Pool().QueryRow(ctx, `SELECT job_id FROM jobs WHERE stalled_at IS NOT NULL LIMIT 1`).Scan(&stalled); err != nil {
		b.Fatal(err)
	}
	day := midCreated.UTC().Format("2006-01-02")
	pages := []struct {
		name, path string
		c          *Console
	}{
		{"overview", "/ui/", c},
		{"overview-uncounted", "/ui/", uncached},
		{"jobs", "/ui/jobs", c},
		{"jobs-status-target", "/ui/jobs?status=Failed&target=sh", c},
		{"jobs-rare-status", "/ui/jobs?status=Failing&target=sh", c},
		{"jobs-text-broad", "/ui/jobs?q=batch", c},
		{"jobs-text-match", "/ui/jobs?q=" + url.QueryEscape("batch 4242 "), c},
		{"jobs-text-nomatch", "/ui/jobs?q=nothing-matches-this", c},
		{"jobs-text-id", "/ui/jobs?q=" + url.QueryEscape(notified), c},
		{"jobs-operation", "/ui/jobs?operation=RestoreObject&status=Active", c},
		{"jobs-created-day", "/ui/jobs?from=" + day + "&to=" + day, c},
		{"jobs-page-50000", "/ui/jobs?after=" + encodeCursor(&mid), c},
		{"job", jobURL("hz", notified), c},
		{"job-stalled", jobURL("hz", stalled), c},
		{"live", "/ui/live", c},
		{"live-filtered-nomatch", "/ui/live?type=removed&q=nothing", c},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, p.path, nil)
				t0 := time.Now()
				p.c.ServeHTTP(rec, req)
				took = append(took, time.Since(t0))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d\n%s", p.path, rec.Code, rec.Body)
				}
			}
			report(b, took)
		})
	}
	// The live view's poll, once a second per viewer.
	var top int64
	if err := st.Pool().QueryRow(ctx, `SELECT max(pos) FROM job_events`).Scan(&top); err != nil {
		b.Fatal(err)
	}
	b.Run("live-poll", func(b *testing.B) {
		var took []time.Duration
		r := st.Reader()
		for b.Loop() {
			t0 := time.Now()
			if _, _, _, err := r.EventsAfter(ctx, store.EventFilter{}, top-20, []store.PosRange{{From: top - 100, To: top - 90}, {From: top - 50, To: top - 45}}, liveBatch); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(t0))
		}
		report(b, took)
	})
}

// report adds the p50 and p95 latencies to the benchmark's line.
func report(b *testing.B, took []time.Duration) {
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
	b.ReportMetric(0, "ns/op") // the percentiles say it better
	if p95 := at(0.95); p95 > 200 {
		b.Logf("%s: p95 %.1f ms is over the 200 ms budget", b.Name(), p95)
	}
}
