package publisher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/event"
)

// MinDuplicates is the shortest duplicate window the contract allows: an
// event published again within it (a relay retrying, a replay) is dropped by
// JetStream, not stored twice.
const MinDuplicates = 30 * time.Minute

// StreamConfig describes the stream the events go to.
type StreamConfig struct {
	// Name is the stream's name. Defaults to "OSSJOBS".
	Name string

	// SubjectPrefix is the events' subject prefix; the stream must capture
	// "<prefix>.>". Defaults to "ossjobs".
	SubjectPrefix string

	// Duplicates is the duplicate window of a managed stream. Defaults to 30
	// minutes; less is refused.
	Duplicates time.Duration

	// MaxAge is how long a managed stream keeps events; 0, the default,
	// keeps them until deleted. If set, it must not be shorter than
	// Duplicates.
	MaxAge time.Duration

	// Replicas is a managed stream's number of replicas in a cluster.
	// Defaults to 1.
	Replicas int

	// Managed: EnsureStream creates the stream, or updates it to this
	// configuration. Otherwise an operator manages it, and EnsureStream only
	// checks that it exists and captures the subjects.
	Managed bool
}

// StreamStatus is what EnsureStream found or made.
type StreamStatus struct {
	Info *jetstream.StreamInfo
	// Warnings are problems that do not stop publishing but weaken the
	// contract, e.g. an operator's stream with a short duplicate window.
	Warnings []string
}

func (c StreamConfig) withDefaults() StreamConfig {
	c.Name = cmp.Or(c.Name, DefaultStream)
	c.SubjectPrefix = cmp.Or(c.SubjectPrefix, event.DefaultSubjectPrefix)
	c.Duplicates = cmp.Or(c.Duplicates, MinDuplicates)
	c.Replicas = cmp.Or(c.Replicas, 1)
	return c
}

func (c StreamConfig) validate() error {
	var errs []error
	if err := validStreamName(c.Name); err != nil {
		errs = append(errs, fmt.Errorf("StreamConfig.Name: %w", err))
	}
	if !event.ValidPrefix(c.SubjectPrefix) {
		errs = append(errs, fmt.Errorf("StreamConfig.SubjectPrefix: %q must be dot-separated tokens of [A-Za-z0-9_-]", c.SubjectPrefix))
	}
	if c.Duplicates < MinDuplicates {
		errs = append(errs, fmt.Errorf("StreamConfig.Duplicates: %s is shorter than the %s the contract promises", c.Duplicates, MinDuplicates))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("StreamConfig.MaxAge: must not be negative, got %s", c.MaxAge))
	}
	if c.MaxAge > 0 && c.MaxAge < c.Duplicates {
		errs = append(errs, fmt.Errorf("StreamConfig.MaxAge: %s is shorter than Duplicates (%s)", c.MaxAge, c.Duplicates))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("StreamConfig.Replicas: must be 1 to 5, got %d", c.Replicas))
	}
	return errors.Join(errs...)
}

// validStreamName applies JetStream's rules for a stream name.
func validStreamName(name string) error {
	if name == "" {
		return errors.New("required")
	}
	if strings.ContainsAny(name, ".*> \t\r\n/\\") {
		return fmt.Errorf("%q must not contain '.', '*', '>', '/', '\\' or whitespace", name)
	}
	return nil
}

// EnsureStream makes sure the stream of cfg exists and captures
// "<prefix>.>".
//
// A managed stream is created or updated (idempotently) with file storage,
// cfg's duplicate window, age limit and replicas. Otherwise the stream must
// exist, accept publishes and capture the subjects; it is used as it is, and
// a duplicate window under 30 minutes is reported in Warnings.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (StreamStatus, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return StreamStatus{}, fmt.Errorf("ensure stream: %w", err)
	}
	wanted := cfg.SubjectPrefix + ".>"
	if cfg.Managed {
		s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Name,
			Description: "ossjobwatch events: OSS Batch Operations job transitions",
			Subjects:    []string{wanted},
			Storage:     jetstream.FileStorage,
			Duplicates:  cfg.Duplicates,
			MaxAge:      cfg.MaxAge,
			Replicas:    cfg.Replicas,
		})
		if err != nil {
			return StreamStatus{}, fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
		}
		return StreamStatus{Info: s.CachedInfo()}, nil
	}

	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return StreamStatus{}, fmt.Errorf("stream %s does not exist: create it capturing %q with a duplicate window of at least %s, or let ossjobwatch manage it", cfg.Name, wanted, MinDuplicates)
	}
	if err != nil {
		return StreamStatus{}, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	info := s.CachedInfo()
	sc := info.Config
	switch {
	case sc.Mirror != nil:
		return StreamStatus{}, fmt.Errorf("stream %s is a mirror of %s: it does not accept publishes", cfg.Name, sc.Mirror.Name)
	case sc.Sealed:
		return StreamStatus{}, fmt.Errorf("stream %s is sealed: it does not accept publishes", cfg.Name)
	case sc.NoAck:
		return StreamStatus{}, fmt.Errorf("stream %s does not acknowledge publishes (no_ack): the relay needs acknowledgements", cfg.Name)
	}
	if !coveredBy(wanted, sc.Subjects) {
		return StreamStatus{}, fmt.Errorf("stream %s captures %q, not %q: add %q to its subjects", cfg.Name, sc.Subjects, wanted, wanted)
	}
	st := StreamStatus{Info: info}
	if sc.Duplicates < MinDuplicates {
		st.Warnings = append(st.Warnings, fmt.Sprintf("stream %s has a duplicate window of %s, under the %s the contract promises: an event published again after that is stored twice", cfg.Name, sc.Duplicates, MinDuplicates))
	}
	return st, nil
}

func coveredBy(subject string, filters []string) bool {
	for _, f := range filters {
		if covers(f, subject) {
			return true
		}
	}
	return false
}

// covers reports whether every subject that pattern matches is matched by
// filter. Both may hold wildcards: "*" matches one token, ">" one or more
// trailing tokens. A union of filters covering a pattern together (e.g.
// "a.*" and "a.*.>" for "a.>") is not recognised.
func covers(filter, pattern string) bool {
	f, p := strings.Split(filter, "."), strings.Split(pattern, ".")
	for i, ft := range f {
		if ft == ">" {
			// One or more tokens: pattern must have at least one left.
			return i < len(p)
		}
		if i >= len(p) || p[i] == ">" {
			// pattern ends here, or goes on for any number of tokens where
			// filter has a fixed number.
			return false
		}
		if ft != "*" && ft != p[i] {
			// A literal covers only itself, not another literal or "*".
			return false
		}
	}
	return len(f) == len(p)
}
