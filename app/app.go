// Package app wires ossjobwatch's parts for the run and sweep verbs: the
// store, the OSS clients of the targets, the poller, NATS and the relay.
// It owns their lifecycle; cmd owns flags, signals and exit codes.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/console"
	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// Options are what the caller provides besides the configuration.
type Options struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// NowFunc is the clock. Defaults to time.Now.
	NowFunc func() time.Time
	// HTTPClient is used for OSS calls; tests pass one. Defaults to the
	// SDK's.
	HTTPClient *http.Client
	// OSS tunes every target's client (timeouts, retries); Region,
	// Endpoint and Credentials come from the target.
	OSS oss.Config
	// Registry receives the metrics. Defaults to a new registry.
	Registry *prometheus.Registry
	// Credentials, if set, sign every target's requests instead of the
	// targets' configured sources (the demo and tests use static keys).
	Credentials oss.CredentialsProvider
	// Notify tunes notify (run with a notify section, and RunNotify).
	Notify NotifyOptions
}

// Target is a configured target ready to sweep.
type Target struct {
	poller.Target
	Config config.Target
}

// App is ossjobwatch's parts, connected.
type App struct {
	cfg     config.Config
	opts    Options
	log     *slog.Logger
	store   *store.Store
	poller  *poller.Poller
	targets []Target
	metrics *metrics
	// console is the web console, nil when turned off.
	console *console.Console

	connectMu sync.Mutex
	mu        sync.Mutex
	nc        *nats.Conn
	js        jetstream.JetStream
	rel       *publisher.Relay
	// notify is the notify service once built, for /readyz.
	notify *notify.Service
	// connected is closed once ConnectNATS has succeeded.
	connected chan struct{}
	// closeTimeout bounds Close; Run sets it to its share of the shutdown
	// budget.
	closeTimeout time.Duration
}

