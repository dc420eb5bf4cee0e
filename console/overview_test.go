package console_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/console"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// TestOverviewSaysOnlyTheFirstAreShownPastTheLimit: the overview lists up
// to store.AttentionLimit jobs needing attention and says there are more
// only when there are: exactly the limit are all shown.
func TestOverviewSaysOnlyTheFirstAreShownPastTheLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		jobs int
		more bool
	}{
		{jobs: store.AttentionLimit - 1},
		{jobs: store.AttentionLimit},
		{jobs: store.AttentionLimit + 1, more: true},
	} {
		st := storetest.NewStore(t)
		if _, err := st.Pool().Exec(t.Context(), `
			INSERT INTO jobs (target, job_id, status, descriptor, first_seen_at, last_seen_at, last_changed_at, last_sequence, suspended_since, creation_time)
			SELECT 'hz', 'job-' || g, 'Suspended', '{}', now(), now(), now(), 1, now() - g * interval '1 minute', now()
			FROM generate_series(1, $1::int) AS g`, tc.jobs); err != nil {
			t.Fatal(err)
		}
		c, err := console.New(console.Config{Reader: st.Reader()})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(c)
		t.Cleanup(srv.Close)
		body := get(t, srv, "/ui/").body
		if n, want := strings.Count(body, "awaiting confirmation; OSS fails it"), min(tc.jobs, store.AttentionLimit); n != want {
			t.Errorf("%d jobs need attention: %d shown, want %d", tc.jobs, n, want)
		}
		if more := strings.Contains(body, "Only the first 100 are shown"); more != tc.more {
			t.Errorf("%d jobs need attention: the page says only the first 100 are shown: %t, want %t", tc.jobs, more, tc.more)
		}
	}
}
