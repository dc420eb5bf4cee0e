package notify_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// TestRouteRecoversDeletedConsumer: when a route's consumer is deleted
// (an operator, a re-created stream), the route creates it again and
// goes on delivering; meanwhile route_up and RoutesDown say it is down.
func TestRouteRecoversDeletedConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := newFake()
	svc := start(t, b, notify.Config{
		Routes:    []notify.Route{route("r", []string{"ossjobs.*.stalled"}, "x")},
		Receivers: []notify.Receiver{{Name: "x", Sender: x}},
	})
	up := func() float64 {
		return testutil.ToFloat64(mustVec(t, b.reg, "ossjobwatch_notify_route_up", map[string]string{"route": "r"}))
	}
	waitFor(t, "route_up 1", 10*time.Second, func() bool { return up() == 1 })
	if down := svc.RoutesDown(0); len(down) != 0 {
		t.Errorf("RoutesDown = %v while consuming", down)
	}
	publish(t, b.js, "ossjobs.hz.stalled", "job-1", 1)
	waitFor(t, "the first event", 10*time.Second, func() bool { return len(x.ids()) == 1 })

	if err := b.js.DeleteConsumer(t.Context(), "OSSJOBS", "ossjobwatch-notify-r"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the route down", 10*time.Second, func() bool { return up() == 0 && len(svc.RoutesDown(0)) == 1 })
	waitFor(t, "the route up again", 20*time.Second, func() bool { return up() == 1 && len(svc.RoutesDown(0)) == 0 })
	if _, err := b.js.Consumer(t.Context(), "OSSJOBS", "ossjobwatch-notify-r"); err != nil {
		t.Fatalf("consumer not created again: %v", err)
	}
	ev := storetest.NewEvent(t, "hz", "job-2", 2, time.Now())
	if _, err := b.js.Publish(t.Context(), "ossjobs.hz.stalled", ev.Payload); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an event published after the consumer came back", 10*time.Second, func() bool { return x.ids()[ev.ID] == 1 })
}