// Open connects to the database (migrating it) and builds the targets'
// clients. NATS is connected separately (ConnectNATS): a sweep must be able
// to record events while the broker is down.
func Open(ctx context.Context, cfg config.Config, opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NowFunc == nil {
		opts.NowFunc = time.Now
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	a := &App{cfg: cfg, opts: opts, log: opts.Logger, connected: make(chan struct{})}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Config{})
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	a.store = st
	a.metrics = newMetrics(opts.Registry, st, opts.Logger)
	if a.console, err = newConsole(cfg, st, opts); err != nil {
		st.Close()
		return nil, err
	}
	for _, tc := range cfg.EnabledTargets() {
		t, err := newTarget(tc, opts, a.metrics.observeAttempt(tc.Name))
		if err != nil {
			st.Close()
			return nil, err
		}
		a.targets = append(a.targets, t)
	}
	a.poller, err = poller.New(poller.Config{
		Reminders:     cfg.SuspendedReminders,
		Store:         st,
		SubjectPrefix: cfg.SubjectPrefix,
		Logger:        opts.Logger,
		NowFunc:       opts.NowFunc,
		OnDescribeError: func(target string, _ error) {
			a.metrics.describeErrors.WithLabelValues(target).Inc()
		},
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

func newTarget(tc config.Target, opts Options, onAttempt func(op string, status int, code string)) (Target, error) {
	creds := opts.Credentials
	var err error
	if creds == nil {
		creds, err = oss.NewCredentials(oss.CredentialsSpec{
			Source: tc.Credentials.Source, Profile: tc.Credentials.Profile,
			RoleARN: tc.Credentials.RoleARN, RoleSessionName: tc.Credentials.RoleSessionName,
			ExternalID: tc.Credentials.ExternalID, OIDCProviderARN: tc.Credentials.OIDCProviderARN,
			OIDCTokenFile: tc.Credentials.OIDCTokenFile,
		})
		if err != nil {
			return Target{}, fmt.Errorf("target %s: %w", tc.Name, err)
		}
	}
	oc := opts.OSS
	oc.Region, oc.Endpoint, oc.Internal, oc.Credentials = tc.Region, tc.Endpoint, tc.Internal, creds
	if oc.Rate == 0 { // Options.OSS may set a rate of its own (tests lift it)
		oc.Rate = tc.OSSRate
	}
	oc.HTTPClient = opts.HTTPClient
	oc.Logger = opts.Logger.With("target", tc.Name)
	oc.OnAttempt = onAttempt
	client, err := oss.NewClient(oc)
	if err != nil {
		return Target{}, fmt.Errorf("target %s: %w", tc.Name, err)
	}
	return Target{Target: poller.Target{Name: tc.Name, Region: tc.Region, Client: client, ReconcileInterval: tc.ReconcileInterval,
		StallAfter: tc.StallAfter}, Config: tc}, nil
}

// Store is the app's database.
func (a *App) Store() *store.Store { return a.store }

// Targets are the enabled targets.
func (a *App) Targets() []Target { return a.targets }

// ConnectNATS connects to NATS, provisions or checks the stream, and
// builds the relay. It may be called again after a failure.
func (a *App) ConnectNATS(ctx context.Context) (*publisher.Relay, error) {
	// connectMu serialises connecting; mu guards the fields only, so that
	// /readyz never waits behind a slow broker.
	a.connectMu.Lock()
	defer a.connectMu.Unlock()
	a.mu.Lock()
	rel, nc, js := a.rel, a.nc, a.js
	a.mu.Unlock()
	if rel != nil {
		return rel, nil
	}
	if nc == nil {
		var err error
		if nc, err = publisher.Connect(a.cfg.NATSURL, "ossjobwatch", a.log, NATSOptions(a.cfg)...); err != nil {
			return nil, err
		}
		if js, err = publisher.NewJetStream(nc); err != nil {
			nc.Close()
			return nil, err
		}
		a.mu.Lock()
		a.nc, a.js = nc, js
		a.mu.Unlock()
	}
	status, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{
		Name:          a.cfg.Stream.Name,
		SubjectPrefix: a.cfg.SubjectPrefix,
		Duplicates:    a.cfg.Stream.DuplicateWindow,
		MaxAge:        a.cfg.Stream.MaxAge,
		Replicas:      a.cfg.Stream.Replicas,
		Managed:       a.cfg.Stream.Manage,
	})
	if err != nil {
		return nil, err
	}
	for _, w := range status.Warnings {
		a.log.Warn("stream: " + w)
	}
	rel, err = publisher.New(publisher.Config{
		Store:     a.store,
		JetStream: js,
		Stream:    a.cfg.Stream.Name,
		Logger:    a.log,
		NowFunc:   a.opts.NowFunc,
		OnPublished: func(n int, lag time.Duration) {
			a.metrics.published.Add(float64(n))
			a.metrics.publishLag.Observe(lag.Seconds())
		},
		OnLockWait: func(d time.Duration) { a.metrics.relayLockWait.Set(d.Seconds()) },
	})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.rel = rel
	a.mu.Unlock()
	close(a.connected)
	return rel, nil
}

// Connected is closed once NATS is connected and the stream is in place.
func (a *App) Connected() <-chan struct{} { return a.connected }

// NATS returns the connection, nil before ConnectNATS succeeded.
func (a *App) NATS() *nats.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nc
}

// defaultCloseTimeout bounds Close when Run did not set a budget.
const defaultCloseTimeout = 5 * time.Second

// Close releases everything, within a bound: the console's live streams
// end, the relay stops, NATS drains and closes, the database pool closes. A part that hangs (a connection
// held by a stuck call) is abandoned when the bound is reached; the process
// is about to exit.
func (a *App) Close() {
	a.mu.Lock()
	rel, nc, st := a.rel, a.nc, a.store
	timeout := cmp.Or(a.closeTimeout, defaultCloseTimeout)
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if a.console != nil {
		a.console.Close() // its live streams read the pool closed below
	}
	if rel != nil {
		waitUntil(ctx, rel.Stop)
	}
	if nc != nil {
		closeNATS(ctx, nc)
	}
	if st != nil {
		if !waitUntil(ctx, st.Close) {
			a.log.Warn("database pool did not close in time; abandoned", "timeout", timeout)
		}
	}
}

// SweepResult is one target's sweep.
type SweepResult struct {
	Target string
	poller.Result
	Err error
}

// SweepAll makes a full sweep of every enabled target once, up to four at
// a time, and returns each result; the error joins the failures.
func (a *App) SweepAll(ctx context.Context) ([]SweepResult, error) {
	return a.SweepAllMode(ctx, poller.Full)
}

// SweepAllMode is SweepAll with the sweep mode: with poller.Hot, each
// target's sweep is hot unless its last full one is older than its
// reconcile interval (or its interval is 0).
func (a *App) SweepAllMode(ctx context.Context, mode poller.Mode) ([]SweepResult, error) {
	results := make([]SweepResult, len(a.targets))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, t := range a.targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = a.sweep(ctx, t, mode)
		})
	}
	wg.Wait()
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return results, errors.Join(errs...)
}

