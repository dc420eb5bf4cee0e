package publisher_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/publisher"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:secret@h:4222", "nats://redacted@h:4222"},
		{"nats://s3cr3t-token@h:4222", "nats://redacted@h:4222"},
		{"nats://a:pw@h1:4222, tls://b:pw@h2:4222", "nats://redacted@h1:4222,tls://redacted@h2:4222"},
		{"user:secret@h:4222", "redacted@h:4222"},
		{"nats://user:pa%zzss@h:4222", "nats://redacted@h:4222"},
		{"nats://user:s3/c?r#t@h:4222", "nats://redacted@h:4222"},
		{"nats://user:s3c@r3t@[::1]:4222", "nats://redacted@[::1]:4222"},
	}
	for _, tt := range tests {
		if got := publisher.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// syncBuffer is a log destination safe for nats.go's callback goroutines.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written signal
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.written.send()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConnectLogsWithoutCredentials(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	logs := syncBuffer{written: newSignal()}
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	// The server asks for no credentials and ignores these.
	url := strings.Replace(srv.URL(), "nats://", "nats://user:hunter2@", 1)
	nc, err := publisher.Connect(url, "test", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	status := nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)
	srv.Restart(t)
	natstest.WaitStatus(t, status, nats.CONNECTED)
	// Handlers run on nats.go's callback goroutine, after the status change.
	waitFor(t, logs.written, "the reconnection logged", func() bool { return strings.Contains(logs.String(), "NATS reconnected") })

	got := logs.String()
	for _, want := range []string{"NATS connected", "NATS disconnected", "NATS reconnected", "redacted@127.0.0.1"} {
		if !strings.Contains(got, want) {
			t.Errorf("logs lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hunter2") {
		t.Errorf("logs show the password:\n%s", got)
	}

	_, err = publisher.Connect("nats://user:hunter2@127.0.0.1:1", "test", logger)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "redacted@127.0.0.1:1") {
		t.Errorf("Connect to nothing = %v, want an error naming the redacted URL", err)
	}
}
