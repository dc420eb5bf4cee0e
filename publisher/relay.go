package publisher

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/store"
)

const (
	// A started relay retries a failed round after minBackoff, doubling up
	// to maxBackoff, jittered.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	// Drain retries a round that found another relay at work after
	// minLockWait, doubling up to maxLockWait.
	minLockWait = 20 * time.Millisecond
	maxLockWait = time.Second
)

// Relay publishes the outbox to JetStream. See the package documentation
// for its guarantees.
type Relay struct {
	cfg    Config
	sender sender

	mu      sync.Mutex
	cancel  context.CancelFunc // of the started loop
	stopped chan struct{}      // closed when the started loop has returned

	lockMu       sync.Mutex
	waitingSince time.Time // since when rounds have found the lock taken; zero if the last got it
	waitLogged   bool      // the current wait has been logged
}

// New returns a relay, validating cfg after applying its defaults.
func New(cfg Config) (*Relay, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	return &Relay{
		cfg: cfg,
		sender: sender{
			js:          cfg.JetStream,
			stream:      cfg.Stream,
			maxInFlight: cfg.MaxInFlight,
			timeout:     cfg.PublishTimeout,
		},
	}, nil
}

// round is what one relay round did.
type round struct {
	published int
	locked    bool // it held the relay lock; false if another relay did
	full      bool // it published a whole batch: more may be waiting
}

// RelayOnce runs one round: it publishes up to Config.BatchSize pending
// events and marks those acknowledged. If another relay is at work it
// publishes nothing and returns 0, nil. On error, the events not
// acknowledged stay pending for the next round.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	rd, err := r.runOnce(ctx)
	return rd.published, err
}

// Drain runs rounds until one finds fewer than a batch of events pending,
// and returns how many it published. `ossjobwatch sweep` calls it to wait
// for the acknowledgement of what the sweep wrote. If another relay is at
// work, Drain waits for its turn; it stops at the first failed round. A
// stopping daemon calls DrainUnlessBusy instead.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	n, _, err := r.drain(ctx, true)
	return n, err
}

func (r *Relay) runOnce(ctx context.Context) (round, error) {
	var oldest time.Time
	rc := store.RelayRoundConfig{Limit: r.cfg.BatchSize, IdleTimeout: r.cfg.idleTimeout()}
	n, locked, err := r.cfg.Store.RelayRoundWith(ctx, rc, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		// Pulled one by one as the sender's window frees: publishing starts
		// while the round is still reading the outbox.
		next, stop := iter.Pull(events)
		defer stop()
		source := func() (store.OutboxEvent, bool, error) {
			ev, ok := next()
			return ev, ok, nil
		}
		return r.sender.send(ctx, source, func(ev store.OutboxEvent, _ *jetstream.PubAck) {
			ack(ev.ID, r.cfg.NowFunc())
			if oldest.IsZero() || ev.ObservedAt.Before(oldest) {
				oldest = ev.ObservedAt
			}
		})
	})
	if n > 0 && r.cfg.OnPublished != nil {
		r.cfg.OnPublished(n, r.cfg.NowFunc().Sub(oldest))
	}
	if locked || err == nil {
		// A round that failed before it could try the lock says nothing
		// about it.
		r.lockWaited(locked)
	}
	if err != nil {
		return round{published: n, locked: locked}, fmt.Errorf("relay round: %w", err)
	}
	return round{published: n, locked: locked, full: n == r.cfg.BatchSize}, nil
}

// LockWait returns how long this relay's rounds have found the relay lock
// taken by another relay or a replay, since the first that did; zero if the
// last round got it. A relay that waits long is blocked: another replica's
// round is stuck, or a replay runs.
func (r *Relay) LockWait() time.Duration {
	r.lockMu.Lock()
	defer r.lockMu.Unlock()
	if r.waitingSince.IsZero() {
		return 0
	}
	return r.cfg.NowFunc().Sub(r.waitingSince)
}

// lockWaited records whether a round got the relay lock: it logs a wait
// longer than Config.LockWaitWarning once, and its end, and reports the
// wait to Config.OnLockWait.
func (r *Relay) lockWaited(locked bool) {
	now := r.cfg.NowFunc()
	r.lockMu.Lock()
	var wait time.Duration
	if locked {
		if r.waitLogged {
			r.cfg.Logger.Info("relay lock taken", "waited", now.Sub(r.waitingSince).Round(time.Second))
		}
		r.waitingSince, r.waitLogged = time.Time{}, false
	} else {
		if r.waitingSince.IsZero() {
			r.waitingSince = now
		}
		wait = now.Sub(r.waitingSince)
		if wait >= r.cfg.LockWaitWarning && !r.waitLogged {
			r.waitLogged = true
			r.cfg.Logger.Warn("relay lock held elsewhere (another replica's round or a replay); not publishing",
				"waited", wait.Round(time.Second))
		}
	}
	r.lockMu.Unlock()
	if r.cfg.OnLockWait != nil {
		r.cfg.OnLockWait(wait)
	}
}

// Start starts relaying in the background and returns at once. The relay
// runs a round when a sweep's notification wakes it, every
// Config.PollInterval in case notifications were lost, and at once again
// after a full batch; after a failed round it backs off (jittered, from
// 100ms to 10s). It runs until ctx is done or Stop is called.
func (r *Relay) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped != nil {
		select {
		case <-r.stopped:
		default:
			return errors.New("publisher: relay already started")
		}
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.stopped = make(chan struct{})
	go r.run(ctx, r.stopped)
	return nil
}

// Stop stops a started relay and waits until it has: the round in progress
// stops waiting for acknowledgements and marks what was acknowledged, within
// a few seconds. Stopping a relay not started does nothing.
func (r *Relay) Stop() {
	r.mu.Lock()
	cancel, stopped := r.cancel, r.stopped
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-stopped
}

// Stopped returns a channel closed when the started relay has stopped, or
// nil if it was never started.
func (r *Relay) Stopped() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

func (r *Relay) run(ctx context.Context, stopped chan<- struct{}) {
	defer close(stopped)
	log := r.cfg.Logger
	wake := r.cfg.Store.ListenOutbox(ctx, func(err error) {
		log.Warn("outbox notifications interrupted; reconnecting", "err", err)
		r.onError(err)
	})
	defer func() {
		for range wake { // until the LISTEN connection is closed
		}
	}()
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()

	failures := 0
	for {
		rd, err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		var retry <-chan time.Time
		switch {
		case err != nil:
			failures++
			delay := backoff(failures)
			log.Error("relay round failed; retrying", "err", err, "published", rd.published, "retry_in", delay)
			r.onError(err)
			retry = time.After(delay)
		case rd.full:
			failures = 0
			continue
		default:
			failures = 0
		}
		if retry != nil {
			// Notifications would only hasten the next failure.
			select {
			case <-ctx.Done():
				return
			case <-retry:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		}
	}
}

func (r *Relay) onError(err error) {
	if r.cfg.OnError != nil {
		r.cfg.OnError(err)
	}
}

// backoff is the jittered delay before retry n (from 1): minBackoff
// doubled n-1 times, capped at maxBackoff, then 50% to 100% of that.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 20 {
		d = min(minBackoff<<(n-1), maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}
