package osssim_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/signer"

	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

func TestFailNextErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		f          osssim.Failure
		status     int
		code       string
		ec         string
		retryAfter string
	}{
		{"500", osssim.Failure{Status: 500}, 500, "InternalError", "", ""},
		{"throttle", osssim.Failure{Status: 503, Code: "TotalQpsLimitExceeded"}, 503, "TotalQpsLimitExceeded", "", ""},
		{"status from code", osssim.Failure{Code: "ActiveRequestLimitExceeded"}, 503, "ActiveRequestLimitExceeded", "", ""},
		{"code from status", osssim.Failure{Status: 503}, 503, "ServiceUnavailable", "", ""},
		{"429 rounds Retry-After up", osssim.Failure{Status: 429, RetryAfter: 2500 * time.Millisecond}, 429, "TooManyRequests", "", "3"},
		{"429 Retry-After at least 1", osssim.Failure{Status: 429, RetryAfter: time.Millisecond}, 429, "TooManyRequests", "", "1"},
		{"with EC", osssim.Failure{Status: 403, Code: "AccessDenied", EC: "0003-00000001"}, 403, "AccessDenied", "0003-00000001", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, osssim.Config{Jobs: 5})
			c := b.client(osssim.DefaultCredential)
			b.sim.FailNext(2, tt.f)
			for range 2 {
				_, _, err := invoke(t, c, "ListJobs", nil)
				se := serviceError(t, err, tt.status, tt.code)
				if se.EC != tt.ec || se.Headers.Get("x-oss-ec") != tt.ec {
					t.Fatalf("EC %q, header %q, want %q", se.EC, se.Headers.Get("x-oss-ec"), tt.ec)
				}
				if got := se.Headers.Get("Retry-After"); got != tt.retryAfter {
					t.Fatalf("Retry-After %q, want %q", got, tt.retryAfter)
				}
			}
			if _, _, err := invoke(t, c, "ListJobs", nil); err != nil {
				t.Fatalf("third request: %v", err)
			}
		})
	}
}

func TestFailNextSpoiledBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 50})
	c := b.client(osssim.DefaultCredential)

	// The zero Failure passes a request through, so scripts can skip some.
	b.sim.FailNext(1, osssim.Failure{})
	if _, _, err := invoke(t, c, "ListJobs", nil); err != nil {
		t.Fatalf("pass-through request: %v", err)
	}

	b.sim.FailNext(1, osssim.Failure{Truncate: true})
	if _, _, err := invoke(t, c, "ListJobs", nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated body: err %v, want unexpected EOF", err)
	}
	b.sim.FailNext(1, osssim.Failure{Malformed: true})
	body, h, err := invoke(t, c, "ListJobs", nil)
	if err != nil || h.Get("Content-Type") != "application/xml" {
		t.Fatalf("malformed body: err %v, Content-Type %q", err, h.Get("Content-Type"))
	}
	var v struct{}
	if err := xml.Unmarshal(body, &v); err == nil {
		t.Fatalf("malformed body parsed:\n%s", body)
	}
	// Spoiling applies only to a successful answer: an error stays intact.
	b.sim.FailNext(1, osssim.Failure{Truncate: true})
	_, _, err = invoke(t, c, "DescribeJob", map[string]string{"batchJobId": "none"})
	serviceError(t, err, 404, "NoSuchJob")

	st := b.sim.Stats()
	if st.Truncated != 1 || st.Malformed != 1 || st.InjectedFaults != 3 || st.ByStatus[200] != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailNextDelay(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5})
	c := b.client(osssim.DefaultCredential)

	b.sim.FailNext(1, osssim.Failure{Delay: 30 * time.Millisecond})
	start := time.Now()
	if _, _, err := invoke(t, c, "ListJobs", nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("delayed answer came after %s", d)
	}

	// A client that gives up must free the handler: Close blocks until
	// every handler has returned.
	b.sim.FailNext(1, osssim.Failure{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	in := &oss.OperationInput{OpName: "ListJobs", Method: "GET", Parameters: map[string]string{"batchJob": ""}}
	in.OpMetadata.Set(signer.SubResource, osssim.V1SubResources)
	if _, err := c.InvokeOperation(ctx, in); err == nil {
		t.Fatalf("an hour's delay answered within 100ms")
	}
	b.srv.Close()
	if st := b.sim.Stats(); st.Slowed != 2 || st.ByStatus[499] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Faults strike only authenticated requests, so a scripted fault waits for
// one.
func TestFaultsFollowAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5})
	b.sim.FailNext(1, osssim.Failure{Status: 500})
	resp, err := http.Get(b.srv.URL + "/?batchJob")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous request: %d, want 403", resp.StatusCode)
	}
	_, _, err = invoke(t, b.client(osssim.DefaultCredential), "ListJobs", nil)
	serviceError(t, err, 500, "InternalError")
}

func TestRandomFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5})
	c := b.client(osssim.DefaultCredential)

	if err := b.sim.SetFaults(osssim.Faults{Throttle503: 1}); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for range 8 {
		_, _, err := invoke(t, c, "ListJobs", nil)
		var se *oss.ServiceError
		if !errors.As(err, &se) || se.StatusCode != 503 {
			t.Fatalf("throttled request: %v", err)
		}
		codes = append(codes, se.Code)
	}
	want := []string{"MetaOperationQpsLimitExceeded", "ServiceUnavailable", "TotalQpsLimitExceeded", "ActiveRequestLimitExceeded"}
	for i, code := range codes {
		if code != want[i%4] {
			t.Fatalf("throttle codes %v do not rotate through %v", codes, want)
		}
	}

	if err := b.sim.SetFaults(osssim.Faults{TooMany429: 1}); err != nil {
		t.Fatal(err)
	}
	_, _, err := invoke(t, c, "ListJobs", nil)
	if se := serviceError(t, err, 429, "TooManyRequests"); se.Headers.Get("Retry-After") != "1" {
		t.Fatalf("default Retry-After %q, want 1", se.Headers.Get("Retry-After"))
	}

	if err := b.sim.SetFaults(osssim.Faults{Truncate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := invoke(t, c, "ListJobs", nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("random truncation: %v", err)
	}

	if err := b.sim.SetFaults(osssim.Faults{Error500: 0.3, Slow: 0.5, SlowDelay: time.Microsecond}); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 400 {
		if _, _, err := invoke(t, c, "ListJobs", nil); err != nil {
			serviceError(t, err, 500, "InternalError")
			failed++
		}
	}
	if failed < 80 || failed > 160 {
		t.Fatalf("Error500 0.3 failed %d of 400 requests", failed)
	}
	if st := b.sim.Stats(); st.Slowed < 150 || st.Slowed > 250 {
		t.Fatalf("Slow 0.5 slowed %d of 400 requests", st.Slowed)
	}

	for _, bad := range []osssim.Faults{{Error500: -0.1}, {Malformed: math.NaN()}, {Truncate: 0.7, Malformed: 0.7}, {SlowDelay: -1}, {RetryAfter: -1}} {
		if err := b.sim.SetFaults(bad); err == nil {
			t.Fatalf("SetFaults(%+v) accepted invalid faults", bad)
		}
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5})
	good := b.client(osssim.DefaultCredential)
	bad := b.client(osssim.Credential{AccessKeyID: osssim.DefaultCredential.AccessKeyID, AccessKeySecret: "wrong"})
	_, _, _ = invoke(t, good, "ListJobs", nil)
	_, _, _ = invoke(t, good, "DescribeJob", map[string]string{"batchJobId": "x"})
	_, _, _ = invoke(t, bad, "ListJobs", nil)
	b.sim.FailNext(1, osssim.Failure{Status: 503})
	_, _, _ = invoke(t, good, "ListJobs", nil)
	st := b.sim.Stats()
	switch {
	case st.Requests != 4 || st.ByOperation["ListJobs"] != 3 || st.ByOperation["DescribeJob"] != 1:
		t.Fatalf("request counts %+v", st)
	case st.ByStatus[200] != 1 || st.ByStatus[404] != 1 || st.ByStatus[403] != 1 || st.ByStatus[503] != 1:
		t.Fatalf("status counts %+v", st.ByStatus)
	case st.ByCode["NoSuchJob"] != 1 || st.ByCode["SignatureDoesNotMatch"] != 1 || st.ByCode["ServiceUnavailable"] != 1:
		t.Fatalf("code counts %+v", st.ByCode)
	case st.AuthFailures != 1 || st.SignatureFailures != 1 || st.InjectedFaults != 1:
		t.Fatalf("failure counts %+v", st)
	}
	st.ByStatus[200] = 99
	if b.sim.Stats().ByStatus[200] != 1 {
		t.Fatalf("Stats shares its maps with the simulator")
	}
}
