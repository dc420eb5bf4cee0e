package osssim

import (
	"crypto/hmac"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/signer"
)

const (
	schemeV4        = "OSS4-HMAC-SHA256 "
	schemeV1        = "OSS "
	v4TimeFormat    = "20060102T150405Z"
	v4DateFormat    = "20060102"
	v4Terminator    = "aliyun_v4_request"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	securityToken   = "x-oss-security-token"

	codeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	msgSignatureDoesNotMatch  = "The request signature we calculated does not match the signature you provided. Check your key and signing method."
)

func accessDenied(ec, message string) *apiError {
	return &apiError{status: http.StatusForbidden, code: "AccessDenied", message: message, ec: ec}
}

func signatureMismatch(ec, message string) *apiError {
	return &apiError{status: http.StatusForbidden, code: codeSignatureDoesNotMatch, message: message, ec: ec}
}

func malformedAuthorization(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidArgument", ec: "0002-00000201",
		message: "Authorization header is malformed: " + message,
		extra:   [][2]string{{"ArgumentName", "Authorization"}}}
}

func invalidAccessKeyID() *apiError {
	return &apiError{status: http.StatusForbidden, code: "InvalidAccessKeyId", ec: "0002-00000002",
		message: "The OSS Access Key Id you provided does not exist in our records."}
}

// authenticate verifies a request's header signature by recomputing it with
// the SDK's signer. It returns nil for an authentic request. Nothing it
// returns quotes a secret, a security token or a signature.
func (s *Simulator) authenticate(r *http.Request, now time.Time) *apiError {
	authz := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(authz, schemeV4):
		return s.authV4(r, strings.TrimPrefix(authz, schemeV4), now)
	case strings.HasPrefix(authz, schemeV1):
		return s.authV1(r, strings.TrimPrefix(authz, schemeV1), now)
	case authz != "":
		return accessDenied("0002-00000100",
			"Unsupported Authorization scheme: this endpoint accepts OSS (V1) and OSS4-HMAC-SHA256 (V4) header signatures.")
	}
	q := r.URL.Query()
	if q.Has("x-oss-signature") || q.Has("Signature") {
		return accessDenied("0002-00000100",
			"Signed URLs are not supported by this endpoint: sign the Authorization header.")
	}
	return accessDenied("0002-00000001", "You have no right to access this resource: the request carries no Authorization header.")
}

// credential finds the key a request names and checks its security token:
// an STS key needs its own token, and OSS treats a token sent with a
// long-term key as an STS request for a key it does not know.
func (s *Simulator) credential(r *http.Request, akid string) (Credential, *apiError) {
	c, ok := s.creds[akid]
	if !ok {
		return c, invalidAccessKeyID()
	}
	got := r.Header.Get(securityToken)
	switch {
	case c.SecurityToken == "" && got != "":
		return c, invalidAccessKeyID()
	case c.SecurityToken != "" && !hmac.Equal([]byte(got), []byte(c.SecurityToken)):
		return c, &apiError{status: http.StatusForbidden, code: "InvalidSecurityToken", ec: "0002-00000005",
			message: "The security token you provided is invalid."}
	}
	return c, nil
}

func (s *Simulator) checkSkew(signed, now time.Time) *apiError {
	skew := signed.Sub(now)
	if skew < 0 {
		skew = -skew
	}
	if skew <= s.cfg.MaxClockSkew {
		return nil
	}
	const iso = "2006-01-02T15:04:05.000Z"
	return &apiError{status: http.StatusForbidden, code: "RequestTimeTooSkewed", ec: "0002-00000504",
		message: "The difference between the request time and the current time is too large.",
		extra: [][2]string{
			{"MaxAllowedSkewMilliseconds", fmt.Sprint(s.cfg.MaxClockSkew.Milliseconds())},
			{"RequestTime", signed.UTC().Format(iso)},
			{"ServerTime", now.UTC().Format(iso)},
		}}
}

