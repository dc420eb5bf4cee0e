package console_test

import (
	"net/http/httptest"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/console"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// TestJobsSearchShowsTheJobWithThatIDFirst: a search for a job id shows
// that job first, however old, then the jobs whose id or description
// contains the text, newest first; in the other filters' targets only.
func TestJobsSearchShowsTheJobWithThatIDFirst(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	if _, err := st.Pool().Exec(t.Context(), `
		INSERT INTO targets (target) VALUES ('hz'), ('sh');
		INSERT INTO jobs (target, job_id, status, descriptor, first_seen_at, last_seen_at, last_changed_at, last_sequence, creation_time)
		SELECT 'hz', 'AbC-' || g, 'Active', '{}'::jsonb, now(), now(), now(), 1, now() - g * interval '1 minute'
		FROM generate_series(1, 80) AS g
		UNION ALL
		SELECT 'hz', 'AbC', 'Active', '{}'::jsonb, now(), now(), now(), 1, now() - interval '1 year'
		UNION ALL
		SELECT 'sh', 'AbC', 'Failed', '{}'::jsonb, now(), now(), now(), 1, now() - interval '2 years'`); err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Config{Reader: st.Reader()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	rows := jobRows(get(t, srv, "/ui/jobs?q=AbC").body)
	if len(rows) < 3 || rows[0].id != "AbC" || rows[1].id != "AbC" || rows[2].id != "AbC-1" {
		t.Fatalf("q=AbC: %v, want both jobs AbC first, then AbC-1 …", rows)
	}
	for _, r := range rows[2:] {
		if r.id == "AbC" {
			t.Errorf("q=AbC shows the job AbC twice")
		}
	}
	rows = jobRows(get(t, srv, "/ui/jobs?q=AbC&target=sh").body)
	if len(rows) != 1 || rows[0].id != "AbC" || rows[0].status != "Failed" {
		t.Errorf("q=AbC&target=sh: %v, want sh's job AbC alone", rows)
	}
	rows = jobRows(get(t, srv, "/ui/jobs?q=abc&status=Active").body)
	if len(rows) == 0 || rows[0].id != "AbC-1" {
		t.Errorf("q=abc (not the id exactly): %v, want the newest first", rows)
	}
}
