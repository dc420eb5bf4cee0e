// Package config turns the environment, an optional YAML file and flags
// into a validated Config: one Target per OSS account and region. Errors
// name the setting and the rule it broke, e.g.
//
//	OSSJOBWATCH_SCHEDULE: invalid cron spec "every minute": …
//
// Precedence, lowest first: defaults, the YAML file, the environment,
// flags. Targets come either from the file's targets list or from the
// single-target variables (OSSJOBWATCH_REGION …), never from both.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// Defaults.
const (
	DefaultNATSURL       = "nats://127.0.0.1:4222"
	DefaultSubjectPrefix = "ossjobs"
	DefaultStream        = "OSSJOBS"
	DefaultSchedule      = "@every 1m"
	DefaultOSSRate       = 20.0
	// DefaultReconcileInterval is how often run lists every job of a
	// target; the sweeps between list only the unfinished ones.
	DefaultReconcileInterval = 15 * time.Minute
	// DefaultStallAfter is how long a job may not move before it is
	// announced stalled.
	DefaultStallAfter      = time.Hour
	DefaultDuplicateWindow = 30 * time.Minute
	DefaultHTTPListen      = ":9090"
)

// Config is everything ossjobwatch needs to run.
type Config struct {
	DatabaseURL string
	NATSURL     string
	// NATSCreds is a NATS credentials file (JWT and NKey seed), NATSCA a
	// PEM file of CAs to verify the server's TLS certificate with. Both
	// optional; user:password@ or a token in NATSURL also work.
	NATSCreds string
	NATSCA    string
	// LeaseTTL is how long a replica's target leases outlive its last
	// heartbeat: how soon a crashed replica's targets are taken over.
	// Defaults to 30s.
	LeaseTTL time.Duration
	// OSSRate is each target's OSS request rate (requests a second,
	// ListJobs and DescribeJob together) unless the target sets its own.
	// Defaults to 20.
	OSSRate float64
	// ReconcileInterval is how often run makes a target's sweep full (the
	// others are hot) unless the target sets its own; 0 makes every sweep
	// full. Defaults to 15 minutes.
	ReconcileInterval *time.Duration
	// StallAfter is how long an unfinished job may show the same status and
	// counters before a stalled event, unless the target sets its own; 0
	// disables. Defaults to an hour.
	StallAfter *time.Duration
	// SuspendedReminders are the waits after which a job still Suspended
	// gets a confirmation_due event; empty disables. Defaults to 24h, 312h.
	SuspendedReminders []time.Duration
	SubjectPrefix      string
	Stream             Stream
	HTTP               HTTP
	// UI is the web console under /ui/ of the HTTP listener.
	UI  UI
	Log Log
	// Retention says what the database keeps; see Retention.
	Retention Retention
	Targets   []Target
	// Notify is the file's notify section, nil without one: ossjobwatch
	// notify needs it, and run starts notifying when it is there.
	Notify *Notify

	// notifyRaw is the file's notify section before its ${VAR}s are
	// expanded, which needs Load's getenv.
	notifyRaw *rawNotify

	// remindersSet is true when the file or the environment set
	// SuspendedReminders (perhaps to none).
	remindersSet bool

	// targetsFromEnv makes errors name the variables, not targets[0].
	targetsFromEnv bool
}

// Stream is the JetStream stream the events go to.
type Stream struct {
	// Name defaults to OSSJOBS.
	Name string
	// Manage creates or updates the stream at start. With false the
	// operator owns it and ossjobwatch only checks it. Defaults to true.
	Manage bool
	// DuplicateWindow is JetStream's Nats-Msg-Id dedup window: at least 30
	// minutes, the default.
	DuplicateWindow time.Duration
	// MaxAge bounds how long messages stay; zero keeps them.
	MaxAge time.Duration
	// Replicas defaults to 1.
	Replicas int
}

// HTTP is the daemon's metrics and health server.
type HTTP struct {
	// Listen defaults to :9090; "off" disables the server.
	Listen string
}

// UI is the read-only web console, served under /ui/ by the HTTP listener
// of run and demo.
type UI struct {
	// Enabled serves the console. Defaults to true; OSSJOBWATCH_UI=off or
	// ui: {enabled: false} turns it off (and a listener that is off serves
	// nothing).
	Enabled bool
	// Auth, if set, asks every console request for HTTP basic auth with
	// this user and password (OSSJOBWATCH_UI_AUTH=user:password,
	// ui.auth). Its String method hides the password.
	Auth UIAuth
}

