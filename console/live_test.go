package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/console"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// stuckWriter is a client that keeps its connection open and reads
// nothing: once the socket buffers are full, every Write blocks until the
// write deadline, if one is set, passes.
type stuckWriter struct {
	header   http.Header
	deadline chan time.Time
}

func newStuckWriter() *stuckWriter {
	return &stuckWriter{header: http.Header{}, deadline: make(chan time.Time, 1)}
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Flush()              {}

func (w *stuckWriter) SetWriteDeadline(t time.Time) error {
	select {
	case <-w.deadline: // replaced
	default:
	}
	w.deadline <- t
	return nil
}

func (w *stuckWriter) Write([]byte) (int, error) {
	var timer <-chan time.Time
	for {
		select {
		case d := <-w.deadline:
			timer = nil
			if !d.IsZero() {
				timer = time.After(time.Until(d))
			}
		case <-timer:
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// TestStreamOfAClientThatReadsNothingEnds: a live view's client that
// stops reading does not hold its stream, and its slot of MaxStreams, for
// ever: the stream ends when a write outlasts WriteTimeout, or at once
// when the console is closed (the server's shutdown).
func TestStreamOfAClientThatReadsNothingEnds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		writeTimeout time.Duration
		close        bool
	}{
		{name: "write timeout", writeTimeout: 300 * time.Millisecond},
		{name: "close", writeTimeout: time.Hour, close: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := storetest.NewStore(t)
			c, err := console.New(console.Config{Reader: st.Reader(), MaxStreams: 1, WriteTimeout: tc.writeTimeout, PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			done := make(chan struct{})
			go func() {
				defer close(done)
				c.ServeHTTP(newStuckWriter(), httptest.NewRequest(http.MethodGet, "/ui/live/events?after=0", nil))
			}()
			time.Sleep(100 * time.Millisecond)
			if tc.close {
				c.Close()
			} else {
				// Meanwhile the slot is taken.
				rec := httptest.NewRecorder()
				c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/live/events?after=0", nil))
				if rec.Code != http.StatusServiceUnavailable {
					t.Fatalf("a second stream with MaxStreams 1: %d, want 503", rec.Code)
				}
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream of a client that reads nothing did not end")
			}
			if tc.close {
				return
			}
			// The slot is free again.
			srv := httptest.NewServer(c)
			defer srv.Close()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/ui/live/events?after=0", nil)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("a stream after the stuck one ended: %d, want 200", res.StatusCode)
			}
		})
	}
}
