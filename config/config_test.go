package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var all = config.Needs{Database: true, NATS: true, Targets: true}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil), config.Flags{ConfigFile: "testdata/two-targets.yaml"}, all)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.SubjectPrefix != "acme.ossjobs" || cfg.Stream.Name != "ACME_OSSJOBS" || cfg.Stream.Manage ||
		cfg.Stream.DuplicateWindow != time.Hour || cfg.Stream.MaxAge != 720*time.Hour || cfg.Stream.Replicas != 3 ||
		cfg.HTTP.Listen != "127.0.0.1:9191" || cfg.Log.Format != "json" || cfg.LeaseTTL != 45*time.Second {
		t.Errorf("globals = %+v", cfg)
	}
	if len(cfg.Targets) != 2 {
		t.Fatalf("targets = %+v", cfg.Targets)
	}
	hz, sh := cfg.Targets[0], cfg.Targets[1]
	if hz.Name != "prod-hz" || !hz.Internal || hz.Schedule != "*/30 * * * * *" || !hz.Enabled || hz.Credentials.Source != "oidc" {
		t.Errorf("first target = %+v", hz)
	}
	if sh.Enabled || sh.Schedule != config.DefaultSchedule || sh.Credentials.RoleARN != "acs:ram::1234567890:role/ossjobwatch-backup" {
		t.Errorf("second target = %+v", sh)
	}
	if got := cfg.EnabledTargets(); len(got) != 1 || got[0].Name != "prod-hz" {
		t.Errorf("EnabledTargets = %+v", got)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{
		"OSSJOBWATCH_CONFIG":         "testdata/two-targets.yaml",
		"OSSJOBWATCH_NATS_URL":       "nats://from-env:4222",
		"OSSJOBWATCH_SUBJECT_PREFIX": "env",
	})
	cfg, err := config.Load(e, config.Flags{SubjectPrefix: "flag"}, all)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATSURL != "nats://from-env:4222" || cfg.SubjectPrefix != "flag" || cfg.DatabaseURL != "postgres://ossjobwatch@db:5432/ossjobwatch" {
		t.Errorf("file < env < flags broken: %+v", cfg)
	}
}

