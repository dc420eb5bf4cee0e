package osssim_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/signer"

	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// bundle is what setup gives a test.
type bundle struct {
	sim *osssim.Simulator
	srv *httptest.Server
	log *syncBuffer
}

// setup starts a simulator behind an httptest server. Its log is kept so
// tests can check that no secret reaches it.
func setup(t *testing.T, cfg osssim.Config) bundle {
	t.Helper()
	log := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sim, err := osssim.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return bundle{sim: sim, srv: srv, log: log}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// client returns an SDK client for the bundle's server that does not retry,
// so each call is one request. opts adjust the SDK config.
func (b bundle) client(cred osssim.Credential, opts ...func(*oss.Config)) *oss.Client {
	cfg := oss.LoadDefaultConfig().
		WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cred.AccessKeyID, cred.AccessKeySecret, cred.SecurityToken)).
		WithRegion(b.sim.Region()).
		WithEndpoint(b.srv.URL).
		WithRetryMaxAttempts(1)
	for _, o := range opts {
		o(cfg)
	}
	return oss.NewClient(cfg)
}

func v1(c *oss.Config)                  { c.WithSignatureVersion(oss.SignatureVersionV1) }
func region(r string) func(*oss.Config) { return func(c *oss.Config) { c.WithRegion(r) } }
func retries(n int) func(*oss.Config)   { return func(c *oss.Config) { c.WithRetryMaxAttempts(n) } }
func additional(h ...string) func(*oss.Config) {
	return func(c *oss.Config) { c.WithAdditionalHeaders(h) }
}

// invoke makes one raw SDK call and reads the whole body. params are added to
// batchJob.
func invoke(t *testing.T, c *oss.Client, opName string, params map[string]string) ([]byte, http.Header, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := &oss.OperationInput{OpName: opName, Method: "GET", Parameters: map[string]string{"batchJob": ""}}
	for k, v := range params {
		in.Parameters[k] = v
	}
	in.OpMetadata.Set(signer.SubResource, osssim.V1SubResources)
	out, err := c.InvokeOperation(ctx, in)
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	return body, out.Headers, err
}

// serviceError unwraps the SDK's error for an error answer, failing the test
// for any other outcome.
func serviceError(t *testing.T, err error, status int, code string) *oss.ServiceError {
	t.Helper()
	var se *oss.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	if se.StatusCode != status || se.Code != code {
		t.Fatalf("want %d %s, got %d %s: %s", status, code, se.StatusCode, se.Code, se.Message)
	}
	if len(se.Headers.Get("x-oss-request-id")) != 24 {
		t.Fatalf("x-oss-request-id = %q, want 24 hex digits", se.Headers.Get("x-oss-request-id"))
	}
	if se.RequestID != se.Headers.Get("x-oss-request-id") {
		t.Fatalf("RequestId %q differs from header %q", se.RequestID, se.Headers.Get("x-oss-request-id"))
	}
	return se
}

type listResult struct {
	NextToken *string      `xml:"NextToken"`
	Jobs      []descriptor `xml:"Jobs>JobListDescriptor"`
}

type descriptor struct {
	ConfirmationRequired *bool  `xml:"ConfirmationRequired"`
	CreationTime         int64  `xml:"CreationTime"`
	Description          string `xml:"Description"`
	JobID                string `xml:"JobId"`
	Operation            string `xml:"Operation"`
	Priority             int64  `xml:"Priority"`
	ProgressSummary      struct {
		Failed    int64  `xml:"NumberOfTasksFailed"`
		Succeeded int64  `xml:"NumberOfTasksSucceeded"`
		Total     int64  `xml:"TotalNumberOfTasks"`
		Elapsed   *int64 `xml:"ElapsedTimeInActiveSeconds"`
		Timers    *struct {
			Elapsed int64 `xml:"ElapsedTimeInActiveSeconds"`
		} `xml:"Timers"`
	} `xml:"ProgressSummary"`
	Status             string  `xml:"Status"`
	TerminationDate    *int64  `xml:"TerminationDate"`
	StatusUpdateReason *string `xml:"StatusUpdateReason"`
	RoleArn            *string `xml:"RoleArn"`
	FailureReasons     *struct {
		Failures []struct {
			Code   string `xml:"FailureCode"`
			Reason string `xml:"FailureReason"`
		} `xml:"JobFailure"`
	} `xml:"FailureReasons"`
	Manifest *struct {
		Bucket string `xml:"Location>Bucket"`
		Object string `xml:"Location>Object"`
		Format string `xml:"Spec>Format"`
	} `xml:"Manifest"`
	Report *struct {
		Bucket string `xml:"Bucket"`
	} `xml:"Report"`
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := xml.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, body)
	}
	return v
}

// list makes one ListJobs call that must succeed.
func list(t *testing.T, c *oss.Client, params map[string]string) listResult {
	t.Helper()
	body, _, err := invoke(t, c, "ListJobs", params)
	if err != nil {
		t.Fatalf("ListJobs %v: %v", params, err)
	}
	return decode[listResult](t, body)
}

// listAll pages through ListJobs and returns the JobIds in order and the
// tokens it was given.
func listAll(t *testing.T, c *oss.Client, params map[string]string) (ids, tokens []string) {
	t.Helper()
	p := map[string]string{}
	for k, v := range params {
		p[k] = v
	}
	for range 100_000 {
		res := list(t, c, p)
		for _, d := range res.Jobs {
			ids = append(ids, d.JobID)
		}
		if res.NextToken == nil {
			return ids, tokens
		}
		tokens = append(tokens, *res.NextToken)
		p["continuation-token"] = *res.NextToken
	}
	t.Fatalf("ListJobs never ended")
	return nil, nil
}

// rawSigned sends "method /?rawQuery" signed with V4 by the SDK's signer,
// with the query exactly as given: it is how a client that forgets to
// URL-encode would call.
func (b bundle) rawSigned(t *testing.T, method, rawQuery string, cred osssim.Credential) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.RawQuery = rawQuery
	product, region := "oss", b.sim.Region()
	sc := &signer.SigningContext{
		Product: &product, Region: &region, Request: req,
		Credentials: &credentials.Credentials{AccessKeyID: cred.AccessKeyID, AccessKeySecret: cred.AccessKeySecret},
	}
	if err := (&signer.SignerV4{}).Sign(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// errorBody is OSS's error document.
type errorBody struct {
	Code, Message, RequestId, HostId, EC string
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}
