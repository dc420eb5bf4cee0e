package notifytest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/notify/notifytest"
)

func send(t *testing.T, fake *notifytest.Server, hc *http.Client, evs ...notify.Event) error {
	t.Helper()
	s, err := notify.NewSender(fake.Receiver("r"), hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(context.Background(), notify.Message{Events: evs})
	return err
}

func reason(err error) string {
	var se *notify.SendError
	if errors.As(err, &se) {
		return se.Reason
	}
	if err == nil {
		return ""
	}
	return "not a SendError: " + err.Error()
}

func allFakes(t *testing.T) []*notifytest.Server {
	return []*notifytest.Server{
		notifytest.NewDingTalk(t, "SECfake"),
		notifytest.NewFeishu(t, "fake"),
		notifytest.NewWeCom(t),
		notifytest.NewSlack(t),
		notifytest.NewWebhook(t, "whsec_c2VjcmV0LWtleS1ieXRlcw=="),
	}
}

func TestThrottleAndFailFaults(t *testing.T) {
	t.Parallel()
	ev := notify.SampleEvent(time.Now())
	for _, fake := range allFakes(t) {
		fake.Inject(notifytest.Fault{Kind: notifytest.Throttle, Count: 2, RetryAfter: 3 * time.Second})
		fake.Inject(notifytest.Fault{Kind: notifytest.Fail, Count: 1})
		for i, want := range []string{"throttled", "throttled", "http_5xx", ""} {
			if got := reason(send(t, fake, nil, ev)); got != want {
				t.Fatalf("%s request %d: %q, want %q", fake.Type, i, got, want)
			}
		}
		if fake.Requests() != 4 || fake.Refused() != 3 || len(fake.Messages()) != 1 {
			t.Fatalf("%s: %d requests, %d refused, %d messages", fake.Type, fake.Requests(), fake.Refused(), len(fake.Messages()))
		}
		if ids := fake.EventIDs(); len(ids) != 1 || ids[0] != ev.ID {
			t.Fatalf("%s: ids %v", fake.Type, ids)
		}
	}
}

func TestThrottleRetryAfter(t *testing.T) {
	t.Parallel()
	for _, fake := range []*notifytest.Server{notifytest.NewSlack(t), notifytest.NewWebhook(t, "")} {
		fake.Inject(notifytest.Fault{Kind: notifytest.Throttle, Count: 1, RetryAfter: 3 * time.Second})
		var se *notify.SendError
		if err := send(t, fake, nil, notify.SampleEvent(time.Now())); !errors.As(err, &se) || se.RetryAfter != 3*time.Second || se.Status != 429 {
			t.Fatalf("%s: %v", fake.Type, err)
		}
	}
}

func TestSlowFault(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewWebhook(t, "")
	fake.Inject(notifytest.Fault{Kind: notifytest.Slow, Count: 1, Delay: time.Minute})
	hc := notifytest.Client(t) // not DefaultTransport: the fake answers 204
	hc.Timeout = 100 * time.Millisecond
	if got := reason(send(t, fake, hc, notify.SampleEvent(time.Now()))); got != "timeout" {
		t.Fatalf("got %q, want timeout", got)
	}
	// The client gave up: nothing recorded. The next request is served.
	if err := send(t, fake, hc, notify.SampleEvent(time.Now())); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestFractionFault(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewSlack(t)
	fake.Inject(notifytest.Fault{Kind: notifytest.Fail, Fraction: 0.5, Seed: 7})
	failed := 0
	for range 40 {
		if send(t, fake, nil, notify.SampleEvent(time.Now())) != nil {
			failed++
		}
	}
	if failed < 8 || failed > 32 {
		t.Fatalf("%d of 40 failed at fraction 0.5", failed)
	}
	fake.Clear()
	if err := send(t, fake, nil, notify.SampleEvent(time.Now())); err != nil {
		t.Fatal(err)
	}
}

func TestLimit(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewDingTalk(t, "")
	fake.Limit(notify.Rate{Count: 3, Per: time.Hour})
	var reasons []string
	for range 5 {
		reasons = append(reasons, reason(send(t, fake, nil, notify.SampleEvent(time.Now()))))
	}
	if got := strings.Join(reasons, ","); got != ",,,throttled,throttled" {
		t.Fatalf("got %s", got)
	}
}

func TestKeywords(t *testing.T) {
	t.Parallel()
	for _, fake := range []*notifytest.Server{notifytest.NewDingTalk(t, ""), notifytest.NewFeishu(t, "")} {
		fake.RequireKeywords("ossjobwatch") // in every default message's footer
		if err := send(t, fake, nil, notify.SampleEvent(time.Now())); err != nil {
			t.Fatalf("%s: %v", fake.Type, err)
		}
		fake.RequireKeywords("报警")
		var se *notify.SendError
		if err := send(t, fake, nil, notify.SampleEvent(time.Now())); !errors.As(err, &se) || se.Reason != "keyword" || !se.Slow {
			t.Fatalf("%s: %v", fake.Type, err)
		}
	}
}

func TestSignatureWindow(t *testing.T) {
	t.Parallel()
	for _, fake := range []*notifytest.Server{notifytest.NewDingTalk(t, "SECs"), notifytest.NewFeishu(t, "s")} {
		fake.SetNow(func() time.Time { return time.Now().Add(61 * time.Minute) })
		if got := reason(send(t, fake, nil, notify.SampleEvent(time.Now()))); got != "signature" {
			t.Fatalf("%s: %q, want signature", fake.Type, got)
		}
		fake.SetNow(func() time.Time { return time.Now().Add(59 * time.Minute) })
		if err := send(t, fake, nil, notify.SampleEvent(time.Now())); err != nil {
			t.Fatalf("%s: %v", fake.Type, err)
		}
	}
	wh := notifytest.NewWebhook(t, "raw-secret")
	wh.SetNow(func() time.Time { return time.Now().Add(notifytest.WebhookTolerance + time.Minute) })
	if got := reason(send(t, wh, nil, notify.SampleEvent(time.Now()))); got != "http_4xx" {
		t.Fatalf("webhook: %q", got)
	}
}

func TestDigestCounting(t *testing.T) {
	t.Parallel()
	var evs []notify.Event
	for i := range 7 {
		e := notify.SampleEvent(time.Now().Add(time.Duration(i) * time.Second))
		evs = append(evs, e)
	}
	for _, fake := range allFakes(t)[:4] {
		if err := send(t, fake, nil, evs...); err != nil {
			t.Fatalf("%s: %v", fake.Type, err)
		}
		if err := send(t, fake, nil, evs[0]); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := fake.WaitEvents(ctx, 8); err != nil {
			t.Fatalf("%s: %v", fake.Type, err)
		}
		cancel()
		ms := fake.Messages()
		if !ms[0].Digest || ms[0].Events != 7 || ms[1].Digest || len(ms[1].EventIDs) != 1 || ms[1].EventIDs[0] != evs[0].ID {
			t.Fatalf("%s: %+v", fake.Type, ms)
		}
	}
}

func TestWaitHonoursContext(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewWeCom(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := fake.WaitMessages(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- fake.WaitMessages(ctx, 2)
	}()
	for range 2 {
		if err := send(t, fake, nil, notify.SampleEvent(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestExportedFieldsChangeNothing: a fake's Type, URL, Secret and Token
// say what it was started with; a test writing them (perhaps while the
// fake serves) changes neither what the fake checks nor Receiver.
func TestExportedFieldsChangeNothing(t *testing.T) {
	t.Parallel()
	for i, fake := range allFakes(t) {
		fake.Secret, fake.Token, fake.URL, fake.Type = "changed-secret", "changed-token", "http://127.0.0.1:1/x", "changed"
		if err := send(t, fake, nil, notify.SampleEvent(time.Now())); err != nil {
			t.Errorf("fake %d (%s) after writing its fields: %v", i, reason(err), err)
		}
	}
}
