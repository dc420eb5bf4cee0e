package console_test

import (
	"bufio"
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ossjobwatch/ossjobwatch/console"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv("CONSOLE_BENCH_DATABASE_URL") != "" {
		os.Exit(m.Run()) // the benchmark brings its own database
	}
	storetest.Main(m)
}

// Jobs the tests put in the simulated world, to check escaping and ids
// that are not path-safe.
const (
	scriptID   = "<script>alert(1)</script>"
	scriptDesc = `<img src=x onerror="alert(2)"> & "quotes"`
	oddID      = "a b/../c%2F?x=1&y=#frag"
)

type bundle struct {
	sim    *osssim.Simulator
	store  *store.Store
	poller *poller.Poller
	target poller.Target
	srv    *httptest.Server
}

type options struct {
	jobs           int
	user, password string
	poll           time.Duration
}

// setup sweeps a simulated world of opts.jobs jobs (plus the two odd ones
// and the two that need attention) three times, a few steps apart, and
// serves a console over it.
func setup(t testing.TB, opts options) *bundle {
	t.Helper()
	sim, ossCfg := osstest.Start(t, osssim.Config{Jobs: opts.jobs, Seed: 7, NeedsAttention: true})
	now := time.Now().UTC()
	// The script job is Active at the baseline and Failed at the next
	// sweep, whose status event DescribeJob enriches with its reasons.
	scriptJob := job.Job{ID: scriptID, Operation: "PutObjectTagging", Description: scriptDesc, Priority: 1,
		Status: job.StatusActive, CreationTime: now.Add(-time.Hour), Tasks: job.Tasks{Total: 10, Succeeded: 4}}
	sim.Put(job.Detail{Job: scriptJob})
	scriptJob.Status, scriptJob.TerminationTime, scriptJob.Tasks.Failed = job.StatusFailed, now.Add(-time.Minute), 6
	failed := job.Detail{Job: scriptJob, FailureReasons: []job.FailureReason{{Code: "<b>AccessDenied</b>", Reason: "<i>no</i> permission"}},
		StatusUpdateReason: "<u>bad manifest</u>"}
	sim.Put(job.Detail{Job: job.Job{ID: oddID, Operation: "RestoreObject", Description: "odd id", Priority: 1,
		Status: job.StatusActive, CreationTime: now.Add(-2 * time.Hour), Tasks: job.Tasks{Total: 100, Succeeded: 50}}})
	st := storetest.NewStore(t)
	p, err := poller.New(poller.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{sim: sim, store: st, poller: p,
		target: poller.Target{Name: "hz", Region: sim.Region(), Client: osstest.NewClient(t, ossCfg)}}
	for i := range 3 {
		if i > 0 {
			for range 5 {
				sim.Step()
			}
		}
		if i == 1 {
			sim.Put(failed)
		}
		b.sweep(t)
	}
	c, err := console.New(console.Config{Reader: st.Reader(), User: opts.user, Password: opts.password, PollInterval: opts.poll})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(c)
	t.Cleanup(b.srv.Close)
	t.Cleanup(c.Close) // first: the live streams end before the server waits for them
	return b
}

func (b *bundle) sweep(t testing.TB) {
	t.Helper()
	if _, err := b.poller.Sweep(context.Background(), b.target, poller.Full); err != nil {
		t.Fatalf("sweep: %v", err)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t testing.TB, srv *httptest.Server, path string, auth ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(body)}
}

// jobRows returns the (status, job id) of each row of a jobs table.
var jobRowPattern = regexp.MustCompile(`(?s)<tr>\s*<td><span class="st[^"]*">([^<]*)</span>.*?<td class="id"><a href="([^"]*)">([^<]*)</a>`)

type row struct{ status, href, id string }

func jobRows(body string) []row {
	var out []row
	for _, m := range jobRowPattern.FindAllStringSubmatch(body, -1) {
		out = append(out, row{status: m[1], href: html.UnescapeString(m[2]), id: html.UnescapeString(m[3])})
	}
	return out
}

func TestPages(t *testing.T) {
	t.Parallel()
	b := setup(t, options{jobs: 30})

	ov := get(t, b.srv, "/ui/")
	if ov.status != http.StatusOK {
		t.Fatalf("overview: %d\n%s", ov.status, ov.body)
	}
	for _, want := range []string{
		`<article class="card target" id="target-hz">`,
		`href="/ui/jobs?status=Failed&amp;target=hz"`, // counts link to the filtered list
		"Last sweep <span class=\"mode\">full</span>",
		"awaiting confirmation; OSS fails it",
		"events not yet published to NATS", // nothing publishes in this test
	} {
		if !strings.Contains(ov.body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	var counts map[string]int
	if err := b.store.Pool().QueryRow(t.Context(), `SELECT json_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM jobs WHERE removed_at IS NULL GROUP BY status) s`).Scan(&counts); err != nil {
		t.Fatal(err)
	}
	for status, n := range counts {
		want := regexp.MustCompile(`status=` + status + `&amp;target=hz"><span class="n">` + regexp.QuoteMeta(formatInt(n)) + `</span> ` + status + `</a>`)
		if !want.MatchString(ov.body) {
			t.Errorf("overview does not show %d %s jobs", n, status)
		}
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"} {
		if ov.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if csp := ov.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if ov.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", ov.header.Get("X-Content-Type-Options"))
	}
	if strings.Contains(ov.body, "<script>") || strings.Contains(ov.body, " style=") {
		t.Error("a page has an inline script or style, which the Content-Security-Policy forbids")
	}

	jobs := get(t, b.srv, "/ui/jobs")
	rows := jobRows(jobs.body)
	if jobs.status != http.StatusOK || len(rows) == 0 {
		t.Fatalf("jobs: %d, %d rows\n%s", jobs.status, len(rows), jobs.body)
	}
	var live int
	if err := b.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM jobs WHERE removed_at IS NULL`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if len(rows) != min(live, 50) {
		t.Errorf("jobs page shows %d rows of %d live jobs, want %d", len(rows), live, min(live, 50))
	}
	ids := map[string]row{}
	for _, r := range rows {
		ids[r.id] = r
	}
	for _, id := range []string{scriptID, oddID} {
		r, ok := ids[id]
		if !ok {
			t.Fatalf("jobs page lacks job %q", id)
		}
		// The link leads to the job, whatever its id holds.
		page := get(t, b.srv, r.href)
		if page.status != http.StatusOK || !strings.Contains(page.body, `<code id="job-id">`+html.EscapeString(id)+`</code>`) {
			t.Errorf("job page of %q (%s): %d\n%s", id, r.href, page.status, page.body)
		}
	}

	// Escaping: the job id and description are text, everywhere.
	for _, path := range []string{"/ui/", "/ui/jobs", "/ui/live", ids[scriptID].href} {
		body := get(t, b.srv, path).body
		if strings.Contains(body, "<script>alert(1)") || strings.Contains(body, "<img src=x") || strings.Contains(body, "<b>AccessDenied") {
			t.Errorf("%s: a job's id, description or failure reason is not escaped", path)
		}
	}
	jp := get(t, b.srv, ids[scriptID].href).body
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"&lt;img src=x onerror=&#34;alert(2)&#34;&gt; &amp; &#34;quotes&#34;",
		`class="timeline" id="timeline"`,
		"&lt;b&gt;AccessDenied&lt;/b&gt;", "&lt;i&gt;no&lt;/i&gt; permission", "&lt;u&gt;bad manifest&lt;/u&gt;",
		"Active → Failed", `<pre class="json" id="descriptor">{`,
	} {
		if !strings.Contains(jp, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	if !strings.Contains(jp, `class="seg st st-bad`) {
		t.Error("the timeline has no Failed segment")
	}

	for path, status := range map[string]int{
		"/ui/job?target=hz&id=nope":                           http.StatusNotFound,
		"/ui/job?target=nope&id=" + url.QueryEscape(scriptID): http.StatusNotFound,
		"/ui/job":                 http.StatusBadRequest,
		"/ui/nope":                http.StatusNotFound,
		"/ui/jobs?after=!!":       http.StatusBadRequest,
		"/ui/jobs?from=yesterday": http.StatusBadRequest,
		"/ui/static/console.css":  http.StatusOK,
		"/ui/static/console.js":   http.StatusOK,
		"/ui/live/events?after=x": http.StatusBadRequest,
	} {
		if got := get(t, b.srv, path).status; got != status {
			t.Errorf("GET %s: %d, want %d", path, got, status)
		}
	}
}

// formatInt shows n as the console does: 1,234.
func formatInt(n int) string {
	s := strconv.Itoa(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func TestJobsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t, options{jobs: 40})
	statuses := map[string]int{}
	for _, r := range jobRows(get(t, b.srv, "/ui/jobs").body) {
		statuses[r.status]++
	}
	for status := range statuses {
		rows := jobRows(get(t, b.srv, "/ui/jobs?status="+status).body)
		if len(rows) == 0 {
			t.Errorf("status=%s: no rows", status)
		}
		for _, r := range rows {
			if r.status != status {
				t.Errorf("status=%s shows a %s job", status, r.status)
			}
		}
	}
	if rows := jobRows(get(t, b.srv, "/ui/jobs?q="+url.QueryEscape("ALERT(1)")).body); len(rows) != 1 || rows[0].id != scriptID {
		t.Errorf("q=ALERT(1): %v, want the script job alone", rows)
	}
	if rows := jobRows(get(t, b.srv, "/ui/jobs?q=odd+id").body); len(rows) != 1 || rows[0].id != oddID {
		t.Errorf("q=odd id (the description): %v", rows)
	}
	if rows := jobRows(get(t, b.srv, "/ui/jobs?operation=RestoreObject").body); !slices.ContainsFunc(rows, func(r row) bool { return r.id == oddID }) {
		t.Errorf("operation=RestoreObject lacks the odd job: %v", rows)
	}
	if rows := jobRows(get(t, b.srv, "/ui/jobs?operation=NoSuchOperation").body); len(rows) != 0 {
		t.Errorf("operation=NoSuchOperation: %v", rows)
	}
	if rows := jobRows(get(t, b.srv, "/ui/jobs?target=elsewhere").body); len(rows) != 0 {
		t.Errorf("target=elsewhere: %d rows", len(rows))
	}
	day := time.Now().UTC().Format("2006-01-02")
	if rows := jobRows(get(t, b.srv, "/ui/jobs?from=2000-01-01&to=2000-12-31").body); len(rows) != 0 {
		t.Errorf("created in 2000: %d rows", len(rows))
	}
	if rows := jobRows(get(t, b.srv, "/ui/jobs?q=alert&from="+day+"&to="+day).body); len(rows) != 1 {
		t.Errorf("created today: %d rows, want the script job", len(rows))
	}
	// The form shows the filter it applied.
	if body := get(t, b.srv, "/ui/jobs?status=Failed&q=%3Cx%3E").body; !strings.Contains(body, `<option value="Failed" selected>`) || !strings.Contains(body, `value="&lt;x&gt;"`) {
		t.Error("the form does not show the filter applied")
	}
}

func TestJobsPaging(t *testing.T) {
	t.Parallel()
	b := setup(t, options{jobs: 120})
	var live int
	if err := b.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM jobs WHERE removed_at IS NULL`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	olderLink := regexp.MustCompile(`<a rel="next" href="([^"]*)">`)
	newerLink := regexp.MustCompile(`<a rel="prev" href="([^"]*)">`)
	seen := map[string]bool{}
	var pages [][]row
	path := "/ui/jobs"
	for {
		res := get(t, b.srv, path)
		rows := jobRows(res.body)
		pages = append(pages, rows)
		for _, r := range rows {
			if seen[r.id] {
				t.Fatalf("job %q shown twice", r.id)
			}
			seen[r.id] = true
		}
		if len(pages) > 1 && !newerLink.MatchString(res.body) {
			t.Errorf("page %d has no link to newer jobs", len(pages))
		}
		m := olderLink.FindStringSubmatch(res.body)
		if m == nil {
			break
		}
		path = html.UnescapeString(m[1])
		if len(pages) > 10 {
			t.Fatal("more than 10 pages")
		}
	}
	if len(seen) != live || len(pages) != (live+49)/50 {
		t.Errorf("paged through %d jobs in %d pages, want %d in %d", len(seen), len(pages), live, (live+49)/50)
	}
	// Back from the last page: the one before, exactly.
	last := get(t, b.srv, path).body
	m := newerLink.FindStringSubmatch(last)
	if m == nil {
		t.Fatal("the last page has no link to newer jobs")
	}
	back := jobRows(get(t, b.srv, html.UnescapeString(m[1])).body)
	if !slices.Equal(back, pages[len(pages)-2]) {
		t.Errorf("newer from the last page: %d rows, not the page before it", len(back))
	}
	// Paging with a text filter (another plan) covers every match once.
	var matches int
	if err := b.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM jobs WHERE removed_at IS NULL AND (strpos(lower(job_id), 'a') > 0 OR strpos(lower(description), 'a') > 0)`).Scan(&matches); err != nil {
		t.Fatal(err)
	}
	seenText := map[string]bool{}
	for path := "/ui/jobs?q=A"; path != ""; {
		res := get(t, b.srv, path).body
		for _, r := range jobRows(res) {
			if seenText[r.id] {
				t.Fatalf("q=A: job %q shown twice", r.id)
			}
			seenText[r.id] = true
		}
		path = ""
		if m := olderLink.FindStringSubmatch(res); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	if len(seenText) != matches || matches <= 50 {
		t.Errorf("q=A paged through %d jobs, want %d (more than a page)", len(seenText), matches)
	}
	// A filter survives paging.
	first := get(t, b.srv, "/ui/jobs?status=Complete").body
	if m := olderLink.FindStringSubmatch(first); m != nil && !strings.Contains(html.UnescapeString(m[1]), "status=Complete") {
		t.Errorf("the older link drops the filter: %s", m[1])
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, options{jobs: 5, user: "ops", password: "s3cret"})
	for _, tc := range []struct {
		auth []string
		want int
	}{
		{nil, http.StatusUnauthorized},
		{[]string{"ops", "wrong"}, http.StatusUnauthorized},
		{[]string{"nobody", "s3cret"}, http.StatusUnauthorized},
		{[]string{"ops", "s3cret"}, http.StatusOK},
	} {
		for _, path := range []string{"/ui/", "/ui/jobs", "/ui/static/console.css", "/ui/live/events?after=0"} {
			res := head(t, b.srv, path, tc.auth...)
			if res.status != tc.want {
				t.Errorf("GET %s with %v: %d, want %d", path, tc.auth, res.status, tc.want)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", res.header.Get("WWW-Authenticate"))
			}
			if strings.Contains(res.body, "s3cret") {
				t.Errorf("GET %s shows the password", path)
			}
		}
	}
}

// head is get for the status and headers alone, and a body's first bytes:
// it also serves for a stream, which does not end.
func head(t testing.TB, srv *httptest.Server, path string, auth ...string) response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 4096)
	n, _ := io.ReadAtLeast(res.Body, buf, 1)
	return response{status: res.StatusCode, header: res.Header, body: string(buf[:n])}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	r := st.Reader()
	for _, sql := range []string{
		`INSERT INTO targets (target) VALUES ('x')`,
		`DELETE FROM jobs`,
		`UPDATE job_events SET published_at = now()`,
		`CREATE TABLE x (y int)`,
	} {
		err := r.WithTx(t.Context(), func(tx pgx.Tx) error {
			_, err := tx.Exec(t.Context(), sql)
			return err
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "25006" { // read_only_sql_transaction
			t.Errorf("%s in the console's transaction: %v, want SQLSTATE 25006", sql, err)
		}
	}
	var n int
	if err := st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM targets`).Scan(&n); err != nil || n != 0 {
		t.Errorf("targets: %d rows, %v", n, err)
	}
}

