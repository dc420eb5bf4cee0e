package oss_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials/providers"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
)

// failingProvider is a credentials-go provider whose every answer is an
// error, as an exhausted default chain's is.
type failingProvider struct{}

func (failingProvider) GetCredentials() (*providers.Credentials, error) {
	return nil, errors.New("no credential found in the chain")
}

func (failingProvider) GetProviderName() string { return "failing" }

// TestErrorCode drives each failure through the real client and the
// simulator and checks the short token a failed DescribeJob's event gets.
func TestErrorCode(t *testing.T) {
	t.Parallel()
	secret := osssim.DefaultCredential.AccessKeySecret
	tests := []struct {
		name string
		// call makes the failing call; cfg and sim are the test's own.
		call func(t *testing.T, sim *osssim.Simulator, cfg oss.Config) error
		want string
	}{
		{"unknown job", func(t *testing.T, _ *osssim.Simulator, cfg oss.Config) error {
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "no-such-job")
			return err
		}, "NoSuchJob"},
		{"throttled after retries", func(t *testing.T, sim *osssim.Simulator, cfg oss.Config) error {
			cfg.MaxAttempts = 2
			sim.FailNext(2, osssim.Failure{Status: 503, Code: "MetaOperationQpsLimitExceeded"})
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, "MetaOperationQpsLimitExceeded"},
		{"server error", func(t *testing.T, sim *osssim.Simulator, cfg oss.Config) error {
			cfg.MaxAttempts = 1
			sim.FailNext(1, osssim.Failure{Status: 500})
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, "InternalError"},
		{"wrong secret", func(t *testing.T, _ *osssim.Simulator, cfg oss.Config) error {
			cfg.Credentials = oss.StaticCredentials(osssim.DefaultCredential.AccessKeyID, "wrong-secret-0123456789", "")
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, "SignatureDoesNotMatch"},
		{"timeout", func(t *testing.T, sim *osssim.Simulator, cfg oss.Config) error {
			cfg.CallTimeout = 100 * time.Millisecond
			sim.FailNext(10, osssim.Failure{Delay: time.Hour})
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, oss.CodeTimeout},
		{"canceled", func(t *testing.T, _ *osssim.Simulator, cfg oss.Config) error {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := osstest.NewClient(t, cfg).DescribeJob(ctx, "j")
			return err
		}, oss.CodeCanceled},
		{"connection refused", func(t *testing.T, _ *osssim.Simulator, cfg oss.Config) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Endpoint = "http://" + ln.Addr().String()
			ln.Close()
			cfg.MaxAttempts = 1
			_, err = osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, oss.CodeConnectionRefused},
		{"malformed answer", func(t *testing.T, sim *osssim.Simulator, cfg oss.Config) error {
			sim.FailNext(1, osssim.Failure{Malformed: true})
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, oss.CodeMalformed},
		{"body broken off every time", func(t *testing.T, sim *osssim.Simulator, cfg oss.Config) error {
			cfg.MaxAttempts = 2
			sim.FailNext(2, osssim.Failure{Truncate: true})
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, oss.CodeConnectionBroken},
		{"answer too large", func(t *testing.T, _ *osssim.Simulator, cfg oss.Config) error {
			cfg.MaxResponseBytes = 64
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, oss.CodeTooLarge},
		{"credentials unavailable", func(t *testing.T, _ *osssim.Simulator, cfg oss.Config) error {
			cfg.Credentials = oss.FromCredentialsGo(failingProvider{})
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "j")
			return err
		}, oss.CodeCredentials},
		{"empty id", func(t *testing.T, _ *osssim.Simulator, cfg oss.Config) error {
			_, err := osstest.NewClient(t, cfg).DescribeJob(t.Context(), "")
			return err
		}, oss.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, cfg := osstest.Start(t, osssim.Config{Jobs: 3})
			sim.Put(job.Detail{Job: job.Job{ID: "j", Status: job.StatusFailed}})
			err := tt.call(t, sim, cfg)
			if err == nil {
				t.Fatal("the call succeeded, want a failure")
			}
			got := oss.ErrorCode(err)
			if got != tt.want {
				t.Errorf("ErrorCode(%v) = %q, want %q", err, got, tt.want)
			}
			if strings.Contains(got, secret) {
				t.Errorf("ErrorCode = %q holds a secret", got)
			}
		})
	}
}

// TestErrorCodeValues covers what the simulator cannot produce: codes that
// are not tokens, answers without a code, and wrapped network errors.
func TestErrorCodeValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&oss.APIError{StatusCode: 403, Code: "AccessDenied"}, "AccessDenied"},
		{&oss.APIError{StatusCode: 403, Code: "key LTAI5x secret=abc"}, "HTTP 403"},
		{&oss.APIError{StatusCode: 502}, "HTTP 502"},
		{&oss.APIError{StatusCode: 429}, oss.CodeThrottled},
		{&oss.APIError{StatusCode: 404, EC: oss.ECNoSuchJob}, "NoSuchJob"},
		{&oss.APIError{StatusCode: 400, Code: strings.Repeat("A", 65)}, "HTTP 400"},
		{fmt.Errorf("describe: %w", &net.DNSError{Err: "no such host", Name: "oss-x.aliyuncs.com", IsNotFound: true}), oss.CodeDNS},
		{&net.OpError{Op: "dial", Err: &timeoutError{}}, oss.CodeTimeout},
		{errors.New("something new"), oss.CodeUnknown},
	}
	for _, tt := range tests {
		if got := oss.ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%#v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

type timeoutError struct{}

func (*timeoutError) Error() string   { return "i/o timeout" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }
