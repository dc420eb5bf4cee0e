package console_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/console"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// lockedBuffer is a log sink for a server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestParametersPostgreSQLCannotHoldAre400: a NUL or bytes that are not
// UTF-8, in any parameter of any page (a page cursor's job id included),
// are the client's error, named in the answer, not a failed query logged
// as a server error.
func TestParametersPostgreSQLCannotHoldAre400(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	var logs lockedBuffer
	c, err := console.New(console.Config{Reader: st.Reader(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	t.Cleanup(c.Close)
	cursor := func(created, target, id string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(created + "\x00" + target + "\x00" + id))
	}
	for _, tc := range []struct{ path, param string }{
		{"/ui/job?target=hz&id=%00", "id"},
		{"/ui/job?target=%FF&id=x", "target"},
		{"/ui/jobs?q=%00", "q"},
		{"/ui/jobs?q=%FF", "q"},
		{"/ui/jobs?target=%FF", "target"},
		{"/ui/jobs?operation=%00", "operation"},
		{"/ui/jobs?status=Active&status=%FF", "status"},
		{"/ui/jobs?from=%00", "from"},
		{"/ui/jobs?after=" + cursor("", "hz", "a\x00b"), "after"},
		{"/ui/jobs?before=" + cursor("", "\xff", "a"), "before"},
		{"/ui/live?target=%00", "target"},
		{"/ui/live?q=%FF", "q"},
		{"/ui/live?status=%00&type=x", "status"},
		{"/ui/live/events?after=0&q=%00", "q"},
	} {
		res := getWithin(t, srv, tc.path, 10*time.Second) // a stream that starts does not end
		if res.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", tc.path, res.status)
		}
		if !strings.Contains(res.body, tc.param+":") && !strings.Contains(res.body, "parameter "+tc.param) {
			t.Errorf("GET %s: the answer does not name %s:\n%s", tc.path, tc.param, res.body)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("bad parameters logged as errors:\n%s", logs.String())
	}
}

// getWithin is get, but gives up on the body after d.
func getWithin(t *testing.T, srv *httptest.Server, path string, d time.Duration) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(body)}
}
