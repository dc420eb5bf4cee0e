package console_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// TestLiveStreamsEventsCommittedBelowThePagesTop: positions are taken at
// insert, not at commit. An event whose position is below the newest the
// live page read (its top), but whose transaction (another target's
// sweep) commits after the page was read, reaches the stream: the page
// hands the positions it found missing to the stream as holes, and a
// reconnecting stream (Last-Event-ID) reads the missing ones again too.
func TestLiveStreamsEventsCommittedBelowThePagesTop(t *testing.T) {
	t.Parallel()
	for _, reconnect := range []bool{false, true} {
		t.Run(map[bool]string{false: "page", true: "reconnect"}[reconnect], func(t *testing.T) {
			t.Parallel()
			st := storetest.NewStore(t)
			c, err := console.New(console.Config{Reader: st.Reader(), PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(c)
			t.Cleanup(srv.Close)
			t.Cleanup(c.Close)
			now := time.Now().UTC()
			// A sweep of target "sh" takes a position and has not committed yet.
			tx, err := st.Pool().Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			late := storetest.NewEvent(t, "sh", "late-job", 1, now)
			if _, err := tx.CopyFrom(t.Context(), pgx.Identifier{"job_events"},
				[]string{"id", "target", "job_id", "sequence", "type", "subject", "to_status", "payload", "observed_at"},
				pgx.CopyFromRows([][]any{{late.ID, "sh", late.JobID, late.Sequence, late.Type, late.Subject, string(late.To), late.Payload, late.ObservedAt}})); err != nil {
				t.Fatal(err)
			}
			// Meanwhile a sweep of "hz" commits a later position.
			storetest.InsertEvents(t, st, "hz", storetest.NewEvent(t, "hz", "early-job", 1, now))

			page := get(t, srv, "/ui/live")
			m := regexp.MustCompile(`data-stream="([^"]*)"`).FindStringSubmatch(page.body)
			if m == nil {
				t.Fatalf("live page: %d\n%s", page.status, page.body)
			}
			streamURL := html.UnescapeString(m[1])
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var events <-chan string
			if reconnect {
				var top int64
				if err := st.Pool().QueryRow(ctx, `SELECT max(pos) FROM job_events`).Scan(&top); err != nil {
					t.Fatal(err)
				}
				events = streamFrom(t, ctx, srv, "/ui/live/events", strconv.FormatInt(top, 10))
			}
			if err := tx.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !reconnect {
				events = stream(t, ctx, srv, streamURL)
			}
			for data := range events {
				if strings.Contains(data, `"jobId":"late-job"`) {
					return
				}
			}
			t.Error("an event committed below the stream's start position never reached the stream")
		})
	}
}

// streamFrom opens a stream as a reconnecting browser does, with
// Last-Event-ID, and returns its "job" events' data.
func streamFrom(t *testing.T, ctx context.Context, srv *httptest.Server, path, lastEventID string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", lastEventID)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	return readJobEvents(ctx, res)
}
