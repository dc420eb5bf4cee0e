package osssim

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// Credential is an access key the simulator accepts. A non-empty
// SecurityToken makes it an STS credential: its requests must carry the same
// token in x-oss-security-token.
type Credential struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
}

// DefaultCredential is the key a simulator accepts when Config.Credentials is
// empty. It is fake and valid nowhere but here, which is why the simulate
// verb may print it.
var DefaultCredential = Credential{
	AccessKeyID:     "LTAI5tSimulatorAccessKey",
	AccessKeySecret: "SimulatorSecretNotValidOnRealOSS0000",
}

// V1SubResources are the query parameters the simulator includes in a V1
// (OSS AKID:signature) string to sign, on top of the SDK's built-in list
// (which already holds continuation-token). A V1 client must pass the same
// list as signer.SubResource in the operation metadata.
var V1SubResources = []string{"batchJob", "batchJobId", "batchJobStatuses"}

// maxWorld bounds Config.Jobs: a typo should not allocate gigabytes.
const maxWorld = 1_000_000

// Config configures a Simulator. The zero value is a valid configuration.
type Config struct {
	// Region is the region the endpoint serves; a V4 signature must be scoped
	// to it. Defaults to "cn-hangzhou".
	Region string

	// Credentials are the keys the simulator accepts. Defaults to
	// DefaultCredential alone.
	Credentials []Credential

	// Jobs is the initial number of jobs. Defaults to 100; set EmptyWorld for
	// a world that starts with no jobs.
	Jobs int

	// EmptyWorld starts the world without jobs and without arrivals, for tests
	// that place every job with Put. Jobs must then be 0.
	EmptyWorld bool

	// Seed seeds the world and the random faults. Two simulators with the same
	// Config, the same NowFunc readings and the same sequence of Step calls
	// hold the same world.
	Seed int64

	// Tick is how often the world evolves once Start is called. Zero means the
	// world changes only on explicit Step calls.
	Tick time.Duration

	// Faults are per-request fault probabilities. Defaults to none.
	Faults Faults

	// Lively makes the world churn faster (more transitions and arrivals per
	// tick, shorter retention) and turns UnknownElements on, for the demo.
	Lively bool

	// NeedsAttention adds two jobs that need a human, for the demo: one
	// Active job whose task counters stop moving after StallAfterTicks ticks
	// (a stalled job; its ElapsedTimeInActiveSeconds still grows, as OSS's
	// does), and one created 26 hours before NowFunc that waits in
	// Suspended with ConfirmationRequired and is never confirmed, failed or
	// cancelled (a job a confirmation reminder is due for). Neither ever
	// changes status.
	NeedsAttention bool

	// UnknownElements puts elements a client does not know into some job
	// descriptors, to exercise the client's tolerance.
	UnknownElements bool

	// NowFunc is the simulator's clock: it checks request dates and stamps
	// job times and response Date headers. Defaults to time.Now.
	NowFunc func() time.Time

	// MaxClockSkew is how far a request's date may be from NowFunc.
	// Defaults to 15 minutes.
	MaxClockSkew time.Duration

	// Logger receives one debug line per request. Defaults to discarding.
	Logger *slog.Logger
}

// withDefaults returns cfg with defaults applied, or an error naming the
// first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	cfg.Region = cmp.Or(cfg.Region, "cn-hangzhou")
	if !validRegion(cfg.Region) {
		return cfg, fmt.Errorf("osssim: Config.Region: %q is not a region id (lowercase letters, digits and '-')", cfg.Region)
	}
	if len(cfg.Credentials) == 0 {
		cfg.Credentials = []Credential{DefaultCredential}
	}
	seen := map[string]bool{}
	for i, c := range cfg.Credentials {
		if c.AccessKeyID == "" || c.AccessKeySecret == "" {
			return cfg, fmt.Errorf("osssim: Config.Credentials[%d]: access key id and secret are required", i)
		}
		if seen[c.AccessKeyID] {
			return cfg, fmt.Errorf("osssim: Config.Credentials[%d]: duplicate access key id %q", i, c.AccessKeyID)
		}
		seen[c.AccessKeyID] = true
	}
	switch {
	case cfg.Jobs < 0 || cfg.Jobs > maxWorld:
		return cfg, fmt.Errorf("osssim: Config.Jobs: %d is outside 0..%d", cfg.Jobs, maxWorld)
	case cfg.EmptyWorld && cfg.Jobs != 0:
		return cfg, fmt.Errorf("osssim: Config.Jobs: must be 0 with EmptyWorld, got %d", cfg.Jobs)
	case !cfg.EmptyWorld && cfg.Jobs == 0:
		cfg.Jobs = 100
	}
	if cfg.Tick < 0 {
		return cfg, fmt.Errorf("osssim: Config.Tick: must not be negative, got %s", cfg.Tick)
	}
	if cfg.MaxClockSkew < 0 {
		return cfg, fmt.Errorf("osssim: Config.MaxClockSkew: must not be negative, got %s", cfg.MaxClockSkew)
	}
	cfg.MaxClockSkew = cmp.Or(cfg.MaxClockSkew, 15*time.Minute)
	if err := cfg.Faults.validate("osssim: Config.Faults"); err != nil {
		return cfg, err
	}
	cfg.UnknownElements = cfg.UnknownElements || cfg.Lively
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func validRegion(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return s != ""
}

