package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// jobsDatabase returns the URL of a migrated database holding jobs in the
// states `ossjobwatch jobs` tells apart, their times relative to now.
func jobsDatabase(t *testing.T) string {
	t.Helper()
	dbURL := storetest.NewDatabaseURL(t)
	st, err := store.Open(t.Context(), dbURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err = st.Pool().Exec(t.Context(), `
		INSERT INTO jobs (target, job_id, status, description, creation_time, tasks_total, tasks_succeeded, tasks_failed,
		                  descriptor, first_seen_at, last_seen_at, last_changed_at, last_sequence,
		                  status_since, activity_at, stalled_at, suspended_since, removed_at)
		VALUES
		('hz', 'job-active', 'Active', 'nightly retag', now() - interval '4 hours', 1000, 100, 5,
		 '{}', now(), now(), now(), 3, now() - interval '3 hours 12 minutes 30 seconds', now() - interval '1 minute', NULL, NULL, NULL),
		('hz', 'job-stalled', 'Active', 'restore archives', now() - interval '2 hours', 50, 10, 0,
		 '{}', now(), now(), now(), 2, now() - interval '2 hours', now() - interval '95 minutes 30 seconds', now() - interval '30 minutes', NULL, NULL),
		('sh', E'job-\x1b[31mevil', 'Suspended', E'line1\nline2', now() - interval '50 hours 30 minutes', 10, 0, 0,
		 '{}', now(), now(), now(), 1, now() - interval '50 hours 30 minutes', now() - interval '50 hours 30 minutes', NULL, now() - interval '50 hours 30 minutes', NULL),
		('hz', 'job-done', 'Complete', 'done', now() - interval '10 minutes', 10, 10, 0,
		 '{}', now(), now(), now(), 4, now() - interval '1 minute', now() - interval '1 minute', NULL, NULL, NULL),
		('hz', 'job-gone', 'Active', 'removed', now(), 10, 1, 0,
		 '{}', now(), now(), now(), 4, now(), now(), NULL, NULL, now())`)
	if err != nil {
		t.Fatal(err)
	}
	return dbURL
}

func TestJobsVerb(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OSSJOBWATCH_DATABASE_URL": jobsDatabase(t)}

	// On a pipe: tab-separated lines on stdout, the summary on stderr.
	code, stdout, stderr := runVerb(t, env, "jobs")
	if code != exitOK {
		t.Fatalf("jobs: code %d, stderr %q", code, stderr)
	}
	want := "hz\tjob-stalled\tActive\t2h\t10/50 ok, 0 failed\tstalled for 1h35m\trestore archives\n" +
		"hz\tjob-active\tActive\t3h12m\t100/1000 ok, 5 failed\t\tnightly retag\n" +
		"sh\t\"job-\\x1b[31mevil\"\tSuspended\t2d2h\t0/10 ok, 0 failed\tconfirm: fails in 11d21h, "
	if !strings.HasPrefix(stdout, want) || !strings.HasSuffix(stdout, "\t\"line1\\nline2\"\n") || strings.Count(stdout, "\n") != 3 {
		t.Errorf("jobs on a pipe:\n%s\nwant it to start with\n%s", stdout, want)
	}
	if stderr != "3 unfinished jobs: 1 Suspended, 2 Active\n" {
		t.Errorf("jobs summary on a pipe: %q", stderr)
	}

	code, stdout, stderr = runVerb(t, env, "jobs", "--all", "--limit", "2")
	if code != exitOK || strings.Count(stdout, "\n") != 2 || !strings.HasPrefix(stdout, "hz\tjob-done\tComplete\t") ||
		stderr != "… 2 more (--limit 2; --limit 0 shows all)\n4 jobs: 1 Suspended, 2 Active, 1 Complete\n" {
		t.Errorf("jobs --all --limit 2: code %d\n%s\nstderr %q", code, stdout, stderr)
	}
	for _, tc := range []struct {
		args []string
		ids  []string
	}{
		{[]string{"--stalled"}, []string{"job-stalled"}},
		{[]string{"--suspended"}, []string{`"job-\x1b[31mevil"`}},
		{[]string{"--target", "hz"}, []string{"job-stalled", "job-active"}},
		{[]string{"--status", "Complete,Suspended"}, []string{"job-done", `"job-\x1b[31mevil"`}},
		{[]string{"--status", "Complete", "--status", "Active", "--target", "hz"}, []string{"job-done", "job-stalled", "job-active"}},
	} {
		code, stdout, stderr := runVerb(t, env, append([]string{"jobs"}, tc.args...)...)
		var ids []string
		for line := range strings.Lines(stdout) {
			ids = append(ids, strings.Split(line, "\t")[1])
		}
		if code != exitOK || strings.Join(ids, " ") != strings.Join(tc.ids, " ") {
			t.Errorf("jobs %q: code %d, ids %q, want %q (stderr %q)", tc.args, code, ids, tc.ids, stderr)
		}
	}

	// --json: every field, the contract's names, the ids as they are.
	code, stdout, _ = runVerb(t, env, "jobs", "--json")
	if code != exitOK {
		t.Fatalf("jobs --json: code %d", code)
	}
	var got []map[string]any
	for line := range strings.Lines(stdout) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("jobs --json line %q: %v", line, err)
		}
		got = append(got, m)
	}
	if len(got) != 3 {
		t.Fatalf("jobs --json: %d lines, want 3:\n%s", len(got), stdout)
	}
	parse := func(v any) time.Time {
		s, _ := v.(string)
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Errorf("%v is not an RFC 3339 time", v)
		}
		return tm
	}
	stalled, evil := got[0], got[2]
	if stalled["jobId"] != "job-stalled" || stalled["stalledSince"] != stalled["activityAt"] || stalled["stalledAt"] == nil ||
		stalled["failsAt"] != nil || stalled["suspendedSince"] != nil {
		t.Errorf("stalled job in JSON: %v", stalled)
	}
	if got[1]["stalledSince"] != nil || got[1]["terminationTime"] != nil {
		t.Errorf("moving job in JSON: %v", got[1])
	}
	if evil["jobId"] != "job-\x1b[31mevil" || evil["description"] != "line1\nline2" {
		t.Errorf("JSON must keep the id and description as they are: %q %q", evil["jobId"], evil["description"])
	}
	if fails, since := parse(evil["failsAt"]), parse(evil["suspendedSince"]); !fails.Equal(since.Add(14 * 24 * time.Hour)) {
		t.Errorf("failsAt %v, want suspendedSince %v + 14 days", fails, since)
	}
	tasks, _ := got[1]["tasks"].(map[string]any)
	if tasks["total"] != 1000.0 || tasks["succeeded"] != 100.0 || tasks["failed"] != 5.0 {
		t.Errorf("tasks in JSON: %v", got[1]["tasks"])
	}

	if _, _, stderr := runVerb(t, env, "jobs", "--stalled"); stderr != "1 unfinished job: 1 Active\n" {
		t.Errorf("jobs --stalled summary: %q", stderr)
	}
	if _, _, stderr := runVerb(t, env, "jobs", "--target", "nowhere"); stderr != "0 unfinished jobs\n" {
		t.Errorf("jobs in an unknown target, summary: %q", stderr)
	}
	for _, args := range [][]string{{"jobs", "--limit", "-1"}, {"jobs", "extra"}} {
		if code, _, _ := runVerb(t, env, args...); code != exitUsage {
			t.Errorf("%q: code %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, stderr := runVerb(t, nil, "jobs"); code != exitUsage || !strings.Contains(stderr, "OSSJOBWATCH_DATABASE_URL: required") {
		t.Errorf("jobs without a database: code %d, stderr %q", code, stderr)
	}
}

// On a terminal: a header, aligned columns, colours where they help.
func TestJobsTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	jobs := []store.JobRow{
		{Target: "hz", JobID: "job-1", Status: "Active", Description: "retag", StatusSince: now.Add(-3*time.Hour - 12*time.Minute),
			ActivityAt: now.Add(-2 * time.Hour), StalledAt: now.Add(-time.Hour), Tasks: job.Tasks{Total: 10, Succeeded: 2}},
		{Target: "shanghai", JobID: "job-22", Status: "Suspended", Description: "restore", StatusSince: now.Add(-13 * 24 * time.Hour),
			SuspendedSince: now.Add(-13 * 24 * time.Hour)},
	}
	var plain, colour bytes.Buffer
	printJobsTable(&plain, jobs, now, false)
	want := "" +
		"TARGET    JOB     STATUS     FOR    TASKS              ATTENTION                                DESCRIPTION\n" +
		"hz        job-1   Active     3h12m  2/10 ok, 0 failed  stalled for 2h                           retag\n" +
		"shanghai  job-22  Suspended  13d    0/0 ok, 0 failed   confirm: fails in 1d, 2025-06-02 12:00Z  restore\n"
	if plain.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", plain.String(), want)
	}
	printJobsTable(&colour, jobs, now, true)
	for _, w := range []string{ansiCyan + "Active" + ansiReset, ansiYellow + "Suspended" + ansiReset,
		ansiRed + "stalled for 2h" + ansiReset, ansiRed + "confirm: fails in 1d"} {
		if !strings.Contains(colour.String(), w) {
			t.Errorf("coloured table lacks %q:\n%q", w, colour.String())
		}
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 45 * time.Second: "45s", 12*time.Minute + 30*time.Second: "12m30s", time.Hour: "1h",
		3*time.Hour + 12*time.Minute + 59*time.Second: "3h12m", 52 * time.Hour: "2d4h", 14 * 24 * time.Hour: "14d",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestSafeText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in          string
		quoteSpaces bool
		want        string
	}{
		{"plain-id", true, "plain-id"},
		{"批量为对象设置标签", false, "批量为对象设置标签"},
		{`Restore "cold" & <b>`, false, `Restore "cold" & <b>`},
		{"with space", false, "with space"},
		{"with space", true, `"with space"`},
		{"\x1b[2Jgone", false, `"\x1b[2Jgone"`},
		{"a\u202eb", false, `"a\u202eb"`},
		{"bad\xffutf8", false, `"bad\xffutf8"`},
		{"tab\there", false, `"tab\there"`},
	} {
		if got := safeText(tc.in, tc.quoteSpaces); got != tc.want {
			t.Errorf("safeText(%q, %v) = %s, want %s", tc.in, tc.quoteSpaces, got, tc.want)
		}
	}
}

