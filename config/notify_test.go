package config_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
)

var notifyEnv = map[string]string{
	"OSSJOBWATCH_DATABASE_URL": "postgres://x@y/z",
	"DINGTALK_URL":             "https://oapi.dingtalk.com/robot/send?access_token=tok-ding-123",
	"DINGTALK_SECRET":          "SEC-ding-456",
	"FEISHU_TOKEN":             "tok-feishu-789",
	"WEBHOOK_SECRET":           "whsec_c2VjcmV0LXdlYmhvb2s=",
}

func TestLoadNotify(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(notifyEnv), config.Flags{ConfigFile: "testdata/notify.yaml"}, config.Needs{Database: true, NATS: true, Notify: true})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	n := cfg.Notify
	if n == nil || len(n.Receivers) != 3 || len(n.Routes) != 2 {
		t.Fatalf("notify = %+v", n)
	}
	ding, feishu, audit := n.Receivers[0], n.Receivers[1], n.Receivers[2]
	if ding.Name != "ops-dingtalk" || ding.Type != "dingtalk" || ding.URL.Value() != notifyEnv["DINGTALK_URL"] ||
		ding.Secret.Value() != "SEC-ding-456" || len(ding.Rates) != 1 || ding.Rates[0] != (config.Rate{Count: 18, Per: time.Minute}) {
		t.Errorf("dingtalk = %#v", ding)
	}
	if feishu.URL.Value() != "https://open.feishu.cn/open-apis/bot/v2/hook/tok-feishu-789" || feishu.Secret != "" || feishu.Rates != nil {
		t.Errorf("feishu = %#v", feishu)
	}
	if want := []config.Rate{{20, time.Second}, {600, time.Minute}}; fmt.Sprint(audit.Rates) != fmt.Sprint(want) {
		t.Errorf("audit rates = %v, want %v", audit.Rates, want)
	}
	r := n.Routes[0]
	if r.Name != "failures" || len(r.Subjects) != 3 || r.Subjects[1] != "ossjobs.*.tasks_failed" ||
		strings.Join(r.Receivers, ",") != "ops-dingtalk,ops-feishu" || r.Template != "{{.Data.JobID}} is {{.Data.Status}}" {
		t.Errorf("route = %+v", r)
	}

	// No secret in any rendering of the config.
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "receiver", ding, "url", ding.URL)
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("url=%s", ding.URL), logged.String()} {
		for _, secret := range []string{"tok-ding-123", "SEC-ding-456", "tok-feishu-789", "c2VjcmV0LXdlYmhvb2s"} {
			if strings.Contains(s, secret) {
				t.Errorf("secret %q printed: %s", secret, s)
			}
		}
	}
	if !strings.Contains(fmt.Sprintf("%+v", ding), "redacted") {
		t.Errorf("%%+v of a receiver = %+v, want redacted", ding)
	}
}

func TestNoNotifySection(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil), config.Flags{ConfigFile: "testdata/two-targets.yaml"}, all)
	if err != nil || cfg.Notify != nil {
		t.Fatalf("Load = %+v, %v; want no notify section", cfg.Notify, err)
	}
	_, err = config.Load(env(nil), config.Flags{ConfigFile: "testdata/two-targets.yaml"}, config.Needs{Notify: true})
	if err == nil || !strings.Contains(err.Error(), "notify: the config file (OSSJOBWATCH_CONFIG) has no notify section") {
		t.Fatalf("Load with Needs.Notify = %v", err)
	}
}

func TestNotifyErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"bad-notify-type.yaml", []string{`notify.receivers[0].type: unknown type "x" (want dingtalk, feishu, wecom, slack or webhook)`,
			"notify.receivers[1].secret: type slack takes no secret"}},
		{"bad-notify-unknown-key.yaml", []string{"line 3", "token"}},
		{"bad-notify-duplicate.yaml", []string{`notify.receivers[1].name: "x" is used by another receiver`, `notify.routes[1].name: "r" is used by another route`}},
		{"bad-notify-route-receiver.yaml", []string{`notify.routes[0].receivers[1]: "nobody" is not a receiver of notify.receivers`}},
		{"bad-notify-subjects.yaml", []string{
			`notify.routes[0].subjects[0]: "other.>" is outside the stream's subjects ossjobs.>`,
			`notify.routes[0].subjects[1]: "ossjobs.>.x" is not a NATS subject filter: > must be the last token`,
			`notify.routes[0].subjects[2]: "ossjobs.a*" is not a NATS subject filter: * and > must be whole tokens`,
			`notify.routes[0].subjects[3]: "ossjobs" is outside the stream's subjects ossjobs.>`,
			`notify.routes[0].subjects[5]: "ossjobs.cn.>" overlaps "ossjobs.*.removed"`,
		}},
		{"bad-notify-template.yaml", []string{"notify.routes[0].template: does not parse", "unclosed action"}},
		{"bad-notify-rate.yaml", []string{`notify.receivers[0].rate: "18 per minute" is not a rate such as 18/m, 5/s or 100/h`}},
		{"bad-notify-env.yaml", []string{"notify.receivers[0].url: ${NOT_SET_URL} is not set in the environment", "notify.receivers[0].secret: ${NOT_SET_SECRET} is not set"}},
		{"bad-notify-url.yaml", []string{"notify.receivers[0].url: not an http or https URL"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(nil), config.Flags{ConfigFile: "testdata/" + tc.file}, config.Needs{Notify: true})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the URL's password: %v", err)
			}
		})
	}
}

func TestNotifyPrefix(t *testing.T) {
	t.Parallel()
	// The filters follow the subject prefix the environment sets.
	e := env(map[string]string{"OSSJOBWATCH_SUBJECT_PREFIX": "acme.jobs"})
	_, err := config.Load(e, config.Flags{ConfigFile: "testdata/bad-notify-type.yaml"}, config.Needs{Notify: true})
	if err == nil || !strings.Contains(err.Error(), `notify.routes[0].subjects[0]: "ossjobs.>" is outside the stream's subjects acme.jobs.>`) {
		t.Fatalf("Load = %v", err)
	}
}

func TestParseRates(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"18/m": "[{18 1m0s}]", "5/s": "[{5 1s}]", "100/h": "[{100 1h0m0s}]", "1/3s": "[{1 3s}]", " 20/m , 1/s ": "[{20 1m0s} {1 1s}]", "": "[]",
	} {
		got, err := config.ParseRates(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("ParseRates(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"18", "0/m", "x/m", "18/d", "18/0s", "18/m,"} {
		if _, err := config.ParseRates(in); err == nil {
			t.Errorf("ParseRates(%q) succeeded", in)
		}
	}
}