// UIAuth is the console's basic-auth credential; the zero value asks for
// none.
type UIAuth struct {
	User     string
	Password string
}

// IsZero reports whether no credential is set.
func (a UIAuth) IsZero() bool { return a == UIAuth{} }

// String shows the user and hides the password, so that printing a Config
// never shows it.
func (a UIAuth) String() string {
	if a.IsZero() {
		return "none"
	}
	return a.User + ":[hidden]"
}

// GoString hides the password from %#v as String does from %v.
func (a UIAuth) GoString() string { return "config.UIAuth{" + a.String() + "}" }

// parseUIAuth reads user:password. Errors never quote the value.
func parseUIAuth(v string) (UIAuth, error) {
	user, password, ok := strings.Cut(v, ":")
	if !ok || user == "" || password == "" {
		return UIAuth{}, errors.New("must be user:password with neither empty (the value is not shown)")
	}
	return UIAuth{User: user, Password: password}, nil
}

// parseSwitch reads on/off and its synonyms.
func parseSwitch(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q must be on or off", v)
}

// Log configures log/slog.
type Log struct {
	// Format is "text" or "json". Defaults to text.
	Format string
	// Level is debug, info, warn or error. Defaults to info.
	Level string
}

// Target is one OSS account and region.
type Target struct {
	Name     string
	Region   string
	Endpoint string
	Internal bool
	Schedule string
	Enabled  bool
	// OSSRate is this target's OSS request rate; defaults to Config.OSSRate.
	OSSRate float64
	// ReconcileInterval is this target's; defaults to Config's.
	ReconcileInterval time.Duration
	// reconcileSet is true when the file set the target's own.
	reconcileSet bool
	// StallAfter is this target's; defaults to Config's.
	StallAfter time.Duration
	stallSet   bool
	// Credentials says where the keys come from.
	Credentials Credentials
}

// Credentials mirrors oss.CredentialsSpec (config imports no project
// package).
type Credentials struct {
	Source          string
	Profile         string
	RoleARN         string
	RoleSessionName string
	ExternalID      string
	OIDCProviderARN string
	OIDCTokenFile   string
}

// Flags are command-line overrides; empty values override nothing.
type Flags struct {
	ConfigFile    string
	DatabaseURL   string
	NATSURL       string
	Region        string
	Endpoint      string
	Target        string
	Schedule      string
	SubjectPrefix string
	Stream        string
	HTTPListen    string
}

// Needs says which settings a verb requires.
type Needs struct {
	Database bool
	NATS     bool
	Targets  bool
	// Notify requires the file's notify section.
	Notify bool
}