// Simulator is an OSS Batch Operations endpoint. It is an http.Handler and is
// safe for concurrent use.
type Simulator struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	creds    map[string]Credential
	tokenKey []byte
	idSalt   uint32
	idSeq    atomic.Uint64
	started  atomic.Bool

	mu    sync.RWMutex // guards world
	world *world

	faults faultState
	stats  statsState
}

// New returns a simulator holding a freshly seeded world.
func New(cfg Config) (*Simulator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Simulator{
		cfg:      cfg,
		log:      cfg.Logger,
		now:      cfg.NowFunc,
		creds:    make(map[string]Credential, len(cfg.Credentials)),
		tokenKey: tokenKey(cfg.Seed, cfg.Region),
		faults:   newFaultState(cfg.Seed, cfg.Faults),
		stats:    newStatsState(),
	}
	for _, c := range cfg.Credentials {
		s.creds[c.AccessKeyID] = c
	}
	// Request ids only need to be unique, not reproducible: a random salt
	// keeps two simulators in one test from issuing the same ids.
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	s.idSalt = binary.BigEndian.Uint32(salt[:])
	s.world = newWorld(worldConfig{
		seed:     cfg.Seed,
		jobs:     cfg.Jobs,
		arrivals: !cfg.EmptyWorld,
		lively:   cfg.Lively,
		tick:     cfg.Tick,
		// Added after the others are seeded, which are thus the same with
		// and without them.
		attention: cfg.NeedsAttention,
	}, s.now())
	return s, nil
}

// Region returns the region the simulator serves.
func (s *Simulator) Region() string { return s.cfg.Region }

// Start evolves the world every Config.Tick until ctx is done. It returns at
// once; with a zero Tick, or on a second call, it does nothing.
func (s *Simulator) Start(ctx context.Context) {
	if s.cfg.Tick <= 0 || !s.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		t := time.NewTicker(s.cfg.Tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Step()
			}
		}
	}()
}

// Step advances the world by one tick. See world.step for the rules.
func (s *Simulator) Step() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.world.step(now)
}

// Jobs returns deep copies of every job in the world, sorted by JobId.
func (s *Simulator) Jobs() []job.Detail {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]job.Detail, 0, len(s.world.ids))
	for _, id := range s.world.ids {
		out = append(out, copyDetail(s.world.jobs[id].d))
	}
	return out
}

// Job returns a deep copy of one job.
func (s *Simulator) Job(id string) (job.Detail, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.world.jobs[id]
	if !ok {
		return job.Detail{}, false
	}
	return copyDetail(e.d), true
}

// Put inserts d, or replaces the job with its JobId, exactly as given: the
// simulator does not check that its fields are consistent, so tests can serve
// odd data. Later Steps evolve it like any other job. A JobId longer than
// about 700 bytes would need a continuation token longer than OSS's 1024
// characters, and pages after it are refused.
func (s *Simulator) Put(d job.Detail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.world.put(copyDetail(d))
}

// Remove deletes a job and reports whether it existed.
func (s *Simulator) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.world.remove(id)
}

// Serve answers HTTP requests on ln until ctx is done, then shuts down,
// giving in-flight requests up to five seconds. Requests still waiting on a
// Slow fault are cancelled at once. It returns nil after a clean shutdown.
func (s *Simulator) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	return nil
}

// nextRequestID returns 24 upper-case hex digits, like OSS's request ids.
func (s *Simulator) nextRequestID() string {
	return fmt.Sprintf("%08X%016X", s.idSalt, s.idSeq.Add(1))
}

func copyDetail(d job.Detail) job.Detail {
	if d.FailureReasons != nil {
		d.FailureReasons = append([]job.FailureReason(nil), d.FailureReasons...)
	}
	return d
}