func TestNotificationsShown(t *testing.T) {
	t.Parallel()
	b := setup(t, options{jobs: 5})
	if _, err := b.store.Pool().Exec(t.Context(), `
		INSERT INTO notify_deliveries (event_id, receiver, route, target, job_id, attempts, last_error, first_attempt_at, last_attempt_at, delivered_at)
		SELECT id, '<ops-dingtalk>', 'failures', target, job_id, 2, 'errcode 130101: <send too fast>', now(), now(), now()
		FROM job_events WHERE job_id = $1 AND sequence = 1`, scriptID); err != nil {
		t.Fatal(err)
	}
	body := get(t, b.srv, "/ui/job?target=hz&id="+url.QueryEscape(scriptID)).body
	for _, want := range []string{`id="deliveries"`, "&lt;ops-dingtalk&gt;", "failures", "errcode 130101: &lt;send too fast&gt;", "#1 discovered"} {
		if !strings.Contains(body, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	if body := get(t, b.srv, "/ui/job?target=hz&id="+url.QueryEscape(oddID)).body; strings.Contains(body, `id="deliveries"`) {
		t.Error("a job without notifications shows the table")
	}
}

// TestLive opens the stream, then sweeps: the sweep's events arrive, in
// the filter's selection only.
func TestLive(t *testing.T) {
	t.Parallel()
	b := setup(t, options{jobs: 30, poll: 20 * time.Millisecond})
	page := get(t, b.srv, "/ui/live?type=discovered")
	m := regexp.MustCompile(`data-stream="([^"]*)"`).FindStringSubmatch(page.body)
	if page.status != http.StatusOK || m == nil {
		t.Fatalf("live page: %d\n%s", page.status, page.body)
	}
	if !strings.Contains(page.body, "found in") {
		t.Error("the live page shows no recent discovered event")
	}
	streamURL := html.UnescapeString(m[1])
	if !strings.Contains(streamURL, "type=discovered") || !strings.Contains(streamURL, "after=") {
		t.Fatalf("stream URL %q", streamURL)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	events := stream(t, ctx, b.srv, streamURL)
	all := stream(t, ctx, b.srv, strings.Replace(streamURL, "type=discovered", "type=", 1))

	newID := "live-" + time.Now().Format("150405.000000")
	b.sim.Put(job.Detail{Job: job.Job{ID: newID, Operation: "PutObjectTagging", Description: "<arrives live>", Status: job.StatusNew, CreationTime: time.Now().UTC()}})
	for range 3 {
		b.sim.Step()
	}
	b.sweep(t)

	for data := range events {
		if !strings.Contains(data, `"kind":"discovered"`) {
			t.Errorf("type=discovered streamed %s", data)
		}
		if strings.Contains(data, `"jobId":"`+newID+`"`) {
			if !strings.Contains(data, `"description":"\u003carrives live\u003e"`) {
				t.Errorf("event %s", data)
			}
			break
		}
	}
	var kinds []string
	for data := range all {
		kinds = append(kinds, regexp.MustCompile(`"kind":"([a-z_]+)"`).FindStringSubmatch(data)[1])
		if strings.Contains(data, newID) {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the sweep's events did not arrive")
	}
	if !slices.ContainsFunc(kinds, func(k string) bool { return k != "discovered" }) {
		t.Logf("unfiltered stream: only discovered events before the new job: %v", kinds)
	}
}

// stream reads a live view's "job" events' data until ctx is done.
func stream(t *testing.T, ctx context.Context, srv *httptest.Server, path string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return readJobEvents(ctx, res)
}

// readJobEvents reads a stream's "job" events' data until ctx is done.
func readJobEvents(ctx context.Context, res *http.Response) <-chan string {
	out := make(chan string)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && typ == "job":
				select {
				case out <- strings.TrimPrefix(line, "data: "):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
