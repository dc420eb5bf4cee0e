package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/notify"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want notify.Rate
		err  string
	}{
		{"18/m", notify.Rate{Count: 18, Per: time.Minute}, ""},
		{"5/s", notify.Rate{Count: 5, Per: time.Second}, ""},
		{"100/h", notify.Rate{Count: 100, Per: time.Hour}, ""},
		{" 20 / min ", notify.Rate{Count: 20, Per: time.Minute}, ""},
		{"18/10m", notify.Rate{Count: 18, Per: 10 * time.Minute}, ""},
		{"18", notify.Rate{}, "want COUNT/UNIT"},
		{"0/m", notify.Rate{}, "not a positive integer"},
		{"-1/s", notify.Rate{}, "not a positive integer"},
		{"x/s", notify.Rate{}, "not a positive integer"},
		{"5/d", notify.Rate{}, `unit "d"`},
		{"5/-1s", notify.Rate{}, "positive duration"},
		{"", notify.Rate{}, "want COUNT/UNIT"},
	} {
		got, err := notify.ParseRate(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParseRate(%q) = %v, %v; want an error naming the input and %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := notify.ParseRate(got.String()); err != nil || back != got {
			t.Errorf("%v does not round-trip: %v %v", got, back, err)
		}
	}
}

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
