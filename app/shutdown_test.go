package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// stopWithin cancels a running Run, as SIGTERM does through cmd, and checks
// that Run returns success and Close returns, the two together before
// limit: a generous bound over the budget, not a timing measurement.
func stopWithin(t *testing.T, a *App, cancel context.CancelFunc, done <-chan error, limit time.Duration) {
	t.Helper()
	cancel()
	deadline := time.After(limit)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after its stop signal = %v, want success", err)
		}
	case <-deadline:
		t.Fatalf("Run still running %s after its stop signal", limit)
	}
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-deadline:
		t.Fatalf("Close still running %s after the stop signal", limit)
	}
}

// TestRunStopsCleanlyWhileAnotherRelayHoldsTheLock stops a daemon whose
// events are pending while another session holds the relay lock, as a
// replica in a relay round does: the stop must not wait for the lock, and
// it is a success, the events staying for that relay.
func TestRunStopsCleanlyWhileAnotherRelayHoldsTheLock(t *testing.T) {
	t.Parallel()
	const budget = 4 * time.Second
	b := setup(t, osssim.Config{Jobs: 30, Seed: 21}, 1, "@every 1h")
	var logs lockedBuffer
	a, err := Open(t.Context(), b.cfg, Options{
		Credentials: b.ossCfg.Credentials,
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
		OSS:         oss.Config{BaseDelay: time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)

	// The lock a relay round takes (store/outbox.go): transaction-scoped,
	// so held by an open transaction.
	other, err := pgx.Connect(t.Context(), b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	tx, err := other.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(t.Context(), `SELECT pg_advisory_xact_lock(hashtextextended('ossjobwatch.relay', 0))`); err != nil {
		t.Fatal(err)
	}

	sweeps := make(chan SweepResult, 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, RunOptions{Listener: httptestListener(t), ShutdownTimeout: budget,
			OnSweep: func(r SweepResult) { sweeps <- r }})
	}()
	select {
	case r := <-sweeps:
		if r.Err != nil || r.Events == 0 {
			t.Fatalf("first sweep: %d events, %v", r.Events, r.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep within 30s")
	}
	select {
	case <-a.Connected():
	case <-time.After(30 * time.Second):
		t.Fatal("not connected to NATS within 30s")
	}

	stopWithin(t, a, cancel, done, budget+10*time.Second)

	pending, _, err := b.openStoreOnly(t).OutboxStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatal("the events were published although another session held the relay lock")
	}
	if !strings.Contains(logs.String(), "another replica holds the relay lock") {
		t.Errorf("the stop did not say that another relay publishes the pending events:\n%s", logs.String())
	}
}

// lockedBuffer is a log destination for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// signalTransport signals the first OSS request it sends.
type signalTransport struct {
	once sync.Once
	sent chan struct{}
}

func (s *signalTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.once.Do(func() { close(s.sent) })
	return http.DefaultTransport.RoundTrip(r)
}

// TestRunCutsAHungSweepAtItsShare stops a daemon whose sweep waits on a
// ListJobs page that never comes: the sweep is cancelled at its share of the
// budget and rolls back, and the stop is a success within the budget.
func TestRunCutsAHungSweepAtItsShare(t *testing.T) {
	t.Parallel()
	const budget = 4 * time.Second
	b := setup(t, osssim.Config{Jobs: 10, Seed: 22}, 1, "@every 1h")
	b.sim.FailNext(1, osssim.Failure{Delay: time.Hour}) // until the client gives up
	tr := &signalTransport{sent: make(chan struct{})}
	a, err := Open(t.Context(), b.cfg, Options{
		Credentials: b.ossCfg.Credentials,
		HTTPClient:  &http.Client{Transport: tr},
		OSS:         oss.Config{BaseDelay: time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	sweeps := make(chan SweepResult, 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, RunOptions{Listener: httptestListener(t), ShutdownTimeout: budget,
			OnSweep: func(r SweepResult) { sweeps <- r }})
	}()
	select {
	case <-tr.sent:
	case <-time.After(30 * time.Second):
		t.Fatal("no OSS request within 30s")
	}

	stopWithin(t, a, cancel, done, budget+10*time.Second)

	select {
	case r := <-sweeps:
		if r.Err == nil {
			t.Fatalf("the hung sweep succeeded: %+v", r.Result)
		}
	default:
		t.Fatal("the hung sweep never returned")
	}
}