func TestSingleTargetFromEnvironment(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{
		"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z",
		"OSSJOBWATCH_REGION":       "cn-hangzhou",
		"OSSJOBWATCH_ENDPOINT":     "http://127.0.0.1:9000",
	}), config.Flags{}, all)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Target{Name: "cn-hangzhou", Region: "cn-hangzhou", Endpoint: "http://127.0.0.1:9000",
		Schedule: "@every 1m", Enabled: true, OSSRate: 20, ReconcileInterval: 15 * time.Minute, StallAfter: time.Hour, Credentials: config.Credentials{Source: "default"}}
	if len(cfg.Targets) != 1 || cfg.Targets[0] != want {
		t.Errorf("targets = %+v, want [%+v]", cfg.Targets, want)
	}
	if cfg.NATSURL != config.DefaultNATSURL || cfg.Stream.Name != "OSSJOBS" || cfg.SubjectPrefix != "ossjobs" || !cfg.Stream.Manage {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestErrorsNameTheSettingAndTheRule(t *testing.T) {
	t.Parallel()
	base := map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name  string
		env   map[string]string
		file  string
		needs config.Needs
		want  []string
	}{
		{"no database", map[string]string{"OSSJOBWATCH_REGION": "cn-hangzhou"}, "", all, []string{"OSSJOBWATCH_DATABASE_URL: required"}},
		{"no target", base, "", all, []string{"OSSJOBWATCH_REGION: required"}},
		{"bad schedule env", with("OSSJOBWATCH_REGION", "cn-hangzhou", "OSSJOBWATCH_SCHEDULE", "every minute"), "", all,
			[]string{`OSSJOBWATCH_SCHEDULE: invalid cron spec "every minute"`}},
		{"bad target name", with("OSSJOBWATCH_REGION", "cn-hangzhou", "OSSJOBWATCH_TARGET", "prod hz"), "", all,
			[]string{`OSSJOBWATCH_TARGET: "prod hz" must match [A-Za-z0-9_-]+`}},
		{"bad region", with("OSSJOBWATCH_REGION", "CN_Hangzhou"), "", all, []string{`OSSJOBWATCH_REGION: "CN_Hangzhou" is not a region id`}},
		{"bad prefix", with("OSSJOBWATCH_REGION", "cn-hangzhou", "OSSJOBWATCH_SUBJECT_PREFIX", "a.*"), "", all, []string{"OSSJOBWATCH_SUBJECT_PREFIX"}},
		{"bad log format", with("OSSJOBWATCH_REGION", "cn-hangzhou", "OSSJOBWATCH_LOG_FORMAT", "xml"), "", all, []string{"OSSJOBWATCH_LOG_FORMAT"}},
		{"file and env targets", with("OSSJOBWATCH_REGION", "cn-hangzhou"), "two-targets.yaml", all, []string{"use one or the other"}},
		{"unknown key", base, "bad-unknown-key.yaml", all, []string{"bad-unknown-key.yaml", "line 4", "shedule"}},
		{"bad schedule file", base, "bad-schedule.yaml", all, []string{`targets[0].schedule: invalid cron spec "every minute"`}},
		{"CRON_TZ alone", base, "bad-cron-tz.yaml", all, []string{`targets[0].schedule: invalid cron spec "CRON_TZ=UTC"`}},
		{"duplicate names", base, "bad-duplicate-names.yaml", all, []string{`targets[1].name: "prod" is used by another target`}},
		{"bad duration", base, "bad-duration.yaml", all, []string{`"half an hour" is not a duration`}},
		{"window too short", base, "bad-window.yaml", all, []string{"stream.duplicate_window: 2m0s is shorter than the 30m"}},
		{"max age under the window", base, "bad-max-age.yaml", all, []string{"stream.max_age: 10m0s is shorter than the duplicate window"}},
		{"bad role", base, "bad-credentials.yaml", all, []string{"targets[0].credentials.role_arn", "not a RAM role ARN"}},
		{"bad lease TTL", with("OSSJOBWATCH_REGION", "cn-hangzhou", "OSSJOBWATCH_LEASE_TTL", "soon"), "", all, []string{`OSSJOBWATCH_LEASE_TTL: "soon" is not a duration`}},
		{"short lease TTL", with("OSSJOBWATCH_REGION", "cn-hangzhou", "OSSJOBWATCH_LEASE_TTL", "1s"), "", all, []string{"OSSJOBWATCH_LEASE_TTL: 1s is shorter than 3s"}},
		{"missing NATS creds", with("OSSJOBWATCH_REGION", "cn-hangzhou", "OSSJOBWATCH_NATS_CREDS", "/no/such.creds"), "", all, []string{"OSSJOBWATCH_NATS_CREDS", "/no/such.creds"}},
		{"missing file", base, "no-such-file.yaml", all, []string{"config file", "no-such-file.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			flags := config.Flags{}
			if tt.file != "" {
				flags.ConfigFile = filepath.Join("testdata", tt.file)
			}
			_, err := config.Load(env(tt.env), flags, tt.needs)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNeedsOnlyWhatTheVerbUses(t *testing.T) {
	t.Parallel()
	// migrate and history need a database, not a target.
	if _, err := config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z"}), config.Flags{}, config.Needs{Database: true}); err != nil {
		t.Errorf("database-only verb: %v", err)
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"@every 1m", "*/30 * * * * *", "0 */5 * * *", "@hourly", "CRON_TZ=Asia/Shanghai 0 9 * * *"} {
		if _, err := config.ParseSchedule(spec); err != nil {
			t.Errorf("ParseSchedule(%q): %v", spec, err)
		}
	}
	for _, spec := range []string{"", "CRON_TZ=UTC", "@every", "* * *", "61 * * * *", "TZ=", "0 0 30 2 *"} {
		if _, err := config.ParseSchedule(spec); err == nil {
			t.Errorf("ParseSchedule(%q) succeeded", spec)
		}
	}
}

func TestOSSRate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	yaml := "oss_rate: 8\ntargets:\n  - {name: a, region: cn-hangzhou}\n  - {name: b, region: cn-beijing, oss_rate: 2.5}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_CONFIG": path}), config.Flags{}, all)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Targets[0].OSSRate != 8 || cfg.Targets[1].OSSRate != 2.5 {
		t.Errorf("rates %v and %v, want 8 (the file's) and 2.5 (the target's)", cfg.Targets[0].OSSRate, cfg.Targets[1].OSSRate)
	}
	cfg, err = config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_CONFIG": path, "OSSJOBWATCH_OSS_RATE": "40"}), config.Flags{}, all)
	if err != nil || cfg.Targets[0].OSSRate != 40 || cfg.Targets[1].OSSRate != 2.5 {
		t.Errorf("with OSSJOBWATCH_OSS_RATE=40: %v, %+v", err, cfg.Targets)
	}
	for _, bad := range []string{"0", "-1", "fast", "NaN", "Inf"} {
		_, err := config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_REGION": "cn-hangzhou", "OSSJOBWATCH_OSS_RATE": bad}), config.Flags{}, all)
		if err == nil || !strings.Contains(err.Error(), "OSSJOBWATCH_OSS_RATE") {
			t.Errorf("OSSJOBWATCH_OSS_RATE=%s: %v, want an error naming the variable", bad, err)
		}
	}
}

