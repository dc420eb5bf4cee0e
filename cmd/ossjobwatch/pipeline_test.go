package main

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// syncBuffer is written by NATS callbacks and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runSync(env map[string]string, args ...string) (int, string, string) {
	var out, errOut syncBuffer
	code := run(args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// verbEnv is the environment a user sets to run the verbs against sim, ns
// and the database at databaseURL, target "hz". The credentials are also
// set in the process (t.Setenv), since the default credential chain reads
// the process environment: a test that calls it cannot be parallel.
func verbEnv(t *testing.T, sim *osssim.Simulator, ossCfg oss.Config, ns *natstest.Server, databaseURL string) map[string]string {
	t.Helper()
	key := osssim.DefaultCredential
	env := map[string]string{
		"OSSJOBWATCH_DATABASE_URL":            databaseURL,
		"OSSJOBWATCH_NATS_URL":                ns.URL(),
		"OSSJOBWATCH_REGION":                  sim.Region(),
		"OSSJOBWATCH_ENDPOINT":                ossCfg.Endpoint,
		"OSSJOBWATCH_TARGET":                  "hz",
		"ALIBABA_CLOUD_ACCESS_KEY_ID":         key.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET":     key.AccessKeySecret,
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
	}
	for k, v := range env {
		if strings.HasPrefix(k, "ALIBABA_") {
			t.Setenv(k, v)
		}
	}
	return env
}

// TestSweepTailReplay walks the README's by-hand path: simulate,
// sweep, tail, replay.
func TestSweepTailReplay(t *testing.T) {
	// Not parallel: the default credential chain reads the process
	// environment, set with t.Setenv.
	sim, ossCfg := osstest.Start(t, osssim.Config{Jobs: 30, Seed: 4})
	ns := natstest.Start(t)
	env := verbEnv(t, sim, ossCfg, ns, storetest.NewDatabaseURL(t))

	// 30 discovered events, and a confirmation_due for the one job of this
	// seed that was created, and so suspended, over a day ago.
	code, stdout, stderr := runSync(env, "sweep")
	if code != exitOK || !strings.Contains(stdout, "swept hz (full): 1 pages, 30 jobs, 31 events") || !strings.Contains(stdout, "published 31 events to stream OSSJOBS") {
		t.Fatalf("sweep: code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runSync(env, "tail", "--all", "--count", "31")
	if code != exitOK || strings.Count(stdout, "discovered") != 30 || strings.Count(stdout, "confirmation due: fails in ") != 1 || !strings.Contains(stdout, "(baseline)") {
		t.Fatalf("tail: code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runSync(env, "tail", "--all", "--json", "--count", "1", "ossjobs.hz.discovered")
	if code != exitOK || !strings.HasPrefix(stdout, `{"specversion":"1.0"`) {
		t.Fatalf("tail --json: code %d, stdout %q", code, stdout)
	}
	code, stdout, stderr = runSync(env, "replay", "--since", "1h")
	if code != exitOK || !strings.Contains(stdout, "replayed 31 events") || !strings.Contains(stdout, "0 stored anew, 31 dropped by JetStream as duplicates") {
		t.Fatalf("replay: code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if code, _, stderr = runSync(env, "replay"); code != exitUsage || !strings.Contains(stderr, "--since: required") {
		t.Errorf("replay without --since: code %d, stderr %q", code, stderr)
	}

	// NATS down: the sweep records its events and fails; the next delivers.
	for range 20 {
		sim.Step()
	}
	ns.Shutdown()
	code, stdout, stderr = runSync(env, "sweep", "--publish-timeout", "2s")
	if code != exitFailure || !strings.Contains(stderr, "stay in the outbox") || !strings.Contains(stdout, "swept hz") {
		t.Fatalf("sweep with NATS down: code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	ns.Restart(t)
	code, stdout, stderr = runSync(env, "sweep", "--hot")
	if code != exitOK || strings.Contains(stdout, "published 0 events") || !strings.Contains(stdout, "swept hz (hot, ") {
		t.Fatalf("hot sweep after NATS is back: code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// With a reconcile interval of 0 every sweep is full, --hot or not.
	env["OSSJOBWATCH_RECONCILE_INTERVAL"] = "0"
	if code, stdout, stderr = runSync(env, "sweep", "--hot"); code != exitOK || !strings.Contains(stdout, "swept hz (full)") {
		t.Fatalf("sweep --hot with a reconcile interval of 0: code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

func TestRunCheckConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://u:hunter2@db/x", "OSSJOBWATCH_REGION": "cn-hangzhou", "OSSJOBWATCH_SCHEDULE": "*/30 * * * * *",
		"OSSJOBWATCH_UI_AUTH": "ops:hunter2"}
	code, stdout, _ := runSync(env, "run", "--check-config")
	if code != exitOK || !strings.Contains(stdout, "configuration is valid") || !strings.Contains(stdout, `schedule "*/30 * * * * *"`) || strings.Contains(stdout, "hunter2") ||
		!strings.Contains(stdout, "console:   /ui/ (basic auth, user ops)") {
		t.Errorf("check-config: code %d\n%s", code, stdout)
	}
	env["OSSJOBWATCH_SCHEDULE"] = "CRON_TZ=UTC"
	code, _, stderr := runSync(env, "run", "--check-config")
	if code != exitUsage || !strings.Contains(stderr, `OSSJOBWATCH_SCHEDULE: invalid cron spec "CRON_TZ=UTC"`) {
		t.Errorf("bad schedule: code %d, stderr %q", code, stderr)
	}
}

func TestDemoShowsEvents(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runSync(nil, "demo", "--jobs", "20", "--every", "1s", "--tick", "300ms", "--max-events", "60", "--for", "2m")
	if code != exitOK {
		t.Fatalf("demo: code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if first, _, _ := strings.Cut(stdout, "\n"); !regexp.MustCompile(`^ossjobwatch demo: console at http://127\.0\.0\.1:\d+/ui/$`).MatchString(first) {
		t.Errorf("demo's first line is not the console's URL: %q", first)
	}
	for _, want := range []string{"OSS simulator", "PostgreSQL", "NATS JetStream", "discovered", "(baseline)", "events seen", "job_status_history", "ossjobwatch tail --nats-url",
		"a job that stops making progress", "ossjobwatch jobs --database-url 'postgres",
		"webhook receiver http://127.0.0.1:", "↳ webhook notified (signature verified): ", "the webhook receiver was notified of "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, "demo-hangzhou"); n < 60 {
		t.Errorf("demo printed %d event lines, want at least 60", n)
	}
	if strings.Contains(stdout, "webhook refused") || !regexp.MustCompile(`notified of [1-9][0-9]* \(0 requests refused\)`).MatchString(stdout) {
		t.Errorf("the demo's webhook receiver was not notified, or refused a request:\n%s", stdout)
	}
	// The banner names the job that stalls and the one awaiting
	// confirmation; the live view shows them discovered.
	m := regexp.MustCompile(`stops making progress, (\S+…),\s+and one waiting\s+in Suspended for a confirmation since yesterday, (\S+…):`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("demo output does not name the jobs that need attention:\n%s", stdout)
	}
	for _, want := range []string{m[1] + " #1   discovered Active", m[2] + " #1   discovered Suspended"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo live view lacks %q:\n%s", want, stdout)
		}
	}
}
