package oss_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
)

// attempts counts the HTTP attempts a client makes, through OnAttempt.
type attempts struct {
	mu    sync.Mutex
	codes []string
}

func (a *attempts) hook(cfg *oss.Config) {
	cfg.OnAttempt = func(op string, status int, code string) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.codes = append(a.codes, code)
	}
}

func (a *attempts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.codes)
}

// listAll pages through everything and returns the ids in order.
func listAll(t *testing.T, c *oss.Client, opts oss.ListJobsOptions) ([]string, *oss.Pager) {
	t.Helper()
	p := c.Pager(opts)
	var ids []string
	for page, err := range p.All(t.Context()) {
		if err != nil {
			t.Fatalf("listing: %v", err)
		}
		for _, j := range page.Jobs {
			ids = append(ids, j.ID)
		}
	}
	return ids, p
}

func TestListEveryJobExactlyOnce(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{Jobs: 5000, Seed: 7})
	c := osstest.NewClient(t, cfg)
	want := sim.Jobs()
	for _, tt := range []struct {
		maxKeys, pages int
	}{{1000, 5}, {7, 715}} {
		ids, p := listAll(t, c, oss.ListJobsOptions{MaxKeys: tt.maxKeys})
		if !p.Complete() || p.Pages() != tt.pages || p.Jobs() != len(want) {
			t.Errorf("max-keys %d: complete=%v pages=%d jobs=%d, want complete, %d pages, %d jobs",
				tt.maxKeys, p.Complete(), p.Pages(), p.Jobs(), tt.pages, len(want))
		}
		seen := map[string]int{}
		for _, id := range ids {
			seen[id]++
		}
		for _, d := range want {
			if seen[d.ID] != 1 {
				t.Fatalf("max-keys %d: job %s listed %d times, want once", tt.maxKeys, d.ID, seen[d.ID])
			}
		}
		if len(ids) != len(want) {
			t.Errorf("max-keys %d: %d ids, want %d", tt.maxKeys, len(ids), len(want))
		}
	}
}

func TestTokensWithSpecialCharactersRoundTrip(t *testing.T) {
	t.Parallel()
	_, cfg := osstest.Start(t, osssim.Config{Jobs: 300, Seed: 3})
	c := osstest.NewClient(t, cfg)
	found := map[rune]bool{}
	token, pages := "", 0
	for {
		page, err := c.ListJobs(t.Context(), oss.ListJobsOptions{MaxKeys: 3, ContinuationToken: token})
		if err != nil {
			t.Fatalf("page %d with token %q: %v", pages+1, token, err)
		}
		pages++
		for _, r := range page.NextToken {
			if strings.ContainsRune("+/=:?#", r) {
				found[r] = true
			}
		}
		if page.NextToken == "" {
			break
		}
		token = page.NextToken
	}
	if pages != 100 {
		t.Errorf("%d pages, want 100", pages)
	}
	for _, r := range "+/=:?#" {
		if !found[r] {
			t.Errorf("no token held %q, so its encoding went untested", r)
		}
	}
}

func TestStatusFilter(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{Jobs: 2000, Seed: 11})
	c := osstest.NewClient(t, cfg)
	filter := []job.Status{job.StatusActive, job.StatusFailed}
	want := 0
	for _, d := range sim.Jobs() {
		if d.Status == job.StatusActive || d.Status == job.StatusFailed {
			want++
		}
	}
	if want == 0 {
		t.Fatal("the seeded world has no Active or Failed job; pick another seed")
	}
	p := c.Pager(oss.ListJobsOptions{Statuses: filter, MaxKeys: 50})
	got := 0
	for page, err := range p.All(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			if j.Status != job.StatusActive && j.Status != job.StatusFailed {
				t.Fatalf("job %s has status %s, outside the filter", j.ID, j.Status)
			}
			got++
		}
	}
	if got != want {
		t.Errorf("filtered listing has %d jobs, want %d", got, want)
	}

	_, err := c.ListJobs(t.Context(), oss.ListJobsOptions{Statuses: []job.Status{"Done"}})
	if err == nil || !strings.Contains(err.Error(), `"Done"`) {
		t.Errorf("unknown status filter: err = %v, want one naming \"Done\"", err)
	}
	for _, mk := range []int{-1, 1001} {
		if _, err := c.ListJobs(t.Context(), oss.ListJobsOptions{MaxKeys: mk}); err == nil || !strings.Contains(err.Error(), "max-keys") {
			t.Errorf("max-keys %d: err = %v, want one naming max-keys", mk, err)
		}
	}
}

