package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/robfig/cron/v3"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// RunOptions tune the daemon. The zero value is ready to use.
type RunOptions struct {
	// ReplicaID names this process among the replicas. Defaults to the
	// host name and a random suffix.
	ReplicaID string
	// LeaseTTL is how long a target's lease outlives its holder's last
	// heartbeat: a stopped replica's targets are taken over after at most
	// this long. Defaults to 30s.
	LeaseTTL time.Duration
	// Heartbeat is how often leases are renewed and rebalanced. Defaults
	// to a third of LeaseTTL.
	Heartbeat time.Duration
	// ShutdownTimeout bounds a graceful stop, Close included: the running
	// sweeps finish or roll back, the relay drains (unless another replica
	// holds the relay lock), NATS, the HTTP server and the database pool
	// close. Every phase is bounded; see shutdown. Defaults to 25s.
	ShutdownTimeout time.Duration
	// NATSRetry is the pause between attempts to reach NATS at start.
	// Defaults to 5s.
	NATSRetry time.Duration
	// Listener, if set, serves HTTP instead of Config.HTTP.Listen (tests
	// pass one on a free port).
	Listener net.Listener
	// OnSweep, if set, is called after every sweep (tests wait on it).
	OnSweep func(SweepResult)
	// PruneInterval is how often the database is pruned (on one replica at
	// a time), give or take a tenth; the first pass comes within a minute
	// of start, or within PruneInterval if shorter. Defaults to 10m.
	PruneInterval time.Duration
	// OnPrune, if set, is called after every pass of the cleaner, this
	// replica's turn or not (tests wait on it).
	OnPrune func(PruneResult)

	// crash makes a stop skip leaving the replica set, as a killed process
	// would: tests use it to check the takeover after the lease lapses.
	crash bool
}

func (o RunOptions) withDefaults() RunOptions {
	if o.ReplicaID == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		o.ReplicaID = cmp.Or(host, "ossjobwatch") + "-" + hex.EncodeToString(b[:])
	}
	o.LeaseTTL = cmp.Or(o.LeaseTTL, 30*time.Second)
	o.Heartbeat = cmp.Or(o.Heartbeat, o.LeaseTTL/3)
	o.ShutdownTimeout = cmp.Or(o.ShutdownTimeout, 25*time.Second)
	o.NATSRetry = cmp.Or(o.NATSRetry, 5*time.Second)
	if o.PruneInterval <= 0 {
		o.PruneInterval = DefaultPruneInterval
	}
	return o
}

