package notify_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// memStore is an in-memory notify.Store whose Delivered can be held up
// (hook) to let events arrive while it is under way. Like PostgreSQL's
// uuid column, it answers with ids in lower case.
type memStore struct {
	mu        sync.Mutex
	delivered map[string]bool // lower-case id + "|" + receiver
	hook      func(ids []string)
}

func newMemStore() *memStore { return &memStore{delivered: map[string]bool{}} }

func (s *memStore) Delivered(_ context.Context, ids []string, receiver string) (map[string]bool, error) {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(ids)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, id := range ids {
		if id = strings.ToLower(id); s.delivered[id+"|"+receiver] {
			out[id] = true
		}
	}
	return out, nil
}

func (s *memStore) RecordFailure(context.Context, []store.DeliveryRef, time.Time, string) error {
	return nil
}

func (s *memStore) RecordDelivered(_ context.Context, refs []store.DeliveryRef, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range refs {
		s.delivered[strings.ToLower(r.EventID)+"|"+r.Receiver] = true
	}
	return nil
}

func (s *memStore) setDelivered(id, receiver string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered[strings.ToLower(id)+"|"+receiver] = true
}

// startMem starts a service on b's JetStream with st as its store, and
// quick retries unless cfg sets its own.
func startMem(t *testing.T, b bundle, st notify.Store, cfg notify.Config) *notify.Service {
	t.Helper()
	cfg.JetStream, cfg.Store, cfg.Registerer = b.js, st, b.reg
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, 20*time.Millisecond)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, 200*time.Millisecond)
	svc, err := notify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return svc
}

// TestDigestSkipsEventsNotYetChecked: an event the receiver already has
// (a redelivered message) that arrives while the worker asks the
// deliveries table about others is not folded, unchecked, into the digest
// that follows: it is checked first, and skipped.
func TestDigestSkipsEventsNotYetChecked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := newMemStore()
	d := newFake()
	evs := make([]event.Event, 4)
	for i := range evs {
		evs[i] = storetest.NewEvent(t, "hz", "job-1", int64(i+2), time.Now())
	}
	pub := func(i int) {
		if _, err := b.js.Publish(context.Background(), "ossjobs.hz.stalled", evs[i].Payload); err != nil {
			t.Error(err)
		}
	}
	// evs[3] was delivered before (by a process that crashed before its
	// ack): its message comes again and must be skipped.
	st.setDelivered(evs[3].ID, "d")
	var once1, once2 sync.Once
	st.hook = func(ids []string) {
		// While the worker asks about evs[1] (the check before its rate
		// wait), evs[2] arrives; while it asks about evs[2] (the check
		// after the wait), evs[3] arrives.
		if slices.Contains(ids, evs[1].ID) {
			once1.Do(func() { pub(2); time.Sleep(300 * time.Millisecond) })
		}
		if slices.Contains(ids, evs[2].ID) {
			once2.Do(func() { pub(3); time.Sleep(300 * time.Millisecond) })
		}
	}
	startMem(t, b, st, notify.Config{
		Routes:    []notify.Route{route("r", []string{"ossjobs.*.stalled"}, "d")},
		Receivers: []notify.Receiver{{Name: "d", Sender: d, Digest: true, Rates: []notify.Rate{{Count: 1, Per: 2 * time.Second}}}},
	})
	pub(0)
	waitFor(t, "evs[0]", 10*time.Second, func() bool { return d.ids()[evs[0].ID] == 1 })
	pub(1)
	waitFor(t, "evs[1] and evs[2]", 15*time.Second, func() bool { return d.ids()[evs[1].ID] == 1 && d.ids()[evs[2].ID] == 1 })
	waitFor(t, "every message acknowledged", 15*time.Second, func() bool {
		p, n := ackPending(t, b.js, "ossjobwatch-notify-r")
		return p == 0 && n == 0
	})
	if n := d.ids()[evs[3].ID]; n != 0 {
		t.Errorf("an event recorded delivered before was sent again %d time(s)", n)
	}
}

// TestUpperCaseEventIDSkippedWhenDelivered: an event whose id is in upper
// case, which a receiver already has, is skipped on redelivery (the
// deliveries table answers in lower case), while the event still goes
// out with its id as published.
func TestUpperCaseEventIDSkippedWhenDelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := newMemStore()
	x, y := newFake(), newFake()
	ev := storetest.NewEvent(t, "hz", "job-1", 2, time.Now())
	upper := strings.ToUpper(ev.ID)
	payload := []byte(strings.Replace(string(ev.Payload), ev.ID, upper, 1))
	st.setDelivered(ev.ID, "x")
	startMem(t, b, st, notify.Config{
		Routes:    []notify.Route{route("r", []string{"ossjobs.*.stalled"}, "x", "y")},
		Receivers: []notify.Receiver{{Name: "x", Sender: x}, {Name: "y", Sender: y}},
	})
	if _, err := b.js.Publish(t.Context(), "ossjobs.hz.stalled", payload); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "y served and the message acknowledged", 15*time.Second, func() bool {
		p, n := ackPending(t, b.js, "ossjobwatch-notify-r")
		return len(y.ids()) == 1 && p == 0 && n == 0
	})
	if y.ids()[upper] != 1 {
		t.Errorf("y got %v, want the event with its id as published, %s", y.ids(), upper)
	}
	if r, _ := x.stats(); r != 0 {
		t.Errorf("x got %d requests for an event it had", r)
	}
}

