package publisher_test

import (
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/publisher"
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