// Run is `ossjobwatch run`: it sweeps each target on its cron schedule
// while this replica holds the target's lease, relays the outbox to
// JetStream continuously, prunes the database every PruneInterval (one
// replica at a time), notifies when the config has a notify section, and
// serves /metrics, /healthz and /readyz. It
// returns when ctx is done, after a graceful stop bounded by
// ShutdownTimeout, with the errors of the stop joined.
func (a *App) Run(ctx context.Context, ro RunOptions) error {
	ro.LeaseTTL = cmp.Or(ro.LeaseTTL, a.cfg.LeaseTTL)
	ro = ro.withDefaults()
	scheds := make([]cron.Schedule, len(a.targets))
	for i, t := range a.targets {
		s, err := config.ParseSchedule(t.Config.Schedule)
		if err != nil {
			return fmt.Errorf("target %s: schedule: %w", t.Name, err)
		}
		scheds[i] = s
	}
	if n := a.cfg.Notify; n != nil {
		// A receiver or template the config cannot make fails run now,
		// not quietly once NATS is connected.
		if _, err := NotifyReceivers(n, a.opts.Notify.HTTPClient, a.opts.NowFunc); err != nil {
			return err
		}
		if _, err := NotifyRoutes(n); err != nil {
			return err
		}
	}
	log := a.log.With("replica", ro.ReplicaID)
	log.Info("ossjobwatch running", "targets", len(a.targets), "lease_ttl", ro.LeaseTTL)

	var srv *http.Server
	srvErr := make(chan error, 1)
	ln, err := a.listen(ro)
	if err != nil {
		return err
	}
	if ln != nil {
		srv = &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
		if a.console != nil {
			// The live view's streams end at once, so that a graceful
			// shutdown does not wait for them.
			srv.RegisterOnShutdown(a.console.Close)
		}
		log.Info("serving HTTP", "addr", ln.Addr().String(), "console", a.console != nil)
		go func() { srvErr <- srv.Serve(ln) }()
	}

	// The loops stop with ctx, or when the HTTP server fails. Sweeps get a
	// context of their own, cancelled only when the grace period runs out,
	// so that SIGTERM lets a running sweep finish.
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	sweepCtx, cancelSweeps := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSweeps()

	// The leases have a connection of their own. On the shared pool, a
	// heartbeat queues behind the sweeps when they fill it (a replica of
	// many targets does, at every tick): it then comes after the lease
	// TTL, the leases lapse, the other replicas take them and sweep the
	// same targets, and the churn feeds itself.
	// If it cannot be opened now, the shared pool serves.
	leaseStore, err := store.Open(ctx, a.cfg.DatabaseURL, store.Config{MaxConns: 1})
	if err != nil {
		log.Warn("no connection of their own for the leases; they share the pool", "err", err)
		leaseStore = a.store
	} else {
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), ro.ShutdownTimeout/8)
			defer cancel()
			waitUntil(cctx, leaseStore.Close)
		}()
	}
	leases := newLeaser(a, leaseStore, ro, log)
	var wg sync.WaitGroup
	for i, t := range a.targets {
		wg.Go(func() { a.scheduleTarget(loopCtx, sweepCtx, t, scheds[i], leases, ro, log) })
	}
	wg.Go(func() { leases.run(loopCtx) })
	wg.Go(func() { a.relayWhenConnected(loopCtx, ro, log) })
	wg.Go(func() { a.cleanLoop(loopCtx, ro, log) })
	if a.cfg.Notify != nil {
		wg.Go(func() { _ = a.notifyWhenConnected(loopCtx, ro.NATSRetry, ro.ShutdownTimeout/4, log) })
	}

	var errs []error
	select {
	case <-ctx.Done():
	case err := <-srvErr:
		errs = append(errs, fmt.Errorf("http server: %w", err))
		srv = nil
		if a.console != nil {
			a.console.Close() // no Shutdown to do it: end the streams still open
		}
	}
	stopLoops()
	log.Info("stopping: no new sweeps; waiting for the running ones and the relay")
	errs = append(errs, a.shutdown(ctx, ro, log, &wg, cancelSweeps, srv, leaseStore))
	log.Info("stopped")
	return errors.Join(errs...)
}

// shutdown stops what Run started within ro.ShutdownTimeout, every phase
// bounded. The budget: half for running sweeps to finish; then they are
// cancelled and have until three quarters to roll back; what is left, less
// an eighth kept for Close (the pool), goes to leaving the replica set,
// stopping and draining the relay, then closing NATS, and closing the HTTP
// server, side by side. Only a sweep that outlives its cancellation is an
// error; a phase cut short is logged, and what it left undone (a lease, a
// pending event) is picked up by the other replicas or the next run.
func (a *App) shutdown(ctx context.Context, ro RunOptions, log *slog.Logger, loops *sync.WaitGroup, cancelSweeps context.CancelFunc, srv *http.Server, leaseStore *store.Store) error {
	budget := ro.ShutdownTimeout
	start := time.Now()
	a.mu.Lock()
	a.closeTimeout = budget / 8
	a.mu.Unlock()

	var err error
	if ro.crash {
		cancelSweeps() // a killed process finishes nothing
	}
	done := make(chan struct{})
	go func() { loops.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(start.Add(budget / 2))):
		log.Warn("sweeps still running at the grace deadline; cancelling them (they roll back)")
		cancelSweeps()
		select {
		case <-done:
		case <-time.After(time.Until(start.Add(budget * 3 / 4))):
			err = errors.New("sweeps did not stop within the shutdown timeout")
		}
	}

	stopCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(budget-budget/8))
	defer cancel()
	var phases sync.WaitGroup
	if !ro.crash {
		phases.Go(func() {
			if err := leaseStore.Leave(stopCtx, ro.ReplicaID); err != nil {
				log.Warn("could not leave the replica set; the other replicas take the targets over when the leases lapse", "err", err)
			}
		})
	}
	phases.Go(func() { a.stopRelay(stopCtx, log) })
	if srv != nil {
		phases.Go(func() {
			if err := srv.Shutdown(stopCtx); err != nil {
				log.Warn("HTTP server did not close in time; connections cut", "err", err)
				_ = srv.Close()
			}
		})
	}
	if !waitUntil(stopCtx, phases.Wait) {
		log.Warn("shutdown phases still running at the deadline; abandoned", "budget", budget)
	}
	return err
}