func TestWrongSecretIsAClearErrorWithoutTheSecret(t *testing.T) {
	t.Parallel()
	_, cfg := osstest.Start(t, osssim.Config{Jobs: 10})
	const secret = "definitely-not-the-secret-0123456789"
	cfg.Credentials = oss.StaticCredentials(osssim.DefaultCredential.AccessKeyID, secret, "")
	var a attempts
	a.hook(&cfg)
	c := osstest.NewClient(t, cfg)

	_, err := c.ListJobs(t.Context(), oss.ListJobsOptions{})
	var apiErr *oss.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *oss.APIError", err, err)
	}
	if apiErr.StatusCode != 403 || apiErr.Code != "SignatureDoesNotMatch" || apiErr.RequestID == "" || apiErr.Retryable() {
		t.Errorf("APIError = %+v", apiErr)
	}
	msg := err.Error()
	for _, want := range []string{"ListJobs", "403", "SignatureDoesNotMatch", apiErr.RequestID} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, secret) || strings.Contains(msg, osssim.DefaultCredential.AccessKeySecret) {
		t.Errorf("error %q holds a secret", msg)
	}
	if n := a.count(); n != 1 {
		t.Errorf("%d attempts, want 1: an authentication failure must not be retried", n)
	}

	cfg.Credentials = oss.StaticCredentials("LTAIunknownKey", secret, "")
	c = osstest.NewClient(t, cfg)
	if _, err := c.ListJobs(t.Context(), oss.ListJobsOptions{}); !errors.As(err, &apiErr) || apiErr.Code != "InvalidAccessKeyId" {
		t.Errorf("unknown key: err = %v, want InvalidAccessKeyId", err)
	}
}

func TestSignatureVersionsAndSTS(t *testing.T) {
	t.Parallel()
	sts := osssim.Credential{AccessKeyID: "STS.NUgYrLnoC", AccessKeySecret: "sts-secret-abc", SecurityToken: "CAIS+token/with=chars"}
	sim, cfg := osstest.Start(t, osssim.Config{Jobs: 20, Credentials: []osssim.Credential{osssim.DefaultCredential, sts}})
	_ = sim
	for _, v := range []oss.SignatureVersion{oss.SignatureV4, oss.SignatureV1} {
		for _, cred := range []osssim.Credential{osssim.DefaultCredential, sts} {
			c := cfg
			c.SignatureVersion = v
			c.Credentials = oss.StaticCredentials(cred.AccessKeyID, cred.AccessKeySecret, cred.SecurityToken)
			client := osstest.NewClient(t, c)
			ids, p := listAll(t, client, oss.ListJobsOptions{MaxKeys: 7})
			if !p.Complete() || len(ids) != 20 {
				t.Errorf("%s with %s: %d jobs, complete %v", v, cred.AccessKeyID, len(ids), p.Complete())
			}
		}
	}
	c := cfg
	c.Credentials = oss.StaticCredentials(sts.AccessKeyID, sts.AccessKeySecret, "stolen-token")
	_, err := osstest.NewClient(t, c).ListJobs(t.Context(), oss.ListJobsOptions{})
	var apiErr *oss.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 {
		t.Errorf("wrong STS token: err = %v, want a 403", err)
	}
	if err != nil && strings.Contains(err.Error(), "stolen-token") {
		t.Errorf("error %q holds the security token", err)
	}
}