func TestReconcileInterval(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "reconcile_interval: 30m\ntargets:\n  - {name: a, region: cn-hangzhou}\n  - {name: b, region: cn-beijing, reconcile_interval: 0}\n  - {name: c, region: cn-beijing, reconcile_interval: 2h}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_CONFIG": path}
	cfg, err := config.Load(env(base), config.Flags{}, all)
	if err != nil {
		t.Fatal(err)
	}
	got := []time.Duration{cfg.Targets[0].ReconcileInterval, cfg.Targets[1].ReconcileInterval, cfg.Targets[2].ReconcileInterval}
	if want := []time.Duration{30 * time.Minute, 0, 2 * time.Hour}; !slices.Equal(got, want) {
		t.Errorf("reconcile intervals %v, want %v", got, want)
	}
	base["OSSJOBWATCH_RECONCILE_INTERVAL"] = "5m"
	if cfg, err = config.Load(env(base), config.Flags{}, all); err != nil || cfg.Targets[0].ReconcileInterval != 5*time.Minute || cfg.Targets[1].ReconcileInterval != 0 {
		t.Errorf("with OSSJOBWATCH_RECONCILE_INTERVAL=5m: %v, %+v", err, cfg.Targets)
	}
	for _, bad := range []string{"-1m", "often"} {
		_, err := config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_REGION": "cn-hangzhou", "OSSJOBWATCH_RECONCILE_INTERVAL": bad}), config.Flags{}, all)
		if err == nil || !strings.Contains(err.Error(), "OSSJOBWATCH_RECONCILE_INTERVAL") {
			t.Errorf("OSSJOBWATCH_RECONCILE_INTERVAL=%s: %v, want an error naming it", bad, err)
		}
	}
	if cfg, _ := config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_REGION": "cn-hangzhou"}), config.Flags{}, all); cfg.Targets[0].ReconcileInterval != config.DefaultReconcileInterval {
		t.Errorf("default reconcile interval %v", cfg.Targets[0].ReconcileInterval)
	}
}

func TestStallAndReminders(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "stall_after: 30m\nsuspended_reminders: 48h, 12h\ntargets:\n  - {name: a, region: cn-hangzhou}\n  - {name: b, region: cn-beijing, stall_after: 0}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_CONFIG": path}
	cfg, err := config.Load(env(base), config.Flags{}, all)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Targets[0].StallAfter != 30*time.Minute || cfg.Targets[1].StallAfter != 0 {
		t.Errorf("stall_after %v and %v, want 30m (the file's) and 0 (the target's)", cfg.Targets[0].StallAfter, cfg.Targets[1].StallAfter)
	}
	if want := []time.Duration{12 * time.Hour, 48 * time.Hour}; !slices.Equal(cfg.SuspendedReminders, want) {
		t.Errorf("reminders %v, want %v (sorted)", cfg.SuspendedReminders, want)
	}
	base["OSSJOBWATCH_SUSPENDED_REMINDERS"] = "none"
	base["OSSJOBWATCH_STALL_AFTER"] = "5s"
	if cfg, err = config.Load(env(base), config.Flags{}, all); err != nil || len(cfg.SuspendedReminders) != 0 || cfg.Targets[0].StallAfter != 5*time.Second {
		t.Errorf("with none and 5s: %v, %v, %+v", err, cfg.SuspendedReminders, cfg.Targets[0])
	}
	defaults, err := config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_REGION": "cn-hangzhou"}), config.Flags{}, all)
	if err != nil || !slices.Equal(defaults.SuspendedReminders, config.DefaultSuspendedReminders) || defaults.Targets[0].StallAfter != time.Hour {
		t.Errorf("defaults: %v, %v, %v", err, defaults.SuspendedReminders, defaults.Targets[0].StallAfter)
	}
	for env1, bad := range map[string]string{"OSSJOBWATCH_STALL_AFTER": "-1h", "OSSJOBWATCH_SUSPENDED_REMINDERS": "24h,400h"} {
		_, err := config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_REGION": "cn-hangzhou", env1: bad}), config.Flags{}, all)
		if err == nil || !strings.Contains(err.Error(), env1) {
			t.Errorf("%s=%s: %v, want an error naming it", env1, bad, err)
		}
	}
}
