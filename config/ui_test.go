package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/config"
)

func TestUI(t *testing.T) {
	t.Parallel()
	base := map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_REGION": "cn-hangzhou"}
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
	for _, tc := range []struct {
		name    string
		env     map[string]string
		file    string
		enabled bool
		auth    config.UIAuth
	}{
		{name: "default: on, no auth", env: base, enabled: true},
		{name: "env off", env: with("OSSJOBWATCH_UI", "off"), enabled: false},
		{name: "env on", env: with("OSSJOBWATCH_UI", "on"), enabled: true},
		{name: "env auth", env: with("OSSJOBWATCH_UI_AUTH", "admin:pa:ss word"), enabled: true, auth: config.UIAuth{User: "admin", Password: "pa:ss word"}},
		{name: "file", file: "testdata/ui.yaml", env: map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z"},
			enabled: false, auth: config.UIAuth{User: "ops", Password: "s3cret:with:colons"}},
		{name: "env over file", file: "testdata/ui.yaml", env: map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_UI": "on", "OSSJOBWATCH_UI_AUTH": "a:b"},
			enabled: true, auth: config.UIAuth{User: "a", Password: "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(env(tc.env), config.Flags{ConfigFile: tc.file}, all)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.UI.Enabled != tc.enabled || cfg.UI.Auth != tc.auth {
				t.Errorf("UI = %v, want enabled %v, auth %v", cfg.UI, tc.enabled, tc.auth)
			}
		})
	}
}

func TestUIErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		file string
		want string
	}{
		{env: map[string]string{"OSSJOBWATCH_UI": "maybe"}, want: `OSSJOBWATCH_UI: "maybe" must be on or off`},
		{env: map[string]string{"OSSJOBWATCH_UI_AUTH": "hunter2"}, want: "OSSJOBWATCH_UI_AUTH: must be user:password"},
		{env: map[string]string{"OSSJOBWATCH_UI_AUTH": ":hunter2"}, want: "OSSJOBWATCH_UI_AUTH: must be user:password"},
		{env: map[string]string{"OSSJOBWATCH_UI_AUTH": "hunter2:"}, want: "OSSJOBWATCH_UI_AUTH: must be user:password"},
		{file: "testdata/bad-ui-auth.yaml", want: "ui.auth: must be user:password"},
		{file: "testdata/bad-ui-key.yaml", want: "field enable not found"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			e := map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z"}
			if tc.file == "" {
				e["OSSJOBWATCH_REGION"] = "cn-hangzhou"
			}
			for k, v := range tc.env {
				e[k] = v
			}
			_, err := config.Load(env(e), config.Flags{ConfigFile: tc.file}, all)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestUIAuthIsNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z", "OSSJOBWATCH_REGION": "cn-hangzhou",
		"OSSJOBWATCH_UI_AUTH": "admin:hunter2"}), config.Flags{}, all)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, cfg); strings.Contains(out, "hunter2") {
			t.Errorf("%s of the config shows the password: %s", format, out)
		}
	}
	if got := cfg.UI.Auth.String(); got != "admin:[hidden]" {
		t.Errorf("String = %q", got)
	}
}