// ForgetSnapshots drops the snapshots the poller keeps of every target
// between sweeps (at 100,000 jobs, some 50 MB); a later sweep reads them
// from the database again. A process that sweeps once calls it when the
// sweeps are done, so that what follows does not carry them.
func (a *App) ForgetSnapshots() {
	for _, t := range a.targets {
		a.poller.Forget(t.Name)
	}
}

// sweep sweeps one target, recovering a panic into an error, and records
// the metrics.
func (a *App) sweep(ctx context.Context, t Target, mode poller.Mode) (r SweepResult) {
	if t.Config.ReconcileInterval == 0 {
		mode = poller.Full // every sweep is a reconcile
	}
	r.Target = t.Name
	start := a.opts.NowFunc()
	defer func() {
		if p := recover(); p != nil {
			a.metrics.panics.WithLabelValues("sweep").Inc()
			a.log.Error("sweep panicked", "target", t.Name, "panic", p, "stack", string(debug.Stack()))
			r.Err = fmt.Errorf("sweep %s: panic: %v", t.Name, p)
		}
		outcome := "success"
		switch {
		case r.Err != nil:
			outcome = "failure"
			a.log.Error("sweep failed", "target", t.Name, "err", r.Err)
		case r.Stale:
			outcome = "stale"
		default:
			a.metrics.lastSuccess.WithLabelValues(t.Name).Set(float64(a.opts.NowFunc().Unix()))
		}
		a.metrics.sweepDuration.WithLabelValues(t.Name, outcome, boolToMode(r.Hot).String()).Observe(a.opts.NowFunc().Sub(start).Seconds())
	}()
	r.Result, r.Err = a.poller.Sweep(ctx, t.Target, mode)
	a.metrics.found.WithLabelValues(t.Name, "finished_unseen").Add(float64(r.FoundFinished))
	a.metrics.found.WithLabelValues(t.Name, "terminal_changed").Add(float64(r.TerminalChanged))
	a.metrics.leftOut.WithLabelValues(t.Name).Add(float64(r.LeftOut))
	a.metrics.anomalies.WithLabelValues(t.Name).Add(float64(r.Anomalies))
	// A sweep that applied its listing without the entries it could not
	// use returns an error, but its events were written.
	if r.EventsByKind != nil {
		a.metrics.removalsHeld.WithLabelValues(t.Name).Set(float64(r.HeldRemovals))
		for kind, n := range r.EventsByKind {
			a.metrics.events.WithLabelValues(t.Name, kind.String()).Add(float64(n))
		}
		// Only a full listing counts every job: a hot one holds the
		// unfinished jobs alone.
		if !r.Hot {
			a.metrics.jobs.DeletePartialMatch(prometheus.Labels{"target": t.Name})
			for status, n := range r.Statuses {
				a.metrics.jobs.WithLabelValues(t.Name, string(status)).Set(float64(n))
			}
		}
	}
	return r
}

// NATSOptions are the connection options the configuration asks for: a
// credentials file, a CA bundle for TLS.
func NATSOptions(cfg config.Config) []nats.Option {
	var opts []nats.Option
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCA))
	}
	return opts
}

func boolToMode(hot bool) poller.Mode {
	if hot {
		return poller.Hot
	}
	return poller.Full
}