// Load reads the configuration. getenv is os.Getenv outside tests.
func Load(getenv func(string) string, flags Flags, needs Needs) (Config, error) {
	cfg := Config{Stream: Stream{Manage: true}, UI: UI{Enabled: true}, Retention: defaultRetention()}
	path := cmp.Or(flags.ConfigFile, getenv("OSSJOBWATCH_CONFIG"))
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		if cfg, err = parseFile(data); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		if cfg.notifyRaw != nil {
			if cfg.Notify, err = cfg.notifyRaw.resolve(getenv); err != nil {
				return Config{}, fmt.Errorf("config file %s: %w", path, err)
			}
			cfg.notifyRaw = nil
		}
	}

	set := func(dst *string, env, flag string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flag != "" {
			*dst = flag
		}
	}
	set(&cfg.DatabaseURL, "OSSJOBWATCH_DATABASE_URL", flags.DatabaseURL)
	set(&cfg.NATSURL, "OSSJOBWATCH_NATS_URL", flags.NATSURL)
	set(&cfg.NATSCreds, "OSSJOBWATCH_NATS_CREDS", "")
	set(&cfg.NATSCA, "OSSJOBWATCH_NATS_CA", "")
	if v := getenv("OSSJOBWATCH_LEASE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("OSSJOBWATCH_LEASE_TTL: %q is not a duration such as 30s", v)
		}
		cfg.LeaseTTL = d
	}
	if v := getenv("OSSJOBWATCH_RECONCILE_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("OSSJOBWATCH_RECONCILE_INTERVAL: %q is not a duration such as 15m (0: every sweep full)", v)
		}
		cfg.ReconcileInterval = &d
	}
	if v := getenv("OSSJOBWATCH_STALL_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("OSSJOBWATCH_STALL_AFTER: %q is not a duration such as 1h (0 disables)", v)
		}
		cfg.StallAfter = &d
	}
	if v := getenv("OSSJOBWATCH_SUSPENDED_REMINDERS"); v != "" {
		r, err := ParseReminders(v)
		if err != nil {
			return Config{}, fmt.Errorf("OSSJOBWATCH_SUSPENDED_REMINDERS: %w", err)
		}
		cfg.SuspendedReminders, cfg.remindersSet = r, true
	}
	if v := getenv("OSSJOBWATCH_OSS_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0) || math.IsInf(r, 0) {
			return Config{}, fmt.Errorf("OSSJOBWATCH_OSS_RATE: %q is not a positive number of requests a second such as 20", v)
		}
		cfg.OSSRate = r
	}
	if err := retentionFromEnv(getenv, &cfg.Retention); err != nil {
		return Config{}, err
	}
	set(&cfg.SubjectPrefix, "OSSJOBWATCH_SUBJECT_PREFIX", flags.SubjectPrefix)
	set(&cfg.Stream.Name, "OSSJOBWATCH_STREAM", flags.Stream)
	set(&cfg.HTTP.Listen, "OSSJOBWATCH_HTTP_LISTEN", flags.HTTPListen)
	if v := getenv("OSSJOBWATCH_UI"); v != "" {
		on, err := parseSwitch(v)
		if err != nil {
			return Config{}, fmt.Errorf("OSSJOBWATCH_UI: %w", err)
		}
		cfg.UI.Enabled = on
	}
	if v := getenv("OSSJOBWATCH_UI_AUTH"); v != "" {
		auth, err := parseUIAuth(v)
		if err != nil {
			return Config{}, fmt.Errorf("OSSJOBWATCH_UI_AUTH: %w", err)
		}
		cfg.UI.Auth = auth
	}
	set(&cfg.Log.Format, "OSSJOBWATCH_LOG_FORMAT", "")
	set(&cfg.Log.Level, "OSSJOBWATCH_LOG_LEVEL", "")

	var single Target
	set(&single.Region, "OSSJOBWATCH_REGION", flags.Region)
	set(&single.Endpoint, "OSSJOBWATCH_ENDPOINT", flags.Endpoint)
	set(&single.Name, "OSSJOBWATCH_TARGET", flags.Target)
	set(&single.Schedule, "OSSJOBWATCH_SCHEDULE", flags.Schedule)
	singleSet := single != Target{}
	switch {
	case singleSet && len(cfg.Targets) > 0:
		return Config{}, errors.New("targets: the config file lists targets and OSSJOBWATCH_REGION/_ENDPOINT/_TARGET/_SCHEDULE (or their flags) describe another: use one or the other")
	case singleSet:
		single.Name = cmp.Or(single.Name, single.Region)
		single.Enabled = true
		cfg.Targets = []Target{single}
		cfg.targetsFromEnv = true
	}

	cfg.applyDefaults()
	if err := cfg.validate(needs); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) applyDefaults() {
	c.NATSURL = cmp.Or(c.NATSURL, DefaultNATSURL)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, 30*time.Second)
	c.OSSRate = cmp.Or(c.OSSRate, DefaultOSSRate)
	if c.ReconcileInterval == nil {
		d := DefaultReconcileInterval
		c.ReconcileInterval = &d
	}
	if c.StallAfter == nil {
		d := DefaultStallAfter
		c.StallAfter = &d
	}
	if !c.remindersSet {
		c.SuspendedReminders = slices.Clone(DefaultSuspendedReminders)
	}
	c.SubjectPrefix = cmp.Or(c.SubjectPrefix, DefaultSubjectPrefix)
	c.Stream.Name = cmp.Or(c.Stream.Name, DefaultStream)
	c.Stream.DuplicateWindow = cmp.Or(c.Stream.DuplicateWindow, DefaultDuplicateWindow)
	c.Stream.Replicas = cmp.Or(c.Stream.Replicas, 1)
	c.HTTP.Listen = cmp.Or(c.HTTP.Listen, DefaultHTTPListen)
	c.Log.Format = cmp.Or(c.Log.Format, "text")
	c.Log.Level = cmp.Or(c.Log.Level, "info")
	for i := range c.Targets {
		t := &c.Targets[i]
		t.Schedule = cmp.Or(t.Schedule, DefaultSchedule)
		t.OSSRate = cmp.Or(t.OSSRate, c.OSSRate)
		if !t.reconcileSet {
			t.ReconcileInterval = *c.ReconcileInterval
		}
		if !t.stallSet {
			t.StallAfter = *c.StallAfter
		}
		t.Credentials.Source = cmp.Or(t.Credentials.Source, "default")
	}
}

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	regionPattern = regexp.MustCompile(`^[a-z0-9-]+$`)
	streamPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

