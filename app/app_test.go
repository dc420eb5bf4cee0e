package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(notifyHelperEnv) != "" {
		os.Exit(runNotifyHelper()) // TestNotifyCrash's notify process
	}
	storetest.Main(m)
}

type bundle struct {
	sim    *osssim.Simulator
	nats   *natstest.Server
	dbURL  string
	cfg    config.Config
	ossCfg oss.Config
}

// setup builds a configuration of n targets, all listing one simulator.
func setup(t *testing.T, simCfg osssim.Config, targets int, schedule string) *bundle {
	t.Helper()
	sim, ossCfg := osstest.Start(t, simCfg)
	ns := natstest.Start(t)
	b := &bundle{sim: sim, nats: ns, dbURL: storetest.NewDatabaseURL(t), ossCfg: ossCfg}
	env := map[string]string{"OSSJOBWATCH_DATABASE_URL": b.dbURL, "OSSJOBWATCH_NATS_URL": ns.URL()}
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Flags{}, config.Needs{Database: true, NATS: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range targets {
		cfg.Targets = append(cfg.Targets, config.Target{
			Name: fmt.Sprintf("target-%d", i), Region: sim.Region(), Endpoint: ossCfg.Endpoint,
			Schedule: schedule, Enabled: true, Credentials: config.Credentials{Source: "default"},
			ReconcileInterval: config.DefaultReconcileInterval,
		})
	}
	b.cfg = cfg
	return b
}

func (b *bundle) open(t *testing.T) *App {
	t.Helper()
	a, err := Open(t.Context(), b.cfg, Options{
		Credentials: b.ossCfg.Credentials,
		OSS:         oss.Config{BaseDelay: time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// streamed reads every message of the stream: subject, Nats-Msg-Id and
// body, in stream order.
type streamed struct {
	subject, id, contentType string
	body                     []byte
}

func readStream(t *testing.T, b *bundle) []streamed {
	t.Helper()
	js, err := jetstream.New(b.nats.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	// One request per message: on a loaded machine under -race a few
	// hundred take seconds, so the bound is generous; it only keeps a hung
	// server from hanging the test.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, "OSSJOBS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []streamed
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		out = append(out, streamed{subject: m.Subject, id: m.Header.Get("Nats-Msg-Id"), contentType: m.Header.Get("Content-Type"), body: m.Data})
	}
	return out
}

type row struct {
	id, subject, target, jobID string
	sequence                   int64
	payload                    []byte
	published                  bool
}

func outbox(t *testing.T, st *store.Store) map[string]row {
	t.Helper()
	rows, err := st.Pool().Query(t.Context(), `SELECT id::text, subject, target, job_id, sequence, payload, published_at IS NOT NULL FROM job_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.subject, &r.target, &r.jobID, &r.sequence, &r.payload, &r.published); err != nil {
			t.Fatal(err)
		}
		out[r.id] = r
	}
	return out
}

// checkDelivered asserts the contract's delivery guarantee: the stream holds
// every stored event exactly once, byte for byte, on its subject, with the
// CloudEvents headers, and each job's events in sequence order, gap-free.
func checkDelivered(t *testing.T, b *bundle, st *store.Store) int {
	t.Helper()
	stored := outbox(t, st)
	msgs := readStream(t, b)
	seen := map[string]bool{}
	next := map[string]int64{}
	for _, m := range msgs {
		r, ok := stored[m.id]
		if !ok {
			t.Fatalf("stream holds %s, which is not in job_events", m.id)
		}
		if seen[m.id] {
			t.Fatalf("event %s is in the stream twice", m.id)
		}
		seen[m.id] = true
		if m.subject != r.subject || string(m.body) != string(r.payload) || m.contentType != "application/cloudevents+json" {
			t.Fatalf("event %s: subject %q body %q type %q; stored %q %q", m.id, m.subject, m.body, m.contentType, r.subject, r.payload)
		}
		key := r.target + "/" + r.jobID
		if r.sequence != next[key]+1 {
			t.Fatalf("job %s: sequence %d follows %d in the stream", r.jobID, r.sequence, next[key])
		}
		next[key] = r.sequence
	}
	for id, r := range stored {
		if !seen[id] {
			t.Fatalf("stored event %s (%s #%d) never reached the stream", id, r.jobID, r.sequence)
		}
		if !r.published {
			t.Fatalf("event %s is in the stream but not marked published", id)
		}
	}
	return len(msgs)
}

func TestSweepDeliversExactlyTheStoredEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 300, Seed: 5, Lively: true}, 2, "@every 1m")
	a := b.open(t)
	for round := range 4 {
		if round > 0 {
			b.sim.Step()
		}
		if _, err := a.SweepAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		rel, err := a.ConnectNATS(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rel.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := checkDelivered(t, b, a.Store()); n < 600 {
		t.Fatalf("only %d events; the world is too quiet to test anything", n)
	}
}

func TestNATSDownDuringSweepLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 200, Seed: 8, Lively: true}, 1, "@every 1m")
	a := b.open(t)
	rel, err := a.ConnectNATS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SweepAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := rel.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}

	b.nats.Shutdown()
	b.sim.Step()
	b.sim.Step()
	if _, err := a.SweepAll(t.Context()); err != nil {
		t.Fatalf("a sweep must record its events with the broker down: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	_, err = rel.Drain(ctx)
	cancel()
	if err == nil {
		t.Fatal("Drain succeeded with NATS down")
	}
	pending := 0
	for _, r := range outbox(t, a.Store()) {
		if !r.published {
			pending++
		}
	}
	if pending == 0 {
		t.Fatal("no event pending after a sweep with NATS down")
	}

	// The connection buffers nothing while disconnected: publishing waits
	// for it to be back.
	reconnected := a.NATS().StatusChanged(nats.CONNECTED)
	b.nats.Restart(t)
	natstest.WaitStatus(t, reconnected, nats.CONNECTED)
	b.sim.Step()
	if _, err := a.SweepAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := rel.Drain(t.Context()); err != nil {
		t.Fatalf("Drain after NATS came back: %v", err)
	}
	checkDelivered(t, b, a.Store())
}

func TestRunSweepsOnScheduleAndServesHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 100, Seed: 3, Lively: true, Tick: 200 * time.Millisecond}, 2, "@every 1s")
	// This lively world forgets a finished job 12 ticks (2.4 s) after it
	// ends. At the default 20 requests a second, describing the 50 or so
	// jobs that leave the hot listing between sweeps takes as long, and
	// when DescribeJob no longer knows most of them the sweep rightly
	// turns full: lift the rate so that the world does not outrun it.
	for i := range b.cfg.Targets {
		b.cfg.Targets[i].OSSRate = 1000
	}
	b.sim.Start(t.Context())
	a := b.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	sweeps := make(chan SweepResult, 100)
	srv := httptestListener(t)
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, RunOptions{Listener: srv, LeaseTTL: 3 * time.Second, ShutdownTimeout: 10 * time.Second,
			OnSweep: func(r SweepResult) { sweeps <- r }})
	}()
	perTarget := map[string]int{}
	modes := map[string][]bool{} // hot or not, per target, in order
	timeout := time.After(30 * time.Second)
	for perTarget["target-0"] < 3 || perTarget["target-1"] < 3 {
		select {
		case r := <-sweeps:
			if r.Err != nil {
				t.Fatalf("sweep of %s: %v", r.Target, r.Err)
			}
			perTarget[r.Target]++
			modes[r.Target] = append(modes[r.Target], r.Hot)
		case <-timeout:
			t.Fatalf("sweeps after 30s: %v", perTarget)
		}
	}

	// The first sweep of a target is full, the next ones hot (the reconcile
	// interval is the default 15 minutes).
	for target, m := range modes {
		if m[0] || !m[1] || !m[2] {
			t.Errorf("%s's sweeps hot: %v, want full, then hot", target, m)
		}
	}
	base := "http://" + srv.Addr().String()
	body := get(t, base+"/metrics", 200)
	for _, want := range []string{
		`ossjobwatch_sweep_duration_seconds_count{mode="full",outcome="success",target="target-0"}`,
		`ossjobwatch_sweep_duration_seconds_count{mode="hot",outcome="success",target="target-0"}`,
		`ossjobwatch_full_sweep_found_total{kind="finished_unseen",target="target-0"}`,
		`ossjobwatch_last_successful_sweep_timestamp_seconds{target="target-1"}`,
		`ossjobwatch_events_total{target="target-0",type="discovered"}`,
		`ossjobwatch_oss_requests_total{code="",operation="ListJobs",outcome="ok",target="target-0"}`,
		`ossjobwatch_outbox_pending_events`,
		`ossjobwatch_target_lease_held{target="target-0"} 1`,
		`ossjobwatch_jobs{status=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	get(t, base+"/healthz", 200)
	select {
	case <-a.Connected():
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not connect to NATS within 20s")
	}
	if body := get(t, base+"/readyz", 200); !strings.Contains(body, "ready") {
		t.Errorf("/readyz = %q", body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkDelivered(t, b, a.Store())
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return string(b)
}

// openStoreOnly opens the bundle's database for reading results.
func (b *bundle) openStoreOnly(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), b.dbURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func TestRunFailsFastWhenItCannotListen(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5}, 1, "@every 1m")
	taken := httptestListener(t)
	defer taken.Close()
	b.cfg.HTTP.Listen = taken.Addr().String()
	a := b.open(t)
	done := make(chan error, 1)
	go func() { done <- a.Run(t.Context(), RunOptions{}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "listen on "+taken.Addr().String()) {
			t.Fatalf("Run = %v, want a listen error naming the address", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running 10s after its listen failed")
	}
}
