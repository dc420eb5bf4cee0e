package notify_test

import (
	"strings"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/notify"
)

func TestDefaultRates(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"dingtalk": "18/m", "wecom": "18/m", "feishu": "4/s 90/m", "slack": "1/s", "webhook": "10/s",
	}
	for _, typ := range notify.Types {
		var s []string
		for _, r := range notify.DefaultRates(typ) {
			s = append(s, r.String())
		}
		if got := strings.Join(s, " "); got != want[typ] {
			t.Errorf("%s: %q, want %q", typ, got, want[typ])
		}
	}
	if notify.DefaultRates("nope") != nil {
		t.Error("unknown type has rates")
	}
}

func TestNewSenderRefuses(t *testing.T) {
	t.Parallel()
	for _, rc := range []notify.ReceiverConfig{
		{Name: "", Type: "slack", URL: "https://hooks.slack.com/x"},
		{Name: "a", Type: "slack", URL: ""},
		{Name: "a", Type: "slack", URL: "hooks.slack.com/services/T/B/secret-path"},
		{Name: "a", Type: "teams", URL: "https://x"},
		{Name: "a", Type: "wecom", URL: "https://x?key=k", Secret: "s"},
	} {
		_, err := notify.NewSender(rc, nil, nil)
		if err == nil {
			t.Errorf("%+v accepted", rc)
			continue
		}
		if strings.Contains(err.Error(), "secret-path") {
			t.Errorf("error leaks the url: %v", err)
		}
	}
}
