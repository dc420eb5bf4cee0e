package oss

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// Tokens ErrorCode returns for failures without an OSS error code.
const (
	CodeTimeout           = "timeout"
	CodeCanceled          = "canceled"
	CodeRateLimited       = "rate limited"
	CodeThrottled         = "throttled"
	CodeConnectionRefused = "connection refused"
	CodeConnectionReset   = "connection reset"
	CodeConnectionBroken  = "connection broken"
	CodeDNS               = "dns error"
	CodeTLS               = "tls error"
	CodeCredentials       = "credentials unavailable"
	CodeMalformed         = "malformed response"
	CodeTooLarge          = "response too large"
	CodeInvalidRequest    = "invalid request"
	CodeUnknown           = "error"
)

// ErrorCode returns a short token saying why a ListJobs or DescribeJob call
// failed, for an event's enrichmentError or a metric label: the OSS error
// code of an error answer ("NoSuchJob", "AccessDenied",
// "MetaOperationQpsLimitExceeded", …; "HTTP 502" when the answer had none),
// else one of the Code constants. It never holds a secret, a URL or a
// message, only the code OSS sent (when it looks like one) or a constant.
// It returns "" for a nil error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case isCodeToken(apiErr.Code):
			return apiErr.Code
		case apiErr.NotFound():
			return "NoSuchJob"
		case apiErr.Throttled():
			return CodeThrottled
		}
		return fmt.Sprintf("HTTP %d", apiErr.StatusCode)
	}
	// Before the context errors: a rate-limit wait matches one of them too.
	if errors.Is(err, ErrRateLimitWait) {
		return CodeRateLimited
	}
	var (
		decodeErr  *DecodeError
		credErr    *credentialsError
		dnsErr     *net.DNSError
		netErr     net.Error
		certErr    *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &decodeErr):
		return CodeMalformed
	case errors.Is(err, ErrResponseTooLarge):
		return CodeTooLarge
	case errors.Is(err, errInvalidRequest):
		return CodeInvalidRequest
	case errors.As(err, &credErr):
		return CodeCredentials
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return CodeConnectionRefused
	case errors.Is(err, syscall.ECONNRESET):
		return CodeConnectionReset
	case errors.As(err, &dnsErr):
		return CodeDNS
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &unknownCA),
		errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return CodeTLS
	case errors.As(err, &netErr) && netErr.Timeout():
		return CodeTimeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE):
		return CodeConnectionBroken
	}
	return CodeUnknown
}

// isCodeToken reports whether s looks like an OSS error code: short, and
// letters, digits, '.', '_' and '-' only. Anything else in the Code
// element is not passed on.
func isCodeToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
