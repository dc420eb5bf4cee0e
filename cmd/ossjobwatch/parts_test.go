package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// The sweep verb publishes a large first sweep's parts as they commit: with
// the database holding the second part back until the first part's events
// have reached NATS, the sweep still ends, having published every event
// once.
func TestSweepPublishesPartsWhileItWrites(t *testing.T) {
	// Not parallel: the default credential chain reads the process
	// environment, set with t.Setenv.
	const jobs = 25000
	sim, ossCfg := osstest.Start(t, osssim.Config{Jobs: jobs, Seed: 7})
	ns := natstest.Start(t)
	dbURL := storetest.NewDatabaseURL(t)
	env := verbEnv(t, sim, ossCfg, ns, dbURL)
	if code, _, stderr := runSync(env, "migrate"); code != exitOK {
		t.Fatalf("migrate: %s", stderr)
	}

	// Every COPY into jobs after the first waits for the lock this test
	// holds: the second part cannot commit before the test lets it.
	ctx := t.Context()
	gate, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gate.Close(context.Background()) })
	if _, err := gate.Exec(ctx, `
		CREATE FUNCTION hold_later_parts() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF EXISTS (SELECT 1 FROM jobs) THEN PERFORM pg_advisory_xact_lock(4242); END IF;
			RETURN NULL;
		END $$;
		CREATE TRIGGER hold_later_parts BEFORE INSERT ON jobs FOR EACH STATEMENT EXECUTE FUNCTION hold_later_parts();
		SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			if _, err := gate.Exec(context.Background(), `SELECT pg_advisory_unlock(4242)`); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(release)

	nc := ns.Connect(t)
	var seen atomic.Int64
	firstPart := make(chan struct{})
	sub, err := nc.Subscribe("ossjobs.hz.>", func(*nats.Msg) {
		if seen.Add(1) == 10000 {
			close(firstPart)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stdout, stderr := runSync(env, "sweep")
		done <- result{code, stdout, stderr}
	}()
	select {
	case <-firstPart:
	case r := <-done:
		t.Fatalf("the sweep ended before the test let its second part commit: code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	case <-time.After(time.Minute):
		release()
		r := <-done
		t.Fatalf("the first part's events were not published while the second waited (%d seen); the sweep then said:\n%s%s", seen.Load(), r.stdout, r.stderr)
	}
	release()
	r := <-done

	var events int
	if err := gate.QueryRow(ctx, `SELECT count(*) FROM job_events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events < jobs || r.code != exitOK || !strings.Contains(r.stdout, fmt.Sprintf("published %d events to stream OSSJOBS; 0 pending", events)) {
		t.Fatalf("sweep: code %d, want %d events published\nstdout:\n%s\nstderr:\n%s", r.code, events, r.stdout, r.stderr)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, publisher.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(events) {
		t.Errorf("the stream holds %d messages, want the %d events", info.State.Msgs, events)
	}
}