// authV4 checks "OSS4-HMAC-SHA256 Credential=AK/date/region/oss/aliyun_v4_request,
// [AdditionalHeaders=h1;h2,]Signature=hex".
func (s *Simulator) authV4(r *http.Request, rest string, now time.Time) *apiError {
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	cred, sig := fields["Credential"], fields["Signature"]
	if cred == "" || sig == "" {
		return malformedAuthorization("Credential and Signature are required.")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[3] != "oss" || scope[4] != v4Terminator {
		return malformedAuthorization("Credential must be AccessKeyId/yyyymmdd/region/oss/aliyun_v4_request.")
	}
	c, e := s.credential(r, scope[0])
	if e != nil {
		return e
	}
	signed, err := time.Parse(v4TimeFormat, r.Header.Get("x-oss-date"))
	if err != nil {
		return accessDenied("0002-00000211", "OSS V4 authentication requires a valid x-oss-date header (yyyymmddThhmmssZ).")
	}
	if e := s.checkSkew(signed, now); e != nil {
		return e
	}
	switch {
	case scope[1] != signed.Format(v4DateFormat):
		return signatureMismatch("0002-00000227", fmt.Sprintf(
			"The date in the credential scope (%s) does not match the date of x-oss-date.", scope[1]))
	case scope[2] != s.cfg.Region:
		return signatureMismatch("0002-00000228", fmt.Sprintf(
			"The region in the credential scope (%s) does not match the region of this endpoint (%s).", scope[2], s.cfg.Region))
	case r.Header.Get("x-oss-content-sha256") != unsignedPayload:
		return signatureMismatch("0002-00000229", "OSS V4 authentication requires the header x-oss-content-sha256: UNSIGNED-PAYLOAD.")
	}
	var additional []string
	if v := fields["AdditionalHeaders"]; v != "" {
		additional = strings.Split(v, ";")
	}
	clone := r.Clone(r.Context())
	clone.Header.Del("Authorization")
	// net/http moves Host out of the header map; a signer asked to sign it
	// must find it there.
	for _, h := range additional {
		if strings.EqualFold(h, "host") {
			clone.Header.Set("Host", r.Host)
		}
	}
	region, product := s.cfg.Region, "oss"
	sc := &signer.SigningContext{
		Product:           &product,
		Region:            &region,
		Request:           clone,
		AdditionalHeaders: additional,
		Credentials:       sdkCredentials(c),
		Time:              signed,
	}
	if err := (&signer.SignerV4{}).Sign(r.Context(), sc); err != nil {
		return internalError()
	}
	_, want, _ := strings.Cut(clone.Header.Get("Authorization"), ",Signature=")
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return signatureMismatch("0002-00000230", msgSignatureDoesNotMatch)
	}
	return nil
}

// authV1 checks "OSS AccessKeyId:base64(hmac-sha1)" with the Date header.
func (s *Simulator) authV1(r *http.Request, rest string, now time.Time) *apiError {
	akid, sig, ok := strings.Cut(rest, ":")
	if !ok || akid == "" || sig == "" {
		return malformedAuthorization("expected OSS AccessKeyId:Signature.")
	}
	c, e := s.credential(r, akid)
	if e != nil {
		return e
	}
	// The string to sign holds the Date header verbatim, and the SDK's
	// signer rewrites it in RFC 1123 form: only that form can match.
	raw := r.Header.Get("Date")
	signed, err := time.Parse(http.TimeFormat, raw)
	if err != nil || signed.Format(http.TimeFormat) != raw {
		return accessDenied("0002-00000010", "OSS authentication requires a valid Date.")
	}
	if e := s.checkSkew(signed, now); e != nil {
		return e
	}
	clone := r.Clone(r.Context())
	clone.Header.Del("Authorization")
	sc := &signer.SigningContext{
		Request:     clone,
		SubResource: V1SubResources,
		Credentials: sdkCredentials(c),
		Time:        signed,
	}
	if err := (&signer.SignerV1{}).Sign(r.Context(), sc); err != nil {
		return internalError()
	}
	_, want, _ := strings.Cut(clone.Header.Get("Authorization"), ":")
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return signatureMismatch("0002-00000040", msgSignatureDoesNotMatch)
	}
	return nil
}

func sdkCredentials(c Credential) *credentials.Credentials {
	return &credentials.Credentials{
		AccessKeyID:     c.AccessKeyID,
		AccessKeySecret: c.AccessKeySecret,
		SecurityToken:   c.SecurityToken,
	}
}
