package publisher_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestReplayRepublishesWithOriginalIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	want := insertJobs(t, b.store, "t1", 6, 5)
	if _, err := b.relay.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	publishedAt := func() time.Time {
		var at time.Time
		if err := b.store.Pool().QueryRow(t.Context(), `SELECT max(published_at) FROM job_events`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	before := publishedAt()

	// Within the duplicate window: all acknowledged as duplicates, nothing
	// stored.
	n, dups, _, err := publisher.Replay(t.Context(), b.store, b.js, publisher.ReplayOptions{Since: observed, Stream: publisher.DefaultStream})
	if err != nil || n != len(want) || dups != len(want) {
		t.Fatalf("Replay = %d, %d, %v; want %d, %d, nil", n, dups, err, len(want), len(want))
	}
	checkStream(t, b.js, want)
	if after := publishedAt(); !after.Equal(before) {
		t.Errorf("Replay touched published_at: %v, was %v", after, before)
	}

	// Narrowed to one job.
	n, dups, _, err = publisher.Replay(t.Context(), b.store, b.js, publisher.ReplayOptions{Since: observed, Target: "t1", JobID: "job-2"})
	if err != nil || n != 5 || dups != 5 {
		t.Fatalf("Replay of job-2 = %d, %d, %v; want 5, 5, nil", n, dups, err)
	}

	// Into a stream without the events (as after the window): stored
	// again, in order, with the original ids and bodies.
	if err := b.js.DeleteStream(t.Context(), publisher.DefaultStream); err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.EnsureStream(t.Context(), b.js, publisher.StreamConfig{Managed: true}); err != nil {
		t.Fatal(err)
	}
	n, dups, _, err = publisher.Replay(t.Context(), b.store, b.js, publisher.ReplayOptions{Since: observed, MaxInFlight: 4})
	if err != nil || n != len(want) || dups != 0 {
		t.Fatalf("Replay into an empty stream = %d, %d, %v; want %d, 0, nil", n, dups, err, len(want))
	}
	checkStream(t, b.js, want)
	for _, m := range readStream(t, b.js) {
		ev := want[m.Headers().Get("Nats-Msg-Id")]
		if string(m.Data()) != string(ev.Payload) || m.Subject() != ev.Subject || m.Headers().Get("Content-Type") != event.ContentType {
			t.Fatalf("replayed message %s differs from the stored event", ev.ID)
		}
	}

	if _, _, _, err := publisher.Replay(t.Context(), b.store, b.js, publisher.ReplayOptions{}); err == nil {
		t.Error("Replay without Since succeeded")
	}
}

// TestReplayKeepsEachJobsOrderBesideTheRelay replays while older events of
// the replayed jobs still wait in the outbox. Read first occurrence per
// event id, the stream must hold each job's events in sequence order: the
// replay must not publish a job's event while the relay still owes an
// earlier one.
func TestReplayKeepsEachJobsOrderBesideTheRelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		since time.Duration // after observed
		// alongside: a started relay runs during the replay; otherwise the
		// relay publishes after it, as a relay that was slow or down would.
		alongside bool
	}{
		{"since before the first event, relay alongside", -time.Minute, true},
		{"since before the first event, relay after", -time.Minute, false},
		{"since between two pending events, relay alongside", 4*time.Minute + 30*time.Second, true},
		{"since between two pending events, relay after", 4*time.Minute + 30*time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			published := newSignal()
			b := setup(t, publisher.Config{})
			// The relay publishes through a proxy that can lose a publish:
			// its round then waits, lock held, for an acknowledgement that
			// does not come until PublishTimeout.
			proxy := natstest.NewProxy(t, b.nats)
			b.relay = newRelay(t, b.store, newJetStream(t, proxy.Connect(t, nats.ReconnectBufSize(-1))), publisher.Config{
				PublishTimeout: time.Second,
				PollInterval:   time.Hour,
				OnPublished:    func(int, time.Duration) { published.send() },
			})
			// Job j: #1..#3 published, #4 and #5 pending; job k: #1
			// published, #2 pending. Event #n is observed n minutes after
			// observed.
			ev := func(job string, seq int64) event.Event {
				return storetest.NewEvent(t, "t1", job, seq, observed.Add(time.Duration(seq)*time.Minute))
			}
			storetest.InsertEvents(t, b.store, "t1", ev("j", 1), ev("k", 1), ev("j", 2), ev("j", 3))
			if _, err := b.relay.Drain(t.Context()); err != nil {
				t.Fatal(err)
			}
			j4 := ev("j", 4)
			storetest.InsertEvents(t, b.store, "t1", j4, ev("k", 2), ev("j", 5))

			if tt.alongside {
				// The replay starts while the relay's round has #4 in flight.
				proxy.Drop(j4.ID, 1)
				if err := b.relay.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(b.relay.Stop)
				select {
				case <-proxy.Dropped():
				case <-time.After(waitTimeout):
					t.Fatal("the relay did not publish #4")
				}
			}
			n, _, owed, err := publisher.Replay(t.Context(), b.store, b.js, publisher.ReplayOptions{Since: observed.Add(tt.since)})
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			t.Logf("replayed %d, left %d to the relay", n, owed)
			if tt.alongside {
				waitFor(t, published, "the relay to publish the outbox", func() bool { return pending(t, b.store) == 0 })
			} else if _, err := b.relay.Drain(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkFirstOccurrenceOrder(t, b.js, 7)
		})
	}
}

// checkFirstOccurrenceOrder reads the stream and checks that, taking each
// event id's first message only, every job's events are there in sequence
// order, want events in all.
func checkFirstOccurrenceOrder(t *testing.T, js jetstream.JetStream, want int) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	var order []string
	for _, m := range readStream(t, js) {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		if seen[id] {
			continue
		}
		seen[id] = true
		var ev struct {
			Data struct {
				JobID    string `json:"jobId"`
				Sequence int64  `json:"sequence"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		job, seq := ev.Data.JobID, ev.Data.Sequence
		order = append(order, fmt.Sprintf("%s#%d", job, seq))
		if seq != last[job]+1 {
			t.Errorf("job %s: event #%d follows #%d in the stream", job, seq, last[job])
		}
		last[job] = seq
	}
	if len(seen) != want {
		t.Errorf("stream holds %d distinct events, want %d", len(seen), want)
	}
	t.Logf("stream, first occurrences: %v", order)
}