func (c *Config) validate(needs Needs) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if needs.Database && c.DatabaseURL == "" {
		add("OSSJOBWATCH_DATABASE_URL: required (a PostgreSQL URL such as postgres://user:pass@host:5432/ossjobwatch)")
	}
	if needs.NATS && !strings.Contains(c.NATSURL, "://") {
		// Not quoted: a URL without a scheme may still carry a password.
		add("OSSJOBWATCH_NATS_URL: not a URL such as nats://127.0.0.1:4222 (no scheme; the value is not shown, as it may hold a password)")
	}
	for name, path := range map[string]string{"OSSJOBWATCH_NATS_CREDS": c.NATSCreds, "OSSJOBWATCH_NATS_CA": c.NATSCA} {
		if _, err := os.Stat(path); needs.NATS && path != "" && err != nil {
			add("%s: %v", name, err)
		}
	}
	if c.LeaseTTL < 3*time.Second {
		add("OSSJOBWATCH_LEASE_TTL: %s is shorter than 3s", c.LeaseTTL)
	}
	for _, tok := range strings.Split(c.SubjectPrefix, ".") {
		if !namePattern.MatchString(tok) {
			add("OSSJOBWATCH_SUBJECT_PREFIX: %q must be dot-separated tokens of [A-Za-z0-9_-]", c.SubjectPrefix)
			break
		}
	}
	if !streamPattern.MatchString(c.Stream.Name) {
		add("OSSJOBWATCH_STREAM: %q must match [A-Za-z0-9_-]+", c.Stream.Name)
	}
	if c.Stream.DuplicateWindow < DefaultDuplicateWindow {
		add("stream.duplicate_window: %s is shorter than the 30m the delivery guarantee needs", c.Stream.DuplicateWindow)
	}
	if c.Stream.MaxAge < 0 {
		add("stream.max_age: must not be negative")
	} else if c.Stream.MaxAge > 0 && c.Stream.MaxAge < c.Stream.DuplicateWindow {
		add("stream.max_age: %s is shorter than the duplicate window (%s): events could expire before their duplicates are recognised", c.Stream.MaxAge, c.Stream.DuplicateWindow)
	}
	if c.Stream.Replicas < 1 || c.Stream.Replicas > 5 {
		add("stream.replicas: %d must be from 1 to 5", c.Stream.Replicas)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("OSSJOBWATCH_LOG_FORMAT: %q must be text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("OSSJOBWATCH_LOG_LEVEL: %q must be debug, info, warn or error", c.Log.Level)
	}
	if c.Notify != nil {
		errs = append(errs, c.Notify.validate(c.SubjectPrefix)...)
	}
	if needs.Notify && c.Notify == nil {
		add("notify: the config file (OSSJOBWATCH_CONFIG) has no notify section")
	}
	if needs.Targets && len(c.Targets) == 0 {
		add("OSSJOBWATCH_REGION: required (or list targets in the OSSJOBWATCH_CONFIG file)")
	}
	seen := map[string]bool{}
	for i, t := range c.Targets {
		field := func(name string) string {
			if c.targetsFromEnv {
				return envOf[name]
			}
			return fmt.Sprintf("targets[%d].%s", i, name)
		}
		if !namePattern.MatchString(t.Name) {
			add("%s: %q must match [A-Za-z0-9_-]+", field("name"), t.Name)
		} else if seen[t.Name] {
			add("%s: %q is used by another target", field("name"), t.Name)
		}
		seen[t.Name] = true
		if t.Region == "" {
			add("%s: required, e.g. cn-hangzhou", field("region"))
		} else if !regionPattern.MatchString(t.Region) {
			add("%s: %q is not a region id such as cn-hangzhou", field("region"), t.Region)
		}
		if t.Endpoint != "" && strings.ContainsAny(t.Endpoint, " \t") {
			add("%s: %q is not a host or URL", field("endpoint"), t.Endpoint)
		}
		if _, err := ParseSchedule(t.Schedule); err != nil {
			add("%s: %w", field("schedule"), err)
		}
		if t.StallAfter < 0 {
			add("%s: %s is negative (0 disables)", field("stall_after"), t.StallAfter)
		}
		if t.ReconcileInterval < 0 {
			add("%s: %s is negative (0: every sweep full)", field("reconcile_interval"), t.ReconcileInterval)
		}
		if !(t.OSSRate > 0) || math.IsInf(t.OSSRate, 0) {
			add("%s: %v is not a positive number of requests a second such as 20", field("oss_rate"), t.OSSRate)
		}
		if err := t.Credentials.validate(); err != nil {
			add("%s.%w", fmt.Sprintf("targets[%d].credentials", i), err)
		}
	}
	return errors.Join(errs...)
}

