package notify

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDigestNamesEveryEventItRecords: a burst of MaxDigest events to
// WeCom (4096 bytes a message) goes out in digests that each name every
// event they carry, none cut to "… N more events": every event the worker
// records delivered was shown.
func TestDigestNamesEveryEventItRecords(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.metrics = m
	w := newWorker(s, Receiver{Name: "w", Type: TypeWeCom, Digest: true, Rates: []Rate{{Count: 1, Per: time.Hour}}})
	r := &route{Route: Route{RouteConfig: RouteConfig{Name: "r"}}, s: s, inFlight: map[*tracker]struct{}{}}
	var ids []string
	for i := range s.cfg.MaxDigest {
		ev := Event{ID: fmt.Sprintf("018f0000-0000-7000-8000-%012d", i), Type: "ossjobwatch.job.status_changed", Time: time.Now(),
			Data: EventData{JobID: fmt.Sprintf("job-%032d", i), Target: "prod-hz", Status: "Failed", PreviousStatus: "Active",
				Description: "nightly tagging of the archive bucket for finance reports", ObservedAt: time.Now()}}
		w.enqueue(ev, time.Now(), &tracker{r: r})
		ids = append(ids, ev.Data.JobID)
	}
	for _, p := range w.queue {
		p.checked = true
	}
	named := map[string]int{}
	for requests := 0; !w.empty(); requests++ {
		if requests > s.cfg.MaxDigest {
			t.Fatal("the queue does not drain")
		}
		batch, m, refs := w.take()
		if len(batch) == 0 || len(refs) != len(batch) {
			t.Fatalf("take = %d events, %d refs", len(batch), len(refs))
		}
		body := string(weComMessage(m))
		if strings.Contains(body, "more event") {
			t.Errorf("a digest of %d events counts some instead of naming them", len(batch))
		}
		for _, p := range batch {
			if !strings.Contains(body, p.ev.Data.JobID) {
				t.Errorf("event %s recorded delivered but not named in its message", p.ev.Data.JobID)
			}
			named[p.ev.Data.JobID]++
		}
		if requests == 0 && len(batch) == s.cfg.MaxDigest {
			t.Errorf("all %d events in one WeCom digest: the test no longer overflows 4096 bytes", len(batch))
		}
		w.complete(batch)
	}
	for _, id := range ids {
		if named[id] != 1 {
			t.Errorf("event %s named %d times", id, named[id])
		}
	}
}

// TestBackoffJitteredAtTheCap: once the backoff reaches MaxBackoff its
// waits are still jittered (±20%), so receivers failing together do not
// retry in step.
func TestBackoffJitteredAtTheCap(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{MinBackoff: time.Second, MaxBackoff: 2 * time.Second}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	b := newWorker(s, Receiver{Name: "w"}).newBackoff()
	seen := map[time.Duration]bool{}
	for i := range 40 {
		d, _ := b.Next()
		if d < 800*time.Millisecond || d > 2400*time.Millisecond {
			t.Fatalf("wait %d = %s, outside 1s..2s ±20%%", i, d)
		}
		if i >= 3 {
			seen[d] = true
		}
	}
	if len(seen) < 2 {
		t.Errorf("capped waits all %v: not jittered", seen)
	}
}