// stopRelay stops the relay loop, publishes what is pending unless another
// relay holds the lock (then that relay publishes it), and closes the NATS
// connection, within ctx: three quarters of the time left for the relay, a
// quarter for NATS.
func (a *App) stopRelay(ctx context.Context, log *slog.Logger) {
	relayCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		relayCtx, cancel = context.WithDeadline(ctx, deadline.Add(-time.Until(deadline)/4))
		defer cancel()
	}
	if rel := a.relay(); rel != nil {
		if !waitUntil(relayCtx, rel.Stop) {
			log.Warn("relay loop did not stop in time; abandoned")
		} else {
			switch n, busy, err := rel.DrainUnlessBusy(relayCtx); {
			case err != nil:
				log.Warn("final relay round failed; the pending events stay in the outbox for the next relay", "published", n, "err", err)
			case busy:
				log.Info("another replica holds the relay lock; it publishes the pending events", "published", n)
			case n > 0:
				log.Info("final relay round done", "published", n)
			}
		}
	}
	if nc := a.NATS(); nc != nil {
		if !closeNATS(ctx, nc) {
			log.Warn("NATS did not drain in time; connection closed")
		}
	}
}

// closeNATS drains nc, then closes it, waiting for the drain until ctx is
// done; it reports whether the drain finished in time.
func closeNATS(ctx context.Context, nc *nats.Conn) bool {
	defer nc.Close()
	if nc.IsClosed() {
		return true
	}
	closed := nc.StatusChanged(nats.CLOSED)
	if err := nc.Drain(); err != nil {
		return false // not connected: nothing to drain
	}
	select {
	case <-closed:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitUntil runs fn and waits for it until ctx is done; it reports whether
// fn returned. An fn still running is abandoned: the process is exiting.
func waitUntil(ctx context.Context, fn func()) bool {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *App) listen(ro RunOptions) (net.Listener, error) {
	if ro.Listener != nil {
		return ro.Listener, nil
	}
	if a.cfg.HTTP.Listen == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", a.cfg.HTTP.Listen, err)
	}
	return ln, nil
}

func (a *App) relay() *publisher.Relay {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rel
}

// relayWhenConnected connects to NATS, retrying while the broker is away
// (sweeps go on meanwhile and their events wait in the outbox), then runs
// the relay until ctx is done.
func (a *App) relayWhenConnected(ctx context.Context, ro RunOptions, log interface {
	Warn(string, ...any)
}) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		rel, err := a.ConnectNATS(cctx)
		cancel()
		if err == nil {
			if err := rel.Start(ctx); err != nil {
				log.Warn("relay", "err", err)
			}
			return
		}
		log.Warn("NATS not ready; events wait in the outbox", "err", err, "retry_in", ro.NATSRetry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(ro.NATSRetry):
		}
	}
}

// scheduleTarget sweeps one target on its schedule, one sweep at a time: a
// sweep that overruns its period makes the schedule skip the ticks it
// missed rather than queue them. A lease newly acquired (at start, or taken
// over from a stopped replica) triggers a sweep at once.
func (a *App) scheduleTarget(ctx, sweepCtx context.Context, t Target, s cron.Schedule, leases *leaser, ro RunOptions, log *slog.Logger) {
	acquired := leases.acquiredCh(t.Name)
	fullDone := false
	for {
		now := a.opts.NowFunc()
		next := s.Next(now)
		if next.IsZero() {
			log.Error("schedule never fires again; the target is not swept", "target", t.Name, "schedule", t.Config.Schedule)
			return
		}
		timer := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-acquired:
			timer.Stop()
		}
		if ctx.Err() != nil {
			return // stopping: select may have picked a ready timer over ctx
		}
		if !leases.begin(t.Name) {
			log.Debug("not sweeping: another replica holds the lease", "target", t.Name)
			continue
		}
		// A target's first sweep in this process is full; the others are
		// hot, and full whenever the last full one is older than the
		// reconcile interval (the poller decides, on the database's clock,
		// so that replicas agree).
		mode := poller.Hot
		if !fullDone {
			mode = poller.Full
		}
		r := a.sweep(sweepCtx, t, mode)
		if r.Err == nil && !r.Stale && !r.Hot {
			fullDone = true
		}
		leases.end(t.Name)
		if ro.OnSweep != nil {
			ro.OnSweep(r)
		}
	}
}
