package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/notify/notifytest"
)

func notifyConfigFile(t *testing.T, receivers string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "notify.yaml")
	yaml := "notify:\n  receivers:\n" + receivers + `  routes:
    - {name: failures, subjects: ["ossjobs.*.status.*.Failed"], receivers: [ding]}
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestNotifyTest: notify --test sends the sample event and prints the
// platform's answer; a refusal exits 1 with the reason, never a secret.
func TestNotifyTest(t *testing.T) {
	t.Parallel()
	ding := notifytest.NewDingTalk(t, "SECright")
	file := notifyConfigFile(t, `    - {name: ding, type: dingtalk, url: "${DING_URL}", secret: "${DING_SECRET}", rate: 18/m}
`)
	env := map[string]string{"OSSJOBWATCH_CONFIG": file, "DING_URL": ding.URL, "DING_SECRET": "SECright"}
	code, stdout, stderr := runVerb(t, env, "notify", "--test", "ding")
	if code != exitOK || !strings.Contains(stdout, "ding accepted the sample event: HTTP 200") || ding.Requests() != 1 {
		t.Fatalf("notify --test: code %d, stdout %q, stderr %q, %d requests", code, stdout, stderr, ding.Requests())
	}

	env["DING_SECRET"] = "SECwrong"
	code, stdout, stderr = runVerb(t, env, "notify", "--test", "ding")
	if code != exitFailure || !strings.Contains(stderr, "refused") || !strings.Contains(stderr, "signature") {
		t.Errorf("wrong secret: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, secret := range []string{"SECwrong", ding.Token} {
		if strings.Contains(stderr+stdout, secret) {
			t.Errorf("output shows the secret %q: %s", secret, stderr)
		}
	}

	code, _, stderr = runVerb(t, env, "notify", "--test", "nobody")
	if code != exitFailure || !strings.Contains(stderr, `no receiver named "nobody"`) {
		t.Errorf("unknown receiver: code %d, stderr %q", code, stderr)
	}
	delete(env, "DING_URL")
	code, _, stderr = runVerb(t, env, "notify", "--test", "ding")
	if code != exitUsage || !strings.Contains(stderr, "notify.receivers[0].url: ${DING_URL} is not set in the environment") {
		t.Errorf("unset variable: code %d, stderr %q", code, stderr)
	}
}

// TestNotifyCheckConfig: run --check-config shows the notify section
// without its URLs and secrets.
func TestNotifyCheckConfig(t *testing.T) {
	t.Parallel()
	file := notifyConfigFile(t, `    - {name: ding, type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=${TOKEN}", secret: "${DING_SECRET}", rate: 18/m}
`)
	env := map[string]string{"OSSJOBWATCH_CONFIG": file, "TOKEN": "tok-123456", "DING_SECRET": "SEC-abcdef",
		"OSSJOBWATCH_DATABASE_URL": "postgres://u@db/x", "OSSJOBWATCH_REGION": "cn-hangzhou"}
	code, stdout, stderr := runVerb(t, env, "run", "--check-config")
	want := []string{"notify receiver ding: dingtalk, signed, 18 per 1m0s", "notify route failures: ossjobs.*.status.*.Failed → ding"}
	for _, w := range want {
		if code != exitOK || !strings.Contains(stdout, w) {
			t.Errorf("check-config lacks %q: code %d\n%s%s", w, code, stdout, stderr)
		}
	}
	if strings.Contains(stdout, "tok-123456") || strings.Contains(stdout, "SEC-abcdef") {
		t.Errorf("check-config shows a secret:\n%s", stdout)
	}
	code, _, stderr = runVerb(t, map[string]string{"OSSJOBWATCH_DATABASE_URL": "postgres://u@db/x"}, "notify")
	if code != exitUsage || !strings.Contains(stderr, "no notify section") {
		t.Errorf("notify without a section: code %d, stderr %q", code, stderr)
	}
}
