package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/app"
	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/console"
	"github.com/ossjobwatch/ossjobwatch/internal/pgtemp"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

func init() {
	verbs["demo"] = verb{summary: "the whole pipeline on embedded defaults, with a live view of the events", run: runDemo}
}

// demoEnv is the environment of the demo's daemon: every part on loopback.
func demoEnv(dbURL, natsURL, ossURL string, schedule time.Duration) map[string]string {
	return map[string]string{
		"OSSJOBWATCH_DATABASE_URL": dbURL,
		"OSSJOBWATCH_NATS_URL":     natsURL,
		"OSSJOBWATCH_REGION":       "cn-hangzhou",
		"OSSJOBWATCH_ENDPOINT":     ossURL,
		"OSSJOBWATCH_TARGET":       "demo-hangzhou",
		"OSSJOBWATCH_SCHEDULE":     "@every " + schedule.String(),
		"OSSJOBWATCH_LOG_LEVEL":    "warn",
		// Seconds, not the default hour, so that the simulated world's
		// stalling job is announced within the demo's first minute.
		"OSSJOBWATCH_STALL_AFTER": demoStallAfter.String(),
	}
}

// demoStallAfter is the demo's stall threshold.
const demoStallAfter = 15 * time.Second

func runDemo(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	jobs := fs.Int("jobs", 40, "jobs in the simulated world")
	every := fs.Duration("every", 3*time.Second, "sweep period")
	tick := fs.Duration("tick", 2*time.Second, "how often the simulated world changes")
	seed := fs.Int64("seed", time.Now().UnixNano()%1000, "seed of the simulated world")
	stopAfter := fs.Duration("for", 0, "stop after this long (0: until Ctrl-C)")
	maxEvents := fs.Int("max-events", 0, "stop after this many events (0: no limit)")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	if *every < time.Second || *tick <= 0 || *jobs < 1 {
		fmt.Fprintln(c.stderr, "ossjobwatch demo: --every must be at least 1s, --tick positive and --jobs at least 1")
		return exitUsage
	}
	if *stopAfter > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *stopAfter)
		defer cancel()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	fail := func(what string, err error) int {
		fmt.Fprintf(c.stderr, "ossjobwatch demo: %s: %v\n", what, err)
		return exitFailure
	}

	// The console's address comes first: it is what to open while the
	// rest starts. The listener is bound now, so the address is real.
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("HTTP listener", err)
	}
	defer httpLn.Close()
	fmt.Fprintf(c.stdout, "ossjobwatch demo: console at http://%s%s\n", httpLn.Addr(), console.Prefix)
	// The live view's lines come from the follower and the webhook
	// receiver at once.
	var outMu sync.Mutex
	show := func(line string) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(c.stdout, line)
	}
	show("ossjobwatch demo: starting PostgreSQL, NATS JetStream, the OSS simulator and a webhook receiver on this machine…")
	pg, err := pgtemp.Start()
	if err != nil {
		return fail("start a throwaway PostgreSQL (install the postgresql package, or run .ci/install-postgres.sh)", err)
	}
	defer pg.Stop()

	natsDir, err := os.MkdirTemp("", "ossjobwatch-demo-nats-*")
	if err != nil {
		return fail("NATS store directory", err)
	}
	defer os.RemoveAll(natsDir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: natsDir, NoSigs: true, NoLog: true})
	if err != nil {
		return fail("start NATS", err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fail("start NATS", errors.New("not ready after 10s"))
	}

	sim, err := osssim.New(osssim.Config{Jobs: *jobs, Seed: *seed, Tick: *tick, Lively: true, NeedsAttention: true})
	if err != nil {
		return fail("simulator", err)
	}
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("simulator", err)
	}
	sim.Start(ctx)
	go func() { _ = sim.Serve(ctx, simLn) }()
	ossURL := "http://" + simLn.Addr().String()

	hook, err := startDemoHook(show)
	if err != nil {
		return fail("webhook receiver", err)
	}
	defer hook.Close()

	env := demoEnv(pg.URL(), ns.ClientURL(), ossURL, *every)
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Flags{}, config.Needs{Database: true, NATS: true, Targets: true})
	if err != nil {
		return fail("configuration", err)
	}
	cfg.Notify = hook.notifyConfig(cfg.SubjectPrefix)
	log := newLogger(c.stderr, cfg.Log)
	key := osssim.DefaultCredential
	a, err := app.Open(ctx, cfg, app.Options{Logger: log, Credentials: oss.StaticCredentials(key.AccessKeyID, key.AccessKeySecret, "")})
	if err != nil {
		return fail("open", err)
	}
	defer a.Close()

	fmt.Fprintf(c.stdout, `
  OSS simulator    %s  (%d jobs, seed %d, changing every %s)
  PostgreSQL       %s
  NATS JetStream   %s  (stream %s, subjects %s.>)
  web console      http://%s%s  (read-only: overview, jobs, live events)
  metrics, health  http://%s/metrics  /healthz  /readyz
  webhook receiver %s  (ossjobwatch notify: Standard Webhooks,
                   signed with a secret generated for this demo)

The world holds a job that stops making progress, %s, and one waiting
in Suspended for a confirmation since yesterday, %s: look for their
stalled (after %s without a change) and confirmation_due lines. Status
changes, failures, stalls and reminders also go to the webhook receiver:
its "↳ webhook notified" lines follow the events. What is happening now,
from another terminal while the demo runs:

  ossjobwatch jobs --database-url '%s'

Sweeping every %s. Each line is one event on NATS (Ctrl-C to stop):

`, ossURL, *jobs+2, *seed, *tick, pg.URL(), ns.ClientURL(), cfg.Stream.Name, cfg.SubjectPrefix, httpLn.Addr(), console.Prefix, httpLn.Addr(), hook.url,
		shorten(attentionJobID(sim, osssim.StallingDescription), 14), shorten(attentionJobID(sim, osssim.UnconfirmedDescription), 14),
		demoStallAfter, pg.URL(), *every)

	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx, app.RunOptions{Listener: httpLn, ShutdownTimeout: 10 * time.Second}) }()

	var seen atomic.Int64
	colour := isTerminal(c.stdout)
	followErr := waitForStream(ctx, a, func(js jetstream.JetStream) error {
		return follow(ctx, js, cfg.Stream.Name, cfg.SubjectPrefix+".>", jetstream.DeliverAllPolicy, func(m jetstream.Msg) {
			show(formatEvent(m.Data(), colour))
			if n := seen.Add(1); *maxEvents > 0 && n >= int64(*maxEvents) {
				stop()
			}
		}, nil)
	})
	stop()
	err = <-runErr
	received, refused := hook.counts()
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(c.stdout, `
%d events seen; the webhook receiver was notified of %d (%d requests refused). While a demo runs, from another terminal:

  # the history in SQL (psql from the postgresql-client package)
  psql '%s' -c "SELECT status, entered_at, duration FROM job_status_history ORDER BY job_id, sequence LIMIT 20"
  ossjobwatch history --database-url '%s' JOBID    # with who was notified, when
  ossjobwatch jobs --database-url '%s' --stalled      # or --suspended, --all, --json

  # the events on NATS
  ossjobwatch tail --nats-url %s 'ossjobs.*.status.*.Failed'
  nats --server %s sub 'ossjobs.>'     # the NATS CLI, if installed

This demo's servers are stopped now and their data is gone; the README shows
how to run ossjobwatch against your own PostgreSQL, NATS and OSS.
`, seen.Load(), received, refused, pg.URL(), pg.URL(), pg.URL(), ns.ClientURL(), ns.ClientURL())
	if followErr != nil {
		return fail("live view", followErr)
	}
	if err != nil {
		return fail("run", err)
	}
	return exitOK
}

// attentionJobID returns the id of the simulated job with description desc,
// one of osssim.Config.NeedsAttention's, as the live view shortens it.
func attentionJobID(sim *osssim.Simulator, desc string) string {
	for _, d := range sim.Jobs() {
		if d.Description == desc {
			return d.ID
		}
	}
	return "(none)"
}

// waitForStream waits until the daemon has connected to NATS and put the
// stream in place, then calls fn with a JetStream context.
func waitForStream(ctx context.Context, a *app.App, fn func(jetstream.JetStream) error) error {
	select {
	case <-ctx.Done():
		return nil
	case <-a.Connected():
	}
	js, err := jetstream.New(a.NATS())
	if err != nil {
		return err
	}
	return fn(js)
}
