package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
)

func TestRetention(t *testing.T) {
	t.Parallel()
	const db = "postgres://x@y/z"
	tests := []struct {
		name string
		env  map[string]string
		file string
		want config.Retention
	}{
		{"defaults", map[string]string{"OSSJOBWATCH_REGION": "cn-hangzhou"}, "",
			config.Retention{Progress: 720 * time.Hour, Events: 0, Sweeps: 168 * time.Hour}},
		{"environment", map[string]string{"OSSJOBWATCH_REGION": "cn-hangzhou", "OSSJOBWATCH_RETENTION_PROGRESS": "24h",
			"OSSJOBWATCH_RETENTION_EVENTS": "2160h", "OSSJOBWATCH_RETENTION_SWEEPS": "0"}, "",
			config.Retention{Progress: 24 * time.Hour, Events: 2160 * time.Hour, Sweeps: 0}},
		{"file", nil, "retention.yaml",
			config.Retention{Progress: 168 * time.Hour, Events: 8760 * time.Hour, Sweeps: 0}},
		{"environment over file", map[string]string{"OSSJOBWATCH_RETENTION_PROGRESS": "0"}, "retention.yaml",
			config.Retention{Progress: 0, Events: 8760 * time.Hour, Sweeps: 0}},
		{"file without the section", nil, "two-targets.yaml",
			config.Retention{Progress: 720 * time.Hour, Events: 0, Sweeps: 168 * time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := map[string]string{"OSSJOBWATCH_DATABASE_URL": db}
			for k, v := range tt.env {
				e[k] = v
			}
			flags := config.Flags{}
			if tt.file != "" {
				flags.ConfigFile = filepath.Join("testdata", tt.file)
			}
			cfg, err := config.Load(env(e), flags, config.Needs{Database: true})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Retention != tt.want {
				t.Errorf("Retention = %+v, want %+v", cfg.Retention, tt.want)
			}
		})
	}
}

func TestRetentionErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		file string
		want []string
	}{
		{"not a duration", map[string]string{"OSSJOBWATCH_RETENTION_PROGRESS": "30 days"}, "",
			[]string{`OSSJOBWATCH_RETENTION_PROGRESS: "30 days" is not a duration`}},
		{"negative", map[string]string{"OSSJOBWATCH_RETENTION_EVENTS": "-1h"}, "",
			[]string{"OSSJOBWATCH_RETENTION_EVENTS: -1h0m0s must not be negative"}},
		{"sweeps too short", map[string]string{"OSSJOBWATCH_RETENTION_SWEEPS": "5m"}, "",
			[]string{"OSSJOBWATCH_RETENTION_SWEEPS: 5m0s is shorter than 1h0m0s"}},
		{"negative in the file", nil, "bad-retention.yaml", []string{"bad-retention.yaml", "retention.progress: -1h0m0s must not be negative"}},
		{"sweeps too short in the file", nil, "bad-retention-sweeps.yaml", []string{"retention.sweeps: 10m0s is shorter than 1h0m0s"}},
		{"unknown key", nil, "bad-retention-key.yaml", []string{"bad-retention-key.yaml", "line 2", "progres"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z"}
			for k, v := range tt.env {
				e[k] = v
			}
			flags := config.Flags{}
			if tt.file != "" {
				flags.ConfigFile = filepath.Join("testdata", tt.file)
			}
			_, err := config.Load(env(e), flags, config.Needs{Database: true})
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
