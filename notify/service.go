package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"text/template"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// Defaults of Config.
const (
	DefaultStream         = "OSSJOBS"
	DefaultConsumerPrefix = "ossjobwatch-notify-"
	DefaultAckWait        = 30 * time.Second
	DefaultMaxAckPending  = 1000
	DefaultMaxDigest      = 50
	DefaultSendTimeout    = 30 * time.Second
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultSlowRetry      = 5 * time.Minute
	DefaultMaxRetryAfter  = 15 * time.Minute
)

// Store is what the service needs of the database: which receivers
// already have an event, and a record of every attempt.
type Store interface {
	Delivered(ctx context.Context, eventIDs []string, receiver string) (map[string]bool, error)
	RecordFailure(ctx context.Context, refs []store.DeliveryRef, at time.Time, errMsg string) error
	RecordDelivered(ctx context.Context, refs []store.DeliveryRef, at time.Time) error
}

// Route is a route ready to run: its configuration and its template,
// parsed.
type Route struct {
	RouteConfig
	// Template renders single-event messages in place of the receiver
	// type's default; nil keeps the default.
	Template *template.Template
}

// Receiver is a receiver ready to take messages.
type Receiver struct {
	Name   string
	Type   string
	Sender Sender
	// Rates bound the requests, all of them at once; empty is unbounded.
	// The caller fills in the type's defaults (DefaultRates).
	Rates []Rate
	// Digest folds the events that wait for the rate into one message
	// (Digestible). Without it each request carries one event.
	Digest bool
	// Secrets are strings that must not reach the logs or the database:
	// the URL, its tokens, the signing secret. Errors are scrubbed of
	// them.
	Secrets []string
}

// Config configures a Service.
type Config struct {
	// JetStream is the connection's JetStream context. Required.
	JetStream jetstream.JetStream
	// Stream is the stream the events are in. Defaults to OSSJOBS.
	Stream string
	// Routes each get a durable consumer. At least one is required.
	Routes []Route
	// Receivers are the receivers the routes name.
	Receivers []Receiver
	// Store records deliveries. Required.
	Store Store
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the metrics. Defaults to none.
	Registerer prometheus.Registerer
	// NowFunc is the clock of the recorded times and the queue age.
	// Waits (rates, backoff) use real timers. Defaults to time.Now.
	NowFunc func() time.Time

	// ConsumerPrefix names the durable consumers: prefix + route name.
	// Defaults to "ossjobwatch-notify-".
	ConsumerPrefix string
	// AckWait is the consumers' ack wait; a message being worked on is
	// kept from redelivery by a heartbeat (InProgress) every third of it.
	// Defaults to 30s.
	AckWait time.Duration
	// MaxAckPending bounds each consumer's messages in hand. Defaults to
	// 1000.
	MaxAckPending int
	// MaxDigest bounds the events of one digest. Defaults to 50.
	MaxDigest int
	// SendTimeout bounds one request. Defaults to 30s.
	SendTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff after a
	// failed request; the wait is jittered ±20% after the cap, so it may
	// reach 1.2 × MaxBackoff. Default to 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// SlowRetry is the wait after a failure that needs a person (a wrong
	// secret, a missing keyword: SendError.Slow), and how long an event
	// whose content a receiver refused (SendError.Content) waits aside
	// while the receiver's other events go on. Defaults to 5m.
	SlowRetry time.Duration
	// MaxRetryAfter caps the wait a receiver asks for (Retry-After,
	// DingTalk's minute after 130101), against a reply that would stall
	// it for hours. Defaults to 15m.
	MaxRetryAfter time.Duration
}

func (c Config) withDefaults() Config {
	c.Stream = cmp.Or(c.Stream, DefaultStream)
	c.ConsumerPrefix = cmp.Or(c.ConsumerPrefix, DefaultConsumerPrefix)
	c.AckWait = cmp.Or(c.AckWait, DefaultAckWait)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, DefaultMaxAckPending)
	c.MaxDigest = cmp.Or(c.MaxDigest, DefaultMaxDigest)
	c.SendTimeout = cmp.Or(c.SendTimeout, DefaultSendTimeout)
	c.MinBackoff = cmp.Or(c.MinBackoff, DefaultMinBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, DefaultMaxBackoff)
	c.SlowRetry = cmp.Or(c.SlowRetry, DefaultSlowRetry)
	c.MaxRetryAfter = cmp.Or(c.MaxRetryAfter, DefaultMaxRetryAfter)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.JetStream == nil {
		errs = append(errs, errors.New("config.JetStream: required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("config.Store: required"))
	}
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("config.Routes: at least one is required"))
	}
	receivers := map[string]bool{}
	for _, r := range c.Receivers {
		if r.Sender == nil {
			errs = append(errs, fmt.Errorf("receiver %s: no Sender", r.Name))
		}
		for _, rt := range r.Rates {
			if rt.Count < 1 || rt.Per <= 0 {
				errs = append(errs, fmt.Errorf("receiver %s: rate %s is not positive", r.Name, rt))
			}
		}
		receivers[r.Name] = true
	}
	for _, r := range c.Routes {
		if len(r.Subjects) == 0 {
			errs = append(errs, fmt.Errorf("route %s: no subjects", r.Name))
		}
		if len(r.Receivers) == 0 {
			// Nothing would ever complete its messages: they would be
			// held, unacknowledged, for good.
			errs = append(errs, fmt.Errorf("route %s: no receivers", r.Name))
		}
		for _, name := range r.Receivers {
			if !receivers[name] {
				errs = append(errs, fmt.Errorf("route %s: unknown receiver %q", r.Name, name))
			}
		}
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("config.AckWait: %s is shorter than 1s", c.AckWait))
	}
	return errors.Join(errs...)
}