func TestThrottlingRetries(t *testing.T) {
	t.Parallel()
	t.Run("503 twice then success", func(t *testing.T) {
		t.Parallel()
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 10})
		var a attempts
		a.hook(&cfg)
		sim.FailNext(2, osssim.Failure{Status: 503, Code: "MetaOperationQpsLimitExceeded"})
		page, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{})
		if err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		if len(page.Jobs) != 10 || a.count() != 3 {
			t.Errorf("%d jobs after %d attempts, want 10 after 3", len(page.Jobs), a.count())
		}
	})
	t.Run("503 forever gives up after MaxAttempts", func(t *testing.T) {
		t.Parallel()
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 10})
		cfg.MaxAttempts = 4
		var a attempts
		a.hook(&cfg)
		if err := sim.SetFaults(osssim.Faults{Throttle503: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{})
		var apiErr *oss.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || !apiErr.Throttled() || !apiErr.Retryable() {
			t.Fatalf("err = %v, want a throttling APIError", err)
		}
		if a.count() != 4 {
			t.Errorf("%d attempts, want 4", a.count())
		}
	})
	t.Run("500 is retried", func(t *testing.T) {
		t.Parallel()
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 10})
		sim.FailNext(1, osssim.Failure{Status: 500})
		if _, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{}); err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
	})
	t.Run("429 waits for Retry-After", func(t *testing.T) {
		t.Parallel()
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 10})
		cfg.MaxBackoff = 5 * time.Second
		sim.FailNext(1, osssim.Failure{Status: 429, RetryAfter: time.Second})
		start := time.Now()
		if _, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{}); err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		if waited := time.Since(start); waited < 900*time.Millisecond {
			t.Errorf("retried after %v, before the 1s Retry-After", waited)
		}
	})
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	t.Run("malformed XML rejects the page, not retried", func(t *testing.T) {
		t.Parallel()
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 30})
		c := osstest.NewClient(t, cfg)
		// The first page is fine, the second malformed: the pager must stop
		// with an error and report the listing incomplete.
		sim.FailNext(1, osssim.Failure{})
		sim.FailNext(1, osssim.Failure{Malformed: true})
		p := c.Pager(oss.ListJobsOptions{MaxKeys: 10})
		var pages int
		var err error
		for page, e := range p.All(t.Context()) {
			if e != nil {
				err = e
				break
			}
			if len(page.Jobs) != 10 {
				t.Errorf("page %d has %d jobs", pages+1, len(page.Jobs))
			}
			pages++
		}
		var de *oss.DecodeError
		if !errors.As(err, &de) || de.RequestID == "" {
			t.Fatalf("err = %v, want a DecodeError with a request id", err)
		}
		if pages != 1 || p.Complete() {
			t.Errorf("pages=%d complete=%v, want 1 page, incomplete", pages, p.Complete())
		}
	})
	t.Run("truncated body is retried", func(t *testing.T) {
		t.Parallel()
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 30})
		sim.FailNext(2, osssim.Failure{Truncate: true})
		page, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{})
		if err != nil || len(page.Jobs) != 30 {
			t.Fatalf("ListJobs = %v, %v; want 30 jobs after retries", page, err)
		}
	})
	t.Run("truncated body every time is an error", func(t *testing.T) {
		t.Parallel()
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 30})
		cfg.MaxAttempts = 3
		sim.FailNext(3, osssim.Failure{Truncate: true})
		page, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{})
		if err == nil || page != nil {
			t.Fatalf("ListJobs = %v, %v; want no page and an error", page, err)
		}
		if !strings.Contains(err.Error(), "unexpected EOF") {
			t.Errorf("err = %v, want it to say the body broke off", err)
		}
	})
	t.Run("response over the cap", func(t *testing.T) {
		t.Parallel()
		_, cfg := osstest.Start(t, osssim.Config{Jobs: 100})
		cfg.MaxResponseBytes = 4096
		_, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{})
		if !errors.Is(err, oss.ErrResponseTooLarge) {
			t.Fatalf("err = %v, want ErrResponseTooLarge", err)
		}
	})
	t.Run("slow answer hits the call timeout", func(t *testing.T) {
		t.Parallel()
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 10})
		cfg.CallTimeout = 200 * time.Millisecond
		sim.FailNext(10, osssim.Failure{Delay: time.Minute})
		_, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline", err)
		}
	})
}