// TestRefusedEventDoesNotBlockReceiver: an event a receiver refuses for
// its content (HTTP 400, DingTalk 430xxx) is set aside: later events of
// the same route and of another route sharing the receiver reach it
// meanwhile, no digest carries the refused event, and the refused one is
// retried (its message not acknowledged) until the receiver takes it.
func TestRefusedEventDoesNotBlockReceiver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	poison := storetest.NewEvent(t, "hz", "job-1", 2, time.Now())
	var mu sync.Mutex
	accept := false
	// digests are the requests of more than one event made after the
	// receiver first refused the event, refused or not.
	var digests [][]string
	refuser := func() func(int, notify.Message) error {
		refused := false
		return func(_ int, m notify.Message) error {
			mu.Lock()
			defer mu.Unlock()
			var ids []string
			for _, ev := range m.Events {
				ids = append(ids, ev.ID)
			}
			if len(ids) > 1 && refused {
				digests = append(digests, ids)
			}
			if slices.Contains(ids, poison.ID) && !accept {
				refused = true
				return &notify.SendError{Receiver: "x", Reason: "http_4xx", Status: 400, Slow: true, Content: true, Err: errors.New("content refused")}
			}
			return nil
		}
	}
	x, d := newFake(), newFake()
	x.fail, d.fail = refuser(), refuser()
	start(t, b, notify.Config{
		Routes: []notify.Route{
			route("a", []string{"ossjobs.*.stalled"}, "x", "d"),
			route("b", []string{"ossjobs.*.removed"}, "x"),
		},
		Receivers: []notify.Receiver{
			{Name: "x", Sender: x},
			{Name: "d", Sender: d, Digest: true, Rates: []notify.Rate{{Count: 1, Per: time.Second}}},
		},
		SlowRetry: 2 * time.Second,
	})
	if _, err := b.js.Publish(t.Context(), "ossjobs.hz.stalled", poison.Payload); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first refusal", 10*time.Second, func() bool { r, _ := x.stats(); return r >= 1 })
	same := publish(t, b.js, "ossjobs.hz.stalled", "job-2", 4)
	other := publish(t, b.js, "ossjobs.hz.removed", "job-3", 1)
	waitFor(t, "the later events, around the refused one", 10*time.Second, func() bool {
		for _, id := range same {
			if x.ids()[id] != 1 || d.ids()[id] != 1 {
				return false
			}
		}
		return x.ids()[other[0]] == 1
	})
	waitFor(t, "route a to hold only the refused event's message", 10*time.Second, func() bool {
		p, n := ackPending(t, b.js, "ossjobwatch-notify-a")
		return p == 1 && n == 0
	})
	waitFor(t, "the refused event retried", 10*time.Second, func() bool {
		r, _ := x.stats()
		return r >= 2+len(same)+len(other)
	})
	mu.Lock()
	accept = true
	mu.Unlock()
	waitFor(t, "the refused event delivered once accepted, and acknowledged", 15*time.Second, func() bool {
		p, n := ackPending(t, b.js, "ossjobwatch-notify-a")
		return x.ids()[poison.ID] == 1 && d.ids()[poison.ID] == 1 && p == 0 && n == 0
	})
	mu.Lock()
	defer mu.Unlock()
	for _, ids := range digests {
		if slices.Contains(ids, poison.ID) {
			t.Errorf("a digest carried the event after it was refused: %v", ids)
		}
	}
	if len(digests) == 0 {
		t.Log("no digest was sent: the digest half of the test did not run")
	}
}

// failingRecords is a memStore whose RecordDelivered fails for its
// first 11 seconds, longer than the worker retries it (10s).
type failingRecords struct {
	*memStore
	mu    sync.Mutex
	first time.Time
}

func (s *failingRecords) RecordDelivered(ctx context.Context, refs []store.DeliveryRef, at time.Time) error {
	s.mu.Lock()
	if s.first.IsZero() {
		s.first = time.Now()
	}
	away := time.Since(s.first) < 11*time.Second
	s.mu.Unlock()
	if away {
		return errors.New("database away")
	}
	return s.memStore.RecordDelivered(ctx, refs, at)
}

// TestUnrecordedDeliveryComesBackSoon: an event delivered but not
// recorded (the database away) is handed back at once, not after a
// whole AckWait: it is sent again (at least once) as soon as the
// database is back.
func TestUnrecordedDeliveryComesBackSoon(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := &failingRecords{memStore: newMemStore()}
	x := newFake()
	startMem(t, b, st, notify.Config{
		Routes:    []notify.Route{route("r", []string{"ossjobs.*.stalled"}, "x")},
		Receivers: []notify.Receiver{{Name: "x", Sender: x}},
		AckWait:   time.Minute,
	})
	ids := publish(t, b.js, "ossjobs.hz.stalled", "job-1", 1)
	// The worker retries the record for 10s before it gives up; then the
	// message must come again at once, not after AckWait (a minute).
	waitFor(t, "the event sent again well before AckWait", 25*time.Second, func() bool {
		p, n := ackPending(t, b.js, "ossjobwatch-notify-r")
		return x.ids()[ids[0]] == 2 && p == 0 && n == 0
	})
}

// TestNewRefusesRouteWithoutReceivers: a route naming no receiver would
// hold its messages unacknowledged for good.
func TestNewRefusesRouteWithoutReceivers(t *testing.T) {
	t.Parallel()
	_, err := notify.New(notify.Config{
		JetStream: jetstreamStub{}, Store: newMemStore(),
		Routes:    []notify.Route{route("r", []string{"ossjobs.>"})},
		Receivers: []notify.Receiver{{Name: "x", Sender: newFake()}},
	})
	if err == nil || !strings.Contains(err.Error(), "route r: no receivers") {
		t.Fatalf("New = %v, want a route without receivers refused", err)
	}
}

// jetstreamStub satisfies Config.JetStream for New, which does not use
// it.
type jetstreamStub struct{ jetstream.JetStream }