// Service delivers the events of each route to the route's receivers:
// one durable pull consumer per route, one worker per receiver shared by
// every route that names it.
//
// A message is acknowledged once every receiver of its route has accepted
// it, or had it already (notify_deliveries). Until then it is kept: the
// worker retries with backoff, and a heartbeat keeps JetStream from
// redelivering it meanwhile. A failed delivery never drops a message; a
// message that is not an event (it can never be delivered) is terminated.
type Service struct {
	cfg       Config
	log       *slog.Logger
	metrics   *metrics
	routes    []*route
	receivers map[string]*worker

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New checks cfg and builds a service; Start runs it.
func New(cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, receivers: map[string]*worker{}}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("notify: metrics: %w", err)
	}
	s.metrics = m
	for _, rc := range cfg.Receivers {
		w := newWorker(s, rc)
		s.receivers[rc.Name] = w
		if err := m.addQueueAge(cfg.Registerer, rc.Name, w.queueAge); err != nil {
			return nil, fmt.Errorf("notify: metrics: %w", err)
		}
	}
	for _, rc := range cfg.Routes {
		r := &route{s: s, Route: rc, inFlight: map[*tracker]struct{}{}}
		r.setUp(false)
		for _, name := range rc.Receivers {
			r.workers = append(r.workers, s.receivers[name])
		}
		s.routes = append(s.routes, r)
	}
	return s, nil
}

// RoutesDown names the routes that have not been consuming for longer
// than d (since New, if they never did): the service not started, or a
// consumer that cannot be created again.
func (s *Service) RoutesDown(d time.Duration) []string {
	var out []string
	now := time.Now()
	for _, r := range s.routes {
		if since := r.downSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > d {
			out = append(out, r.Name)
		}
	}
	return out
}

// ConsumerName is the durable consumer of a route.
func (s *Service) ConsumerName(route string) string { return s.cfg.ConsumerPrefix + route }

// ConsumerConfig is the consumer of a route. DeliverPolicy is New: a
// route's first start does not send the stream's history to chat; from
// then on the durable consumer remembers where it was, across restarts.
func (s *Service) ConsumerConfig(r RouteConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        s.ConsumerName(r.Name),
		Description:    "ossjobwatch notify, route " + r.Name,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.cfg.AckWait,
		MaxDeliver:     -1,
		FilterSubjects: r.Subjects,
		MaxAckPending:  s.cfg.MaxAckPending,
	}
}

// Start creates or updates the routes' consumers (an error if one cannot
// be) and starts consuming; it returns at once after. The service runs
// until ctx is done or Stop is called.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("notify: already started")
	}
	for _, r := range s.routes {
		cctx, cancel := context.WithTimeout(ctx, consumerTimeout)
		cons, err := s.cfg.JetStream.CreateOrUpdateConsumer(cctx, s.cfg.Stream, s.ConsumerConfig(r.RouteConfig))
		cancel()
		if err != nil {
			return fmt.Errorf("notify: route %s: consumer %s on stream %s: %w", r.Name, s.ConsumerName(r.Name), s.cfg.Stream, err)
		}
		r.consumer = cons
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.started = true
	for _, w := range s.receivers {
		s.wg.Go(func() { w.run(ctx) })
	}
	for _, r := range s.routes {
		s.wg.Go(func() { r.consume(ctx) })
		s.wg.Go(func() { r.heartbeat(ctx) })
	}
	s.log.Info("notify started", "routes", len(s.routes), "receivers", len(s.receivers))
	return nil
}

// Stop stops consuming and sending and waits for the loops until ctx is
// done. A request under way is cancelled; every message not yet
// acknowledged is handed back (Nak) for redelivery, here or to another
// process, where the receivers that already have it are skipped.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("notify: stop: %w", ctx.Err())
	}
	for _, r := range s.routes {
		r.nakAll()
	}
	return err
}

// consumerTimeout bounds creating or updating one consumer.
const consumerTimeout = 30 * time.Second

// uuidPattern is an event id's form; notify_deliveries keys on it. It
// takes upper-case hex: the worker keys its bookkeeping by the id in lower
// case (eventKey), as PostgreSQL prints a uuid.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