// The live view (demo, tail) says what a stalled and a confirmation_due
// event mean, not just their type.
func TestFormatAttentionEvents(t *testing.T) {
	t.Parallel()
	stalled := `{"type":"ossjobwatch.job.stalled","time":"2025-06-01T12:00:00Z","data":{"jobId":"job-1","target":"hz",` +
		`"status":"Active","sequence":5,"stalledSince":"2025-06-01T11:59:40Z","tasks":{"total":10,"succeeded":4,"failed":0}}}`
	due := `{"type":"ossjobwatch.job.confirmation_due","time":"2025-06-01T12:00:00Z","data":{"jobId":"job-2","target":"hz",` +
		`"status":"Suspended","sequence":2,"suspendedSince":"2025-05-30T12:00:00Z","failsAt":"2025-06-13T12:00:00Z"}}`
	for _, tc := range []struct{ payload, want string }{
		{stalled, "stalled: no change for 20s"},
		{due, "confirmation due: fails in 12d"},
	} {
		line := formatEvent([]byte(tc.payload), false)
		if !strings.Contains(line, tc.want) || strings.Contains(line, "ossjobwatch.job.") {
			t.Errorf("event line %q lacks %q", line, tc.want)
		}
	}
	if line := formatEvent([]byte(due), true); !strings.Contains(line, ansiYellow+"confirmation due") {
		t.Errorf("coloured confirmation_due line %q is not yellow", line)
	}
}