func TestPagerStopsPastMaxPages(t *testing.T) {
	t.Parallel()
	_, cfg := osstest.Start(t, osssim.Config{Jobs: 100})
	cfg.MaxPages = 3
	p := osstest.NewClient(t, cfg).Pager(oss.ListJobsOptions{MaxKeys: 10})
	var err error
	for _, e := range p.All(t.Context()) {
		err = e
	}
	if err == nil || !strings.Contains(err.Error(), "3 pages") || p.Complete() || p.Pages() != 3 {
		t.Fatalf("err = %v, pages %d, complete %v; want a stop after 3 pages", err, p.Pages(), p.Complete())
	}
}

func TestUnknownElementsAndStatusesAreTolerated(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{Jobs: 200, Seed: 5, UnknownElements: true})
	sim.Put(job.Detail{Job: job.Job{ID: "odd-status-job", Status: "Archiving", Operation: "PutObjectTagging"}})
	ids, p := listAll(t, osstest.NewClient(t, cfg), oss.ListJobsOptions{})
	if !p.Complete() || len(ids) != 201 {
		t.Fatalf("%d jobs, complete %v; want 201", len(ids), p.Complete())
	}
	page, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{MaxKeys: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var odd *job.Job
	for i := range page.Jobs {
		if page.Jobs[i].ID == "odd-status-job" {
			odd = &page.Jobs[i]
		}
	}
	if odd == nil || odd.Status != "Archiving" {
		t.Fatalf("odd job = %+v, want status Archiving kept verbatim", odd)
	}
}

func TestListingMatchesTheWorld(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{Jobs: 500, Seed: 9})
	for range 20 {
		sim.Step()
	}
	page, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	world := sim.Jobs()
	if len(page.Jobs) != len(world) {
		t.Fatalf("%d jobs listed, world has %d", len(page.Jobs), len(world))
	}
	for i, d := range world {
		got, want := page.Jobs[i], d.Job
		want.CreationTime, want.TerminationTime = want.CreationTime.Truncate(time.Second).UTC(), want.TerminationTime.Truncate(time.Second)
		if !want.TerminationTime.IsZero() {
			want.TerminationTime = want.TerminationTime.UTC()
		}
		if !got.CreationTime.Equal(want.CreationTime) || !got.TerminationTime.Equal(want.TerminationTime) {
			t.Fatalf("job %s times = %v/%v, want %v/%v", d.ID, got.CreationTime, got.TerminationTime, want.CreationTime, want.TerminationTime)
		}
		got.CreationTime, got.TerminationTime, want.CreationTime, want.TerminationTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !got.Equal(want) {
			t.Fatalf("job %d decoded as\n%+v\nworld has\n%+v", i, got, want)
		}
	}
}

func TestDescribeJob(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{Jobs: 50, Seed: 2})
	c := osstest.NewClient(t, cfg)
	want := job.Detail{
		Job:                job.Job{ID: "failed-job", Status: job.StatusFailed, Operation: "PutObjectAcl", Priority: 4, Tasks: job.Tasks{Total: 10, Failed: 10}},
		FailureReasons:     []job.FailureReason{{Code: "AccessDenied", Reason: "the role cannot read the manifest"}},
		StatusUpdateReason: "stopped by the system",
	}
	sim.Put(want)
	got, err := c.DescribeJob(t.Context(), "failed-job")
	if err != nil {
		t.Fatalf("DescribeJob: %v", err)
	}
	if got.ID != want.ID || got.Status != want.Status || got.StatusUpdateReason != want.StatusUpdateReason ||
		len(got.FailureReasons) != 1 || got.FailureReasons[0] != want.FailureReasons[0] || got.Tasks != want.Tasks {
		t.Errorf("DescribeJob = %+v, want %+v", got, want)
	}

	_, err = c.DescribeJob(t.Context(), "no-such-job")
	var apiErr *oss.APIError
	if !errors.As(err, &apiErr) || !apiErr.NotFound() || apiErr.EC != oss.ECNoSuchJob || apiErr.Retryable() {
		t.Fatalf("unknown job: err = %v, want a not-found APIError with EC %s", err, oss.ECNoSuchJob)
	}
	if !strings.Contains(err.Error(), oss.ECNoSuchJob) {
		t.Errorf("error %q does not name the EC", err)
	}
}

