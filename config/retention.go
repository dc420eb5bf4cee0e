package config

import (
	"fmt"
	"time"
)

// Retention defaults: progress events go after 30 days, sweep records
// after a week, every other event is kept.
const (
	DefaultRetentionProgress = 720 * time.Hour
	DefaultRetentionEvents   = 0
	DefaultRetentionSweeps   = 168 * time.Hour

	// minRetentionSweeps keeps a running sweep's record: a sweep updates
	// its row when its listing ends and when it finishes.
	minRetentionSweeps = time.Hour
)

// Retention says how long the database keeps what may be deleted. Zero
// keeps it for ever. Only published events are ever deleted, and never a
// jobs row.
type Retention struct {
	// Progress: published progress events observed longer ago than this
	// are deleted. Defaults to 720h (OSSJOBWATCH_RETENTION_PROGRESS,
	// retention.progress).
	Progress time.Duration
	// Events: the same for every other published event. Defaults to 0,
	// kept (OSSJOBWATCH_RETENTION_EVENTS, retention.events).
	Events time.Duration
	// Sweeps: sweep records started longer ago than this are deleted, all
	// but each target's last applied one. Defaults to 168h
	// (OSSJOBWATCH_RETENTION_SWEEPS, retention.sweeps); at least 1h when
	// not 0.
	Sweeps time.Duration
}

func defaultRetention() Retention {
	return Retention{Progress: DefaultRetentionProgress, Events: DefaultRetentionEvents, Sweeps: DefaultRetentionSweeps}
}

// retentionSetting is one retention setting: its names, its field and
// its least value other than 0.
type retentionSetting struct {
	env, yaml string
	field     func(*Retention) *time.Duration
	min       time.Duration
}

var retentionSettings = []retentionSetting{
	{"OSSJOBWATCH_RETENTION_PROGRESS", "retention.progress", func(r *Retention) *time.Duration { return &r.Progress }, 0},
	{"OSSJOBWATCH_RETENTION_EVENTS", "retention.events", func(r *Retention) *time.Duration { return &r.Events }, 0},
	{"OSSJOBWATCH_RETENTION_SWEEPS", "retention.sweeps", func(r *Retention) *time.Duration { return &r.Sweeps }, minRetentionSweeps},
}

// check names the setting (as name) and the rule a value breaks.
func (s retentionSetting) check(name string, d time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%s: %s must not be negative (0 keeps everything)", name, d)
	case d > 0 && d < s.min:
		return fmt.Errorf("%s: %s is shorter than %s: a running sweep's record could be deleted (0 keeps every record)", name, d, s.min)
	}
	return nil
}

// fileRetention is the file's retention section; a key left out keeps the
// default.
type fileRetention struct {
	Progress *duration `yaml:"progress"`
	Events   *duration `yaml:"events"`
	Sweeps   *duration `yaml:"sweeps"`
}

func (f fileRetention) resolve() (Retention, error) {
	r := defaultRetention()
	for i, v := range []*duration{f.Progress, f.Events, f.Sweeps} {
		if v == nil {
			continue
		}
		s := retentionSettings[i]
		if err := s.check(s.yaml, time.Duration(*v)); err != nil {
			return Retention{}, err
		}
		*s.field(&r) = time.Duration(*v)
	}
	return r, nil
}

// retentionFromEnv overrides r with the variables that are set.
func retentionFromEnv(getenv func(string) string, r *Retention) error {
	for _, s := range retentionSettings {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration such as 720h (0 keeps everything)", s.env, v)
		}
		if err := s.check(s.env, d); err != nil {
			return err
		}
		*s.field(r) = d
	}
	return nil
}