// envOf names the variable behind each field of the single target.
var envOf = map[string]string{
	"name":               "OSSJOBWATCH_TARGET",
	"region":             "OSSJOBWATCH_REGION",
	"endpoint":           "OSSJOBWATCH_ENDPOINT",
	"schedule":           "OSSJOBWATCH_SCHEDULE",
	"oss_rate":           "OSSJOBWATCH_OSS_RATE",
	"reconcile_interval": "OSSJOBWATCH_RECONCILE_INTERVAL",
	"stall_after":        "OSSJOBWATCH_STALL_AFTER",
}

func (c Credentials) validate() error {
	switch c.Source {
	case "default", "env":
	case "profile":
		if c.Profile == "" {
			return errors.New("profile: required with source profile")
		}
	case "ram_role_arn":
		if !strings.HasPrefix(c.RoleARN, "acs:ram::") {
			return fmt.Errorf("role_arn: %q is not a RAM role ARN such as acs:ram::123456789:role/ossjobwatch", c.RoleARN)
		}
	case "oidc":
		if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "acs:ram::") {
			return fmt.Errorf("role_arn: %q is not a RAM role ARN", c.RoleARN)
		}
	default:
		return fmt.Errorf("source: %q must be default, env, profile, ram_role_arn or oidc", c.Source)
	}
	return nil
}

// scheduleParser accepts five fields, an optional leading seconds field,
// and descriptors such as @every 1m and @hourly.
var scheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a cron spec. robfig/cron panics on some inputs
// ("CRON_TZ=UTC" alone); that becomes an error here.
func ParseSchedule(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid cron spec %q", spec)
		}
	}()
	s, err = scheduleParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron spec %q: %w", spec, err)
	}
	// robfig/cron gives up looking five years ahead: a spec such as
	// "0 0 30 2 *" (30 February) parses but never fires.
	if s.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("invalid cron spec %q: it never fires", spec)
	}
	return s, nil
}

// fileConfig is the YAML file's shape. Unknown keys are errors.
type fileConfig struct {
	DatabaseURL   string    `yaml:"database_url"`
	NATSURL       string    `yaml:"nats_url"`
	NATSCreds     string    `yaml:"nats_creds"`
	NATSCA        string    `yaml:"nats_ca"`
	LeaseTTL      duration  `yaml:"lease_ttl"`
	OSSRate       float64   `yaml:"oss_rate"`
	Reconcile     *duration `yaml:"reconcile_interval"`
	StallAfter    *duration `yaml:"stall_after"`
	Reminders     *string   `yaml:"suspended_reminders"`
	SubjectPrefix string    `yaml:"subject_prefix"`
	Stream        struct {
		Name            string   `yaml:"name"`
		Manage          *bool    `yaml:"manage"`
		DuplicateWindow duration `yaml:"duplicate_window"`
		MaxAge          duration `yaml:"max_age"`
		Replicas        int      `yaml:"replicas"`
	} `yaml:"stream"`
	HTTP struct {
		Listen string `yaml:"listen"`
	} `yaml:"http"`
	UI struct {
		Enabled *bool   `yaml:"enabled"`
		Auth    *string `yaml:"auth"`
	} `yaml:"ui"`
	Log struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
	Retention fileRetention `yaml:"retention"`
	Notify    *fileNotify   `yaml:"notify"`
	Targets   []struct {
		Name        string    `yaml:"name"`
		Region      string    `yaml:"region"`
		Endpoint    string    `yaml:"endpoint"`
		Internal    bool      `yaml:"internal"`
		Schedule    string    `yaml:"schedule"`
		OSSRate     float64   `yaml:"oss_rate"`
		Reconcile   *duration `yaml:"reconcile_interval"`
		StallAfter  *duration `yaml:"stall_after"`
		Enabled     *bool     `yaml:"enabled"`
		Credentials struct {
			Source          string `yaml:"source"`
			Profile         string `yaml:"profile"`
			RoleARN         string `yaml:"role_arn"`
			RoleSessionName string `yaml:"role_session_name"`
			ExternalID      string `yaml:"external_id"`
			OIDCProviderARN string `yaml:"oidc_provider_arn"`
			OIDCTokenFile   string `yaml:"oidc_token_file"`
		} `yaml:"credentials"`
	} `yaml:"targets"`
}