func TestDefaultCredentialsFromEnvironment(t *testing.T) {
	// t.Setenv forbids t.Parallel.
	_, cfg := osstest.Start(t, osssim.Config{Jobs: 5})
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", osssim.DefaultCredential.AccessKeyID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", osssim.DefaultCredential.AccessKeySecret)
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	cfg.Credentials = nil // the default chain
	page, err := osstest.NewClient(t, cfg).ListJobs(t.Context(), oss.ListJobsOptions{})
	if err != nil || len(page.Jobs) != 5 {
		t.Fatalf("ListJobs with env credentials = %v, %v", page, err)
	}

	// Concurrent calls share one chain: the adapter must serialise them.
	c := osstest.NewClient(t, cfg)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range 8 {
		wg.Go(func() {
			if _, err := c.ListJobs(context.Background(), oss.ListJobsOptions{MaxKeys: 1}); err != nil {
				failures.Add(1)
			}
		})
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d concurrent calls failed", failures.Load())
	}
}

func TestNewClientValidates(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]oss.Config{
		"no region":         {},
		"bad signature":     {Region: "cn-hangzhou", SignatureVersion: "v3"},
		"negative attempts": {Region: "cn-hangzhou", MaxAttempts: -1},
	} {
		cfg.Credentials = oss.StaticCredentials("a", "b", "")
		if _, err := oss.NewClient(cfg); err == nil {
			t.Errorf("%s: NewClient accepted %+v", name, cfg)
		}
	}
	c, err := oss.NewClient(oss.Config{Region: "cn-shanghai", Internal: true, Credentials: oss.StaticCredentials("a", "b", "")})
	if err != nil || c.Endpoint() != "https://oss-cn-shanghai-internal.aliyuncs.com" {
		t.Errorf("internal endpoint = %v, %v", c, err)
	}
}

func TestPagerStopsOnARepeatedToken(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{Jobs: 100})
	p := osstest.NewClient(t, cfg).Pager(oss.ListJobsOptions{MaxKeys: 10})
	sim.FailNext(1, osssim.Failure{Status: 0})         // page 1 as it is
	sim.FailNext(1, osssim.Failure{RepeatToken: true}) // page 2 hands back page 1's token
	var err error
	pages := 0
	for _, e := range p.All(t.Context()) {
		if e != nil {
			err = e
			break
		}
		pages++
	}
	if err == nil || !strings.Contains(err.Error(), "repeated a continuation token") || p.Complete() {
		t.Fatalf("err = %v after %d pages, complete %v; want a repeated-token error", err, pages, p.Complete())
	}
	if pages != 1 {
		t.Errorf("%d pages yielded before the loop was caught, want 1", pages)
	}
}

// TestOpaqueJobIDsRoundTrip: job ids are opaque. Every byte OSS sent comes
// back from ListJobs, and DescribeJob asked with that exact id finds the
// job, under both signature versions; the id trimmed is another id.
func TestOpaqueJobIDsRoundTrip(t *testing.T) {
	t.Parallel()
	ids := []string{
		" job 1 ",
		"job+1%2B/=?#&",
		"任务 7\t",
		"%20",
		"a+b",
		"a b",
	}
	sim, cfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	for _, id := range ids {
		sim.Put(job.Detail{Job: job.Job{ID: id, Status: job.StatusFailed, Operation: "PutObjectTagging"}, StatusUpdateReason: "reason of " + id})
	}
	for _, v := range []oss.SignatureVersion{oss.SignatureV4, oss.SignatureV1} {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			cfg := cfg
			cfg.SignatureVersion = v
			c := osstest.NewClient(t, cfg)
			// Two a page, so continuation tokens carry the odd ids too.
			listed, _ := listAll(t, c, oss.ListJobsOptions{MaxKeys: 2})
			want := slices.Sorted(slices.Values(ids))
			if !slices.Equal(listed, want) {
				t.Fatalf("ListJobs ids = %q, want %q", listed, want)
			}
			for _, id := range listed {
				d, err := c.DescribeJob(t.Context(), id)
				if err != nil {
					t.Errorf("DescribeJob(%q): %v", id, err)
					continue
				}
				if d.ID != id || d.StatusUpdateReason != "reason of "+id {
					t.Errorf("DescribeJob(%q) = job %q with reason %q", id, d.ID, d.StatusUpdateReason)
				}
			}
			// The ids differ from their trimmed and unescaped forms, and
			// those are jobs OSS does not have.
			for _, other := range []string{"job 1", "job 1 ", "job+1+/=?#&", "job 1%2B/=?#&", "任务 7", "a%2Bb", "a%20b", " "} {
				_, err := c.DescribeJob(t.Context(), other)
				var apiErr *oss.APIError
				if !errors.As(err, &apiErr) || !apiErr.NotFound() {
					t.Errorf("DescribeJob(%q) = %v, want NoSuchJob", other, err)
				}
			}
		})
	}
}

