package natstest_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
)

func TestRestartKeepsStreamsAndClientsReconnect(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.a", []byte("one")); err != nil {
		t.Fatal(err)
	}

	status := nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)
	url := srv.URL()
	srv.Shutdown()
	natstest.WaitStatus(t, status, nats.RECONNECTING)
	srv.Restart(t)
	natstest.WaitStatus(t, status, nats.CONNECTED)
	if srv.URL() != url {
		t.Errorf("URL after Restart = %s, want %s", srv.URL(), url)
	}

	if _, err := js.Publish(ctx, "s.b", []byte("two")); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("stream holds %d messages after restart, want 2", n)
	}
}