// duration reads "30m", "1h30m" or a number of seconds.
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if secs, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		*d = duration(time.Duration(secs) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30m or 720h", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// value returns the duration set, or 0 when the key was absent.
func (d *duration) value() time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

// ptr returns the duration set, or nil when the key was absent.
func (d *duration) ptr() *time.Duration {
	if d == nil {
		return nil
	}
	v := time.Duration(*d)
	return &v
}

func parseFile(data []byte) (Config, error) {
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{Stream: Stream{Manage: true}, UI: UI{Enabled: true}, Retention: defaultRetention()}, nil
		}
		return Config{}, err
	}
	retention, err := f.Retention.resolve()
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		DatabaseURL:       f.DatabaseURL,
		NATSURL:           f.NATSURL,
		NATSCreds:         f.NATSCreds,
		NATSCA:            f.NATSCA,
		LeaseTTL:          time.Duration(f.LeaseTTL),
		OSSRate:           f.OSSRate,
		ReconcileInterval: f.Reconcile.ptr(),
		StallAfter:        f.StallAfter.ptr(),
		SubjectPrefix:     f.SubjectPrefix,
		Stream: Stream{
			Name: f.Stream.Name, Manage: f.Stream.Manage == nil || *f.Stream.Manage,
			DuplicateWindow: time.Duration(f.Stream.DuplicateWindow), MaxAge: time.Duration(f.Stream.MaxAge),
			Replicas: f.Stream.Replicas,
		},
		HTTP:      HTTP{Listen: f.HTTP.Listen},
		Log:       Log{Format: f.Log.Format, Level: f.Log.Level},
		Retention: retention,
	}
	cfg.UI.Enabled = f.UI.Enabled == nil || *f.UI.Enabled
	if f.UI.Auth != nil {
		if cfg.UI.Auth, err = parseUIAuth(*f.UI.Auth); err != nil {
			return Config{}, fmt.Errorf("ui.auth: %w", err)
		}
	}
	if f.Notify != nil {
		cfg.notifyRaw = &rawNotify{file: *f.Notify}
	}
	if f.Reminders != nil {
		r, err := ParseReminders(*f.Reminders)
		if err != nil {
			return Config{}, fmt.Errorf("suspended_reminders: %w", err)
		}
		cfg.SuspendedReminders, cfg.remindersSet = r, true
	}
	for _, t := range f.Targets {
		c := t.Credentials
		cfg.Targets = append(cfg.Targets, Target{
			Name: cmp.Or(t.Name, t.Region), Region: t.Region, Endpoint: t.Endpoint, Internal: t.Internal,
			Schedule: t.Schedule, OSSRate: t.OSSRate, ReconcileInterval: t.Reconcile.value(), reconcileSet: t.Reconcile != nil,
			StallAfter: t.StallAfter.value(), stallSet: t.StallAfter != nil, Enabled: t.Enabled == nil || *t.Enabled,
			Credentials: Credentials{
				Source: c.Source, Profile: c.Profile, RoleARN: c.RoleARN, RoleSessionName: c.RoleSessionName,
				ExternalID: c.ExternalID, OIDCProviderARN: c.OIDCProviderARN, OIDCTokenFile: c.OIDCTokenFile,
			},
		})
	}
	return cfg, nil
}

// EnabledTargets returns the targets to sweep.
func (c Config) EnabledTargets() []Target {
	var out []Target
	for _, t := range c.Targets {
		if t.Enabled {
			out = append(out, t)
		}
	}
	return out
}

// DefaultSuspendedReminders are the waits after which a job still Suspended
// gets a confirmation_due event: a day in, and a day before OSS fails it
// (14 days after it was suspended).
var DefaultSuspendedReminders = []time.Duration{24 * time.Hour, 312 * time.Hour}

// ParseReminders reads a comma-separated list of waits such as "24h,312h";
// "none" or an empty list disables the reminders (an empty environment
// variable reads as unset, so "none" is how to disable them there). It
// returns them sorted.
func ParseReminders(s string) ([]time.Duration, error) {
	var out []time.Duration
	if strings.TrimSpace(s) == "none" {
		return nil, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration such as 24h", part)
		}
		if d >= 14*24*time.Hour {
			return nil, fmt.Errorf("%s is not before OSS fails the job (336h after it was suspended)", part)
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
