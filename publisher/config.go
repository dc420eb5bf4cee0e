package publisher

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// Defaults of Config and StreamConfig.
const (
	DefaultStream          = "OSSJOBS"
	DefaultBatchSize       = 10000
	DefaultMaxInFlight     = 512
	DefaultPublishTimeout  = 10 * time.Second
	DefaultPollInterval    = 5 * time.Second
	DefaultLockWaitWarning = time.Minute
)

// Config configures a Relay.
type Config struct {
	// Store holds the outbox. Required.
	Store *store.Store

	// JetStream publishes the events. Required. Make it with NewJetStream:
	// the relay times out each publish itself, but nats.go keeps a future it
	// was never told to expire, and after a few thousand unanswered ones
	// (a stream without a leader) it refuses every publish until a
	// reconnect.
	JetStream jetstream.JetStream

	// Stream is the stream the events must land in: an acknowledgement from
	// another stream (the subjects are captured by a stream the relay was not
	// told about) is an error. Defaults to "OSSJOBS".
	Stream string

	// BatchSize is the most events one round publishes, in one transaction.
	// Defaults to 10,000: events are read, published and marked as a stream
	// within a round, so a large round costs no latency and saves commits.
	BatchSize int

	// MaxInFlight is the most events published but not yet acknowledged.
	// Defaults to 512.
	MaxInFlight int

	// PublishTimeout bounds the wait for each event's acknowledgement.
	// Defaults to 10 seconds.
	PublishTimeout time.Duration

	// PollInterval is how often a started relay looks at the outbox when no
	// notification woke it: a fallback for notifications lost while its
	// LISTEN connection was down. Defaults to 5 seconds.
	PollInterval time.Duration

	// Logger logs failed rounds and the LISTEN connection's troubles.
	// Defaults to a logger that discards.
	Logger *slog.Logger

	// NowFunc is the clock, for OnPublished's lag. Defaults to time.Now.
	NowFunc func() time.Time

	// OnPublished, if set, is called after each round that marked events
	// published, with their number and the round's lag: how long before the
	// call the oldest of them was observed. Per round rather than per event
	// so that a metric costs nothing per event; the oldest event's lag is
	// what an alert on "the relay is behind" wants.
	OnPublished func(n int, lag time.Duration)

	// OnError, if set, is called with the error of each failed round of a
	// started relay and each failure of its LISTEN connection.
	OnError func(error)

	// LockWaitWarning is how long rounds may find the relay lock taken
	// before the relay logs it, once per wait (and again, at Info, when it
	// gets the lock). Another replica holds the lock only for the length of
	// a round, a replay for its whole run. Defaults to 1 minute.
	LockWaitWarning time.Duration

	// OnLockWait, if set, is called after each round that got or tried the
	// lock with what LockWait then returns: how long rounds have found it
	// taken, zero when this one got it. For a gauge such as
	// ossjobwatch_relay_lock_wait_seconds.
	OnLockWait func(time.Duration)
}

// idleTimeout is the round transaction's idle_in_transaction_session_timeout
// (store.RelayRoundConfig.IdleTimeout): a round waits up to PublishTimeout
// for each acknowledgement while its transaction idles, so three of those,
// and at least a minute.
func (c Config) idleTimeout() time.Duration {
	return max(store.DefaultRelayIdleTimeout, 3*c.PublishTimeout)
}

func (c Config) withDefaults() Config {
	c.Stream = cmp.Or(c.Stream, DefaultStream)
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, DefaultPublishTimeout)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.LockWaitWarning = cmp.Or(c.LockWaitWarning, DefaultLockWaitWarning)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("Config.Store: required"))
	}
	if c.JetStream == nil {
		errs = append(errs, errors.New("Config.JetStream: required"))
	}
	if err := validStreamName(c.Stream); err != nil {
		errs = append(errs, fmt.Errorf("Config.Stream: %w", err))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("Config.BatchSize: must be positive, got %d", c.BatchSize))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("Config.MaxInFlight: must be positive, got %d", c.MaxInFlight))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("Config.PublishTimeout: must be positive, got %s", c.PublishTimeout))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("Config.PollInterval: must be positive, got %s", c.PollInterval))
	}
	if c.LockWaitWarning <= 0 {
		errs = append(errs, fmt.Errorf("Config.LockWaitWarning: must be positive, got %s", c.LockWaitWarning))
	}
	return errors.Join(errs...)
}
