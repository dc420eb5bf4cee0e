package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(osstest.RemoteEnv) != "" {
		osstest.ServeRemote() // the sweep benchmarks' simulator process
	}
	if endpoint := os.Getenv(floorListEnv); endpoint != "" {
		listFloor(endpoint) // the sweep benchmarks' list floor
	}
	storetest.Main(m)
}

// runVerb runs the command in-process, as a user would from a shell.
func runVerb(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	t.Parallel()
	code, _, stderr := runVerb(t, nil)
	if code != exitUsage || !strings.Contains(stderr, "simulate") || !strings.Contains(stderr, "history") {
		t.Errorf("no arguments: code %d, stderr %q", code, stderr)
	}
	code, _, stderr = runVerb(t, nil, "frobnicate")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown verb: code %d, stderr %q", code, stderr)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OSSJOBWATCH_DATABASE_URL": storetest.NewDatabaseURL(t)}
	code, stdout, stderr := runVerb(t, env, "migrate")
	if code != exitOK || !strings.Contains(stdout, "migrations applied: ") && !strings.Contains(stdout, "applied: 0") {
		t.Fatalf("first migrate: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runVerb(t, env, "migrate")
	if code != exitOK || !strings.Contains(stdout, "migrations applied: 0") {
		t.Errorf("second migrate: code %d, stdout %q", code, stdout)
	}

	code, _, stderr = runVerb(t, nil, "migrate")
	if code != exitUsage || !strings.Contains(stderr, "OSSJOBWATCH_DATABASE_URL: required") {
		t.Errorf("no database: code %d, stderr %q", code, stderr)
	}
	code, _, stderr = runVerb(t, map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2"}, "migrate")
	if code != exitFailure || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "127.0.0.1") {
		t.Errorf("unreachable database: code %d, stderr %q (must name the host, not the password)", code, stderr)
	}
}

func TestHistory(t *testing.T) {
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
	sim, cfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	p, err := poller.New(poller.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	target := poller.Target{Name: "hz", Region: sim.Region(), Client: osstest.NewClient(t, cfg)}
	d := job.Detail{Job: job.Job{ID: "job-1", Status: job.StatusActive, Operation: "PutObjectTagging", Description: "tag logs", Tasks: job.Tasks{Total: 10}}}
	sim.Put(d)
	sweepOnce := func() {
		if _, err := p.SweepOnce(context.Background(), target); err != nil {
			t.Fatal(err)
		}
	}
	sweepOnce()
	d.Status, d.Tasks.Succeeded, d.Tasks.Failed = job.StatusFailed, 7, 3
	d.FailureReasons = []job.FailureReason{{Code: "AccessDenied", Reason: "no read on manifest"}}
	sim.Put(d)
	sweepOnce()

	env := map[string]string{"OSSJOBWATCH_DATABASE_URL": dbURL}
	code, stdout, stderr := runVerb(t, env, "history", "job-1")
	if code != exitOK {
		t.Fatalf("history: code %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		`job job-1 in target hz: PutObjectTagging "tag logs"`,
		"#1  discovered as Active", "(baseline)",
		"#2  Active → Failed", "AccessDenied: no read on manifest",
		"#3  +3 tasks failed", "#4  progress +7", "pending",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("history output lacks %q:\n%s", want, stdout)
		}
	}
	// Who was told: the failure to a robot in a digest, and a webhook
	// still being tried.
	evs, err := st.History(t.Context(), "job-1", "")
	if err != nil || len(evs) != 4 {
		t.Fatalf("History = %d events, %v", len(evs), err)
	}
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	ref := func(i int, receiver string) store.DeliveryRef {
		return store.DeliveryRef{EventID: evs[i].ID, Receiver: receiver, Route: "failures", Target: "hz", JobID: "job-1"}
	}
	if err := st.RecordDelivered(t.Context(), []store.DeliveryRef{ref(1, "ops-dingtalk"), ref(2, "ops-dingtalk")}, at); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := st.RecordFailure(t.Context(), []store.DeliveryRef{ref(1, "audit")}, at, "notify audit: http_5xx (HTTP 503)"); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, _ = runVerb(t, env, "history", "job-1")
	for _, want := range []string{
		"→ ops-dingtalk", "told 2026-12-02T10:00:00Z (route failures, in a digest of 2)\n",
		"→ audit", "pending: 2 attempts, the last 2026-12-02T10:00:00Z: notify audit: http_5xx (HTTP 503)\n",
	} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("history output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Index(stdout, "Active → Failed") > strings.Index(stdout, "→ audit") || strings.Index(stdout, "→ audit") > strings.Index(stdout, "+3 tasks failed") {
		t.Errorf("the deliveries are not under their event:\n%s", stdout)
	}

	code, stdout, _ = runVerb(t, env, "history", "--json", "--target", "hz", "job-1")
	if code != exitOK || strings.Count(stdout, `"specversion":"1.0"`) != 4 {
		t.Errorf("history --json: code %d\n%s", code, stdout)
	}
	code, _, stderr = runVerb(t, env, "history", "job-2")
	if code != exitFailure || !strings.Contains(stderr, "no events for job job-2") {
		t.Errorf("unknown job: code %d, stderr %q", code, stderr)
	}
	code, _, _ = runVerb(t, env, "history")
	if code != exitUsage {
		t.Errorf("no job id: code %d, want %d", code, exitUsage)
	}
}
