package osssim_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"

	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

var stsCred = osssim.Credential{AccessKeyID: "STS.NTestTemporaryKey", AccessKeySecret: "sts-secret-0123456789", SecurityToken: "sts-token-abcdef"}

func TestAuthAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 20, Credentials: []osssim.Credential{osssim.DefaultCredential, stsCred}})
	tests := []struct {
		name string
		cred osssim.Credential
		opts []func(*oss.Config)
	}{
		{"V4", osssim.DefaultCredential, nil},
		{"V4 with AdditionalHeaders", osssim.DefaultCredential, []func(*oss.Config){additional("host", "user-agent")}},
		{"V4 STS", stsCred, nil},
		{"V1", osssim.DefaultCredential, []func(*oss.Config){v1}},
		{"V1 STS", stsCred, []func(*oss.Config){v1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := b.client(tt.cred, tt.opts...)
			// A filtered, paged listing signs every parameter V1 knows of.
			ids, _ := listAll(t, c, map[string]string{"max-keys": "3", "batchJobStatuses": "Active|Complete|New|Failed"})
			if len(ids) == 0 {
				t.Fatalf("listed nothing")
			}
			body, _, err := invoke(t, c, "DescribeJob", map[string]string{"batchJobId": ids[0]})
			if err != nil {
				t.Fatalf("DescribeJob: %v", err)
			}
			if !bytes.Contains(body, []byte(ids[0])) {
				t.Fatalf("DescribeJob answered without the job:\n%s", body)
			}
		})
	}
}

func TestAuthRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5, Credentials: []osssim.Credential{osssim.DefaultCredential, stsCred}})
	wrongSecret := osssim.DefaultCredential
	wrongSecret.AccessKeySecret = "not-the-secret"
	unknown := osssim.Credential{AccessKeyID: "LTAI5tNobodyKnowsMe", AccessKeySecret: "whatever"}
	stsNoToken := stsCred
	stsNoToken.SecurityToken = ""
	stsBadToken := stsCred
	stsBadToken.SecurityToken = "forged-token"
	tokenOnLongTermKey := osssim.DefaultCredential
	tokenOnLongTermKey.SecurityToken = "sts-token-abcdef"
	tests := []struct {
		name   string
		cred   osssim.Credential
		opts   []func(*oss.Config)
		status int
		code   string
		ec     string
		msg    string
	}{
		{"V4 wrong secret", wrongSecret, nil, 403, "SignatureDoesNotMatch", "0002-00000230", ""},
		{"V1 wrong secret", wrongSecret, []func(*oss.Config){v1}, 403, "SignatureDoesNotMatch", "0002-00000040", ""},
		{"V4 unknown key", unknown, nil, 403, "InvalidAccessKeyId", "0002-00000002", ""},
		{"V1 unknown key", unknown, []func(*oss.Config){v1}, 403, "InvalidAccessKeyId", "0002-00000002", ""},
		{"V4 wrong region", osssim.DefaultCredential, []func(*oss.Config){region("cn-beijing")}, 403, "SignatureDoesNotMatch", "0002-00000228", "region"},
		{"STS without token", stsNoToken, nil, 403, "InvalidSecurityToken", "0002-00000005", "The security token you provided is invalid."},
		{"STS wrong token", stsBadToken, nil, 403, "InvalidSecurityToken", "0002-00000005", "The security token you provided is invalid."},
		{"V1 STS wrong token", stsBadToken, []func(*oss.Config){v1}, 403, "InvalidSecurityToken", "0002-00000005", ""},
		{"token on a long-term key", tokenOnLongTermKey, nil, 403, "InvalidAccessKeyId", "0002-00000002", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := invoke(t, b.client(tt.cred, tt.opts...), "ListJobs", nil)
			se := serviceError(t, err, tt.status, tt.code)
			if se.EC != tt.ec || se.Headers.Get("x-oss-ec") != tt.ec {
				t.Fatalf("EC = %q, x-oss-ec = %q, want %q", se.EC, se.Headers.Get("x-oss-ec"), tt.ec)
			}
			if !strings.Contains(se.Message, tt.msg) {
				t.Fatalf("message %q does not mention %q", se.Message, tt.msg)
			}
			for _, secret := range []string{tt.cred.AccessKeySecret, osssim.DefaultCredential.AccessKeySecret, stsCred.AccessKeySecret, stsCred.SecurityToken} {
				if bytes.Contains(se.Snapshot, []byte(secret)) {
					t.Fatalf("error body leaks a secret:\n%s", se.Snapshot)
				}
			}
			if bytes.Contains(se.Snapshot, []byte("Signature")) && !bytes.Contains(se.Snapshot, []byte("SignatureDoesNotMatch")) {
				t.Fatalf("error body mentions a signature:\n%s", se.Snapshot)
			}
		})
	}
	t.Cleanup(func() {
		for _, secret := range []string{osssim.DefaultCredential.AccessKeySecret, stsCred.AccessKeySecret, stsCred.SecurityToken, "Signature="} {
			if strings.Contains(b.log.String(), secret) {
				t.Errorf("log leaks %q", secret)
			}
		}
	})
}