// TestRateLimit: one limiter per client, consulted before every HTTP
// attempt, ListJobs and DescribeJob alike, retries included. A rate of one
// request an hour makes "had to wait" unmistakable without measuring time.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	const perHour = 1.0 / 3600
	setup := func(t *testing.T, burst int, callTimeout time.Duration) (*osssim.Simulator, *oss.Client, chan string) {
		sim, cfg := osstest.Start(t, osssim.Config{Jobs: 5})
		sim.Put(job.Detail{Job: job.Job{ID: "j", Status: job.StatusFailed}})
		cfg.Rate, cfg.Burst, cfg.CallTimeout = perHour, burst, callTimeout
		waiting := make(chan string, 10)
		cfg.OnRateWait = func(op string, _ time.Duration) { waiting <- op }
		return sim, osstest.NewClient(t, cfg), waiting
	}
	requests := func(sim *osssim.Simulator) int64 { return sim.Stats().Requests }

	t.Run("a call waits until its context ends, and ListJobs and DescribeJob share the limit", func(t *testing.T) {
		t.Parallel()
		// The call timeout is longer than the hour to the next slot, so the
		// call waits instead of giving up at once.
		sim, c, waiting := setup(t, 1, 2*time.Hour)
		if _, err := c.ListJobs(t.Context(), oss.ListJobsOptions{}); err != nil {
			t.Fatalf("first ListJobs: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := c.DescribeJob(ctx, "j")
			done <- err
		}()
		select {
		case op := <-waiting:
			if op != "DescribeJob" {
				t.Errorf("OnRateWait op = %q, want DescribeJob", op)
			}
		case err := <-done:
			t.Fatalf("DescribeJob returned %v without waiting for the limit ListJobs used up", err)
		}
		cancel()
		err := <-done
		if !errors.Is(err, oss.ErrRateLimitWait) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want ErrRateLimitWait and context.Canceled", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "DescribeJob") || !strings.Contains(msg, "waiting for the OSS rate limit") || strings.Contains(msg, "batchJobId") {
			t.Errorf("error %q: want it to name the call and the rate limit, without the URL", msg)
		}
		if n := requests(sim); n != 1 {
			t.Errorf("simulator saw %d requests, want 1", n)
		}
		if got := oss.ErrorCode(err); got != "rate limited" {
			t.Errorf("ErrorCode = %q, want %q", got, "rate limited")
		}
	})

	t.Run("a slot past the deadline fails at once", func(t *testing.T) {
		t.Parallel()
		sim, c, waiting := setup(t, 1, 30*time.Second)
		if _, err := c.DescribeJob(t.Context(), "j"); err != nil {
			t.Fatalf("first DescribeJob: %v", err)
		}
		_, err := c.ListJobs(t.Context(), oss.ListJobsOptions{})
		if !errors.Is(err, oss.ErrRateLimitWait) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "ListJobs") {
			t.Fatalf("err = %v, want a ListJobs ErrRateLimitWait past the deadline", err)
		}
		if n := requests(sim); n != 1 || len(waiting) != 0 {
			t.Errorf("simulator saw %d requests and %d waits, want 1 and none", n, len(waiting))
		}
	})

	t.Run("retries wait for the limit too", func(t *testing.T) {
		t.Parallel()
		sim, c, _ := setup(t, 2, 30*time.Second)
		sim.FailNext(5, osssim.Failure{Status: 503, Code: "MetaOperationQpsLimitExceeded"})
		_, err := c.ListJobs(t.Context(), oss.ListJobsOptions{})
		// Two attempts use the burst; the third would need the next slot.
		if !errors.Is(err, oss.ErrRateLimitWait) {
			t.Fatalf("err = %v, want ErrRateLimitWait on the third attempt", err)
		}
		if n := requests(sim); n != 2 {
			t.Errorf("simulator saw %d requests, want 2", n)
		}
	})
}

func TestRateConfig(t *testing.T) {
	t.Parallel()
	for _, r := range []float64{-1, math.NaN()} {
		if _, err := oss.NewClient(oss.Config{Region: "cn-hangzhou", Rate: r, Credentials: oss.StaticCredentials("a", "b", "")}); err == nil || !strings.Contains(err.Error(), "rate") {
			t.Errorf("Rate %v: err = %v, want one naming the rate", r, err)
		}
	}
	if _, err := oss.NewClient(oss.Config{Region: "cn-hangzhou", Burst: -1, Credentials: oss.StaticCredentials("a", "b", "")}); err == nil {
		t.Error("Burst -1 accepted")
	}
}

// TestOddValuesThroughTheSimulator: the simulator writes a job's times as
// Unix seconds, so a time placed at "year 57424" goes out as the
// millisecond value OSS might send. The client reads it as milliseconds,
// turns values it cannot place into anomalies, and keeps the page.
func TestOddValuesThroughTheSimulator(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	const ms = 1749983400123
	sim.Put(job.Detail{Job: job.Job{ID: "a-millis", Status: job.StatusComplete, CreationTime: time.Unix(ms, 0), TerminationTime: time.Unix(ms+1000, 0)}})
	sim.Put(job.Detail{Job: job.Job{ID: "b-micros", Status: job.StatusActive, CreationTime: time.Unix(ms*1000, 0), Tasks: job.Tasks{Total: 10, Failed: -1}}})
	sim.Put(job.Detail{Job: job.Job{ID: "c-plain", Status: job.StatusActive, CreationTime: time.Unix(1749983400, 0)}})
	c := osstest.NewClient(t, cfg)
	page, err := c.ListJobs(t.Context(), oss.ListJobsOptions{})
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	if len(page.Jobs) != 3 {
		t.Fatalf("%d jobs, want 3", len(page.Jobs))
	}
	a, b, plain := page.Jobs[0], page.Jobs[1], page.Jobs[2]
	if !a.CreationTime.Equal(time.UnixMilli(ms)) || !a.TerminationTime.Equal(time.UnixMilli(ms+1000)) || a.Anomalies != nil {
		t.Errorf("millisecond job = %+v, want its times read as milliseconds", a)
	}
	if !b.CreationTime.IsZero() || b.Tasks.Failed != 0 || b.Tasks.Total != 10 || len(b.Anomalies) != 2 ||
		b.Anomalies[0].Field != "NumberOfTasksFailed" || b.Anomalies[0].Raw != "-1" ||
		b.Anomalies[1].Field != "CreationTime" || b.Anomalies[1].Raw != "1749983400123000" {
		t.Errorf("odd job = %+v, want zero CreationTime and failed count, with two anomalies keeping the raw values", b)
	}
	if plain.Anomalies != nil || !plain.CreationTime.Equal(time.Unix(1749983400, 0)) {
		t.Errorf("plain job = %+v", plain)
	}
	for _, j := range page.Jobs {
		if _, err := json.Marshal(j); err != nil {
			t.Errorf("job %q does not encode: %v", j.ID, err)
		}
	}
	d, err := c.DescribeJob(t.Context(), "b-micros")
	if err != nil || len(d.Anomalies) != 2 {
		t.Errorf("DescribeJob = %+v, %v; want the same two anomalies", d, err)
	}
}
