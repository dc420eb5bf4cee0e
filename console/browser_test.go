package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// chromiumPath is the browser TestBrowser drives: CONSOLE_CHROMIUM, or
// Debian's /usr/bin/chromium, which .ci/install-chromium.sh installs.
func chromiumPath() string {
	if p := os.Getenv("CONSOLE_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// TestBrowser drives a real Chromium through the console: the overview's
// counts, a filter narrowing the jobs, a job's timeline, and the live view
// showing an event a sweep made after the page was opened. It never skips:
// without Chromium it fails and says how to install it. Screenshots of the
// overview and a job page go to $CONSOLE_SCREENSHOTS (or the test's
// temporary directory).
func TestBrowser(t *testing.T) {
	t.Parallel()
	path := chromiumPath()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Chromium is needed at %s for the console's browser test (%v): run .ci/install-chromium.sh (make test does), or set CONSOLE_CHROMIUM", path, err)
	}
	shots := os.Getenv("CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := setup(t, options{jobs: 60, poll: 100 * time.Millisecond})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	// A script that ran (an unescaped id), a page error, or a
	// Content-Security-Policy violation (a console error) fails the test.
	var mu sync.Mutex
	var problems []string
	problem := func(p string) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, p)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			problem("a dialog opened: " + ev.Message)
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}) //nolint:errcheck
		case *runtime.EventExceptionThrown:
			problem("exception: " + ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				problem("console error: " + ev.Entry.Text)
			}
		}
	}); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the log domain: %v", err)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(what, expr string, v any) {
		t.Helper()
		res, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
		if err == nil {
			err = json.Unmarshal(res, v)
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", what, expr, err)
		}
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		file := filepath.Join(shots, name)
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", file)
	}

	// The overview shows the counts the database holds.
	var completeJobs int
	if err := b.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM jobs WHERE removed_at IS NULL AND status = 'Complete'`).Scan(&completeJobs); err != nil {
		t.Fatal(err)
	}
	do("overview", chromedp.Navigate(b.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`#target-hz .counts`)))
	var counts string
	eval("overview counts", `document.querySelector('#target-hz .counts').textContent`, &counts)
	if want := fmt.Sprintf("%d Complete", completeJobs); !strings.Contains(strings.Join(strings.Fields(counts), " "), want) {
		t.Errorf("overview counts %q lack %q", counts, want)
	}
	screenshot("overview.png")

	// A filter narrows the table, and the view is a link.
	var all, failed int
	var statuses []string
	do("jobs", chromedp.Navigate(b.srv.URL+"/ui/jobs"), chromedp.WaitVisible(chromedp.CSS(`#jobs`)))
	eval("rows", `document.querySelectorAll('#jobs tbody tr').length`, &all)
	do("filter", chromedp.SetValue(chromedp.CSS(`select[name="status"]`), "Failed"),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a.reset`))) // shown once a filter applies
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	eval("filtered rows", `document.querySelectorAll('#jobs tbody tr').length`, &failed)
	eval("statuses", `[...document.querySelectorAll('#jobs tbody tr td:first-child .st')].map(e => e.textContent)`, &statuses)
	if !strings.Contains(location, "status=Failed") || failed == 0 || failed >= all {
		t.Errorf("filter status=Failed: %s shows %d of %d rows", location, failed, all)
	}
	for _, s := range statuses {
		if s != "Failed" {
			t.Errorf("filtered table shows a %s job", s)
		}
	}

	// A job page shows its timeline; its id is text.
	var segments int
	var id string
	do("job", chromedp.Navigate(b.srv.URL+"/ui/job?target=hz&id="+url.QueryEscape(scriptID)), chromedp.WaitVisible(chromedp.CSS(`#timeline`)))
	eval("segments", `document.querySelectorAll('#timeline .seg').length`, &segments)
	eval("job id", `document.querySelector('#job-id').textContent`, &id)
	if segments < 2 || id != scriptID {
		t.Errorf("job page: %d timeline segments, id %q", segments, id)
	}
	screenshot("job.png")

	// The live view shows an event a sweep made after the page opened.
	do("live", chromedp.Navigate(b.srv.URL+"/ui/live"), chromedp.WaitVisible(chromedp.CSS(`#live-state[data-state="open"]`)))
	newID := "browser-" + time.Now().Format("150405.000")
	b.sim.Put(job.Detail{Job: job.Job{ID: newID, Operation: "PutObjectTagging", Description: "<b>arrived live</b>", Status: job.StatusNew, CreationTime: time.Now().UTC()}})
	b.sweep(t)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`[...document.querySelectorAll('#live-rows td.id a')].some(a => a.textContent === %q)`, newID),
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the live view did not show the new job's event: %v", err)
	}
	var desc string
	eval("live row", fmt.Sprintf(`[...document.querySelectorAll('#live-rows tr')].find(tr => tr.querySelector('td.id a').textContent === %q).querySelector('td.desc').innerHTML`, newID), &desc)
	if desc != "&lt;b&gt;arrived live&lt;/b&gt;" {
		t.Errorf("live row description HTML = %q, want the text escaped", desc)
	}
	screenshot("live.png")

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}