func TestAuthClockSkew(t *testing.T) {
	t.Parallel()
	ahead := func() time.Time { return time.Now().Add(time.Hour) }
	b := setup(t, osssim.Config{Jobs: 5, NowFunc: ahead})
	for _, sig := range []struct {
		name string
		opts []func(*oss.Config)
	}{{"V4", nil}, {"V1", []func(*oss.Config){v1}}} {
		t.Run(sig.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := invoke(t, b.client(osssim.DefaultCredential, sig.opts...), "ListJobs", nil)
			se := serviceError(t, err, 403, "RequestTimeTooSkewed")
			if se.EC != "0002-00000504" || !bytes.Contains(se.Snapshot, []byte("<ServerTime>")) {
				t.Fatalf("unexpected error body:\n%s", se.Snapshot)
			}
			// The SDK corrects its clock from the answer's Date and retries.
			opts := append([]func(*oss.Config){retries(3)}, sig.opts...)
			if _, _, err := invoke(t, b.client(osssim.DefaultCredential, opts...), "ListJobs", nil); err != nil {
				t.Fatalf("after clock correction: %v", err)
			}
		})
	}
}

func TestAuthRaw(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5})
	tests := []struct {
		name   string
		header map[string]string
		query  string
		status int
		code   string
	}{
		{"anonymous", nil, "batchJob", 403, "AccessDenied"},
		{"signed URL", nil, "batchJob&x-oss-signature=abc", 403, "AccessDenied"},
		{"V2 scheme", map[string]string{"Authorization": "OSS2 AccessKeyId:x,Signature:y"}, "batchJob", 403, "AccessDenied"},
		{"V4 malformed", map[string]string{"Authorization": "OSS4-HMAC-SHA256 Credential=abc"}, "batchJob", 400, "InvalidArgument"},
		{"V4 no x-oss-date", map[string]string{
			"Authorization": "OSS4-HMAC-SHA256 Credential=" + osssim.DefaultCredential.AccessKeyID + "/20250101/cn-hangzhou/oss/aliyun_v4_request,Signature=00",
		}, "batchJob", 403, "AccessDenied"},
		{"V1 no Date", map[string]string{"Authorization": "OSS " + osssim.DefaultCredential.AccessKeyID + ":abc="}, "batchJob", 403, "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/?"+tt.query, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := b.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			e := decode[errorBody](t, readAll(t, resp))
			if e.Code != tt.code || e.RequestId != resp.Header.Get("x-oss-request-id") || e.HostId == "" {
				t.Fatalf("unexpected error %+v", e)
			}
			if resp.Header.Get("Content-Type") != "application/xml" {
				t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestSTSCredentialExposesNoTokenInLog(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5, Credentials: []osssim.Credential{stsCred}})
	if _, _, err := invoke(t, b.client(stsCred), "ListJobs", nil); err != nil {
		t.Fatal(err)
	}
	if log := b.log.String(); strings.Contains(log, stsCred.SecurityToken) || strings.Contains(log, stsCred.AccessKeySecret) || log == "" {
		t.Fatalf("log is empty or leaks the credential:\n%s", log)
	}
}
