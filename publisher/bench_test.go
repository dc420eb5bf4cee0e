package publisher_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// BenchmarkRelay100k drains an outbox of 100,000 events of distinct jobs
// (a baseline sweep of a large account) into a file-storage stream, and,
// for scale, publishes the same messages with a bare async publish loop
// through the same window into a fresh stream of the same server. It
// reports both rates and their ratio.
//
//	go test -run '^$' -bench Relay100k -benchtime 1x ./publisher
func BenchmarkRelay100k(b *testing.B) {
	const n = 100_000
	st := storetest.NewStore(b)
	srv := natstest.Start(b)
	nc := srv.Connect(b)
	js := newJetStream(b, nc)
	ctx := b.Context()

	evs := make([]event.Event, n)
	payload := 0
	for i := range evs {
		evs[i] = storetest.NewEvent(b, "bench", fmt.Sprintf("job-%06d", i), 1, observed)
		payload += len(evs[i].Payload)
	}
	b.Logf("%d events, %d bytes of payload on average", n, payload/n)

	relay, err := publisher.New(publisher.Config{Store: st, JetStream: js})
	if err != nil {
		b.Fatal(err)
	}
	freshStream := func() {
		b.Helper()
		if err := js.DeleteStream(ctx, publisher.DefaultStream); err != nil && err != jetstream.ErrStreamNotFound {
			b.Fatal(err)
		}
		if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Managed: true}); err != nil {
			b.Fatal(err)
		}
	}
	checkCount := func(what string) {
		b.Helper()
		s, err := js.Stream(ctx, publisher.DefaultStream)
		if err != nil {
			b.Fatal(err)
		}
		if got := s.CachedInfo().State.Msgs; got != n {
			b.Fatalf("%s: stream holds %d messages, want %d", what, got, n)
		}
	}

	var relayTime, rawTime time.Duration
	for b.Loop() {
		b.StopTimer()
		freshStream()
		rawTime += rawPublish(b, nc, evs)
		checkCount("raw")
		freshStream()
		if _, err := st.Pool().Exec(ctx, `TRUNCATE job_events, outbox`); err != nil {
			b.Fatal(err)
		}
		storetest.InsertEvents(b, st, "bench", evs...)
		b.StartTimer()

		start := time.Now()
		published, err := relay.Drain(ctx)
		relayTime += time.Since(start)
		if err != nil || published != n {
			b.Fatalf("Drain = %d, %v; want %d, nil", published, err, n)
		}
		checkCount("relay")
	}
	relayRate := float64(b.N*n) / relayTime.Seconds()
	rawRate := float64(b.N*n) / rawTime.Seconds()
	b.ReportMetric(relayRate, "relay-events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(relayRate/rawRate, "relay/raw")
}

// rawPublish publishes evs as the relay would, with no database, no
// per-job rule and no batches: the same headers and bodies, the same
// window, then waits for every acknowledgement.
func rawPublish(b *testing.B, nc *nats.Conn, evs []event.Event) time.Duration {
	b.Helper()
	var failed atomic.Int64
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(publisher.DefaultMaxInFlight),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, ev := range evs {
		msg := &nats.Msg{Subject: ev.Subject, Data: ev.Payload, Header: nats.Header{
			jetstream.MsgIDHeader: []string{ev.ID},
			"Content-Type":        []string{event.ContentType},
		}}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("raw publish: acknowledgements did not arrive within a minute")
	}
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("raw publish: %d failed", f)
	}
	return elapsed
}
