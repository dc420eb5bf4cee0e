package store

import (
	"cmp"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// redacted replaces a password; pgx masks with the same string.
const redacted = "xxxxx"

// RedactURL returns the database URL with every password replaced by
// "xxxxx", so that it can be logged or put in an error. It handles both forms
// PostgreSQL accepts: URLs (postgres://user:secret@host/db?sslpassword=…) and
// key=value DSNs (host=h password='se cret'). A URL that does not parse cleanly is
// masked generously, from its first ':' after the scheme to its last '@':
// hiding too much beats leaking.
func RedactURL(databaseURL string) string {
	var b strings.Builder
	last := 0
	for _, sp := range passwordSpans(databaseURL) {
		b.WriteString(databaseURL[last:sp.start])
		b.WriteString(redacted)
		last = sp.end
	}
	b.WriteString(databaseURL[last:])
	return b.String()
}

// span is a password's byte range in a DSN.
type span struct{ start, end int }

// passwordSpans returns the byte ranges of the passwords in dsn, in order and
// not overlapping.
//
// A DSN with "://" before any '=' is read as a URL whatever its scheme's
// case or spelling and whatever white space leads it ("POSTGRES://…",
// " postgres://…", "postgress://…"): pgx refuses those as key=value
// strings, and its error would otherwise echo them in full.
func passwordSpans(dsn string) []span {
	if i := strings.Index(dsn, "://"); i >= 0 && !strings.Contains(dsn[:i], "=") {
		return mergeSpans(urlPasswordSpans(dsn, i+len("://")))
	}
	return keywordPasswordSpans(dsn)
}

// mergeSpans sorts spans and joins those that overlap.
func mergeSpans(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var out []span
	for _, sp := range spans {
		if n := len(out); n > 0 && sp.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// urlPasswordSpans finds the userinfo password and the password and
// sslpassword query values of a URL whose authority starts at dsn[start].
func urlPasswordSpans(dsn string, start int) []span {
	var spans []span
	rest := dsn[start:]
	var queryAt int // index of the query in rest, or -1
	if wellFormedURL(dsn) {
		// The structure is certain; follow net/url: the query starts at the
		// first '?', the authority ends at the first '/' or '?', and its
		// userinfo at its last '@'.
		queryAt = strings.IndexByte(rest, '?')
		authority := rest
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			authority = rest[:i]
		}
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			if colon := strings.IndexByte(authority[:at], ':'); colon >= 0 {
				spans = append(spans, span{start + colon + 1, start + at})
			}
		}
	} else {
		// Malformed, typically by an unescaped '@', '/', '?' or '#' in the
		// password: assume the userinfo runs to the last '@', and the query
		// from the first '?'. The spans may overlap; mergeSpans joins them.
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
				spans = append(spans, span{start + colon + 1, start + at})
			}
		}
		queryAt = strings.IndexByte(rest, '?')
	}
	if queryAt < 0 {
		return spans
	}
	pos := start + queryAt + 1
	for pair := range strings.SplitSeq(rest[queryAt+1:], "&") {
		rawKey, value, ok := strings.Cut(pair, "=")
		if ok && value != "" {
			key := rawKey
			if k, err := url.QueryUnescape(rawKey); err == nil {
				key = k
			}
			if isPasswordKey(key) {
				valueAt := pos + len(rawKey) + 1
				spans = append(spans, span{valueAt, valueAt + len(value)})
			}
		}
		pos += len(pair) + 1
	}
	return spans
}

// wellFormedURL reports whether dsn parses as a URL whose only '@' outside
// the userinfo are in query values. A DSN has no fragment, a single '?', and
// no '@' in its database name or parameter names: anything else more likely
// comes from a password with characters left unescaped, which makes the URL
// parse as something else.
func wellFormedURL(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil || strings.Contains(dsn, "#") || strings.Contains(u.Path, "@") || strings.Contains(u.RawQuery, "?") {
		return false
	}
	for pair := range strings.SplitSeq(u.RawQuery, "&") {
		if key, _, _ := strings.Cut(pair, "="); strings.ContainsAny(key, "@?") {
			return false
		}
	}
	return true
}

// keywordPasswordSpans finds the password and sslpassword values of a
// key=value DSN, scanning it as libpq does: values are bare words or
// single-quoted, with backslash escapes in both. An unterminated quote runs
// to the end.
func keywordPasswordSpans(dsn string) []span {
	var spans []span
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	i := 0
	for i < len(dsn) {
		for i < len(dsn) && isSpace(dsn[i]) {
			i++
		}
		keyStart := i
		for i < len(dsn) && dsn[i] != '=' && !isSpace(dsn[i]) {
			i++
		}
		key := dsn[keyStart:i]
		for i < len(dsn) && isSpace(dsn[i]) {
			i++
		}
		if i >= len(dsn) || dsn[i] != '=' {
			continue // malformed; pgx rejects it, nothing to mask
		}
		i++
		for i < len(dsn) && isSpace(dsn[i]) {
			i++
		}
		valueStart := i
		if i < len(dsn) && dsn[i] == '\'' {
			for i++; i < len(dsn) && dsn[i] != '\''; i++ {
				if dsn[i] == '\\' {
					i++
				}
			}
			i = min(i+1, len(dsn)) // past the closing quote
		} else {
			for ; i < len(dsn) && !isSpace(dsn[i]); i++ {
				if dsn[i] == '\\' {
					i++
				}
			}
			i = min(i, len(dsn))
		}
		if isPasswordKey(key) && i > valueStart {
			spans = append(spans, span{valueStart, i})
		}
	}
	return spans
}

func isPasswordKey(key string) bool {
	key = strings.ToLower(key)
	return key == "password" || key == "sslpassword"
}

// redactError returns err with every password of dsn masked in its message.
// pgx already redacts the DSNs it prints; this also covers what it cannot
// know, such as a password echoed in a server or a wrapped error. The
// original error stays reachable through errors.Is and errors.As.
func redactError(err error, dsn string) error {
	msg := err.Error()
	// pgx quotes a DSN it cannot parse, redacted by a guess that can leave
	// part of a malformed password (after an unescaped '@', say), and may
	// append net/url's error, which quotes pieces of it: name the DSN by
	// RedactURL instead, and keep the reason only if it quotes nothing.
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		msg = strings.Replace(msg, pce.Error(), "cannot parse "+RedactURL(dsn)+": "+parseProblem(pce), 1)
	}
	ss := secrets(dsn)
	slices.SortFunc(ss, func(a, b string) int { return cmp.Compare(len(b), len(a)) }) // longest first
	for _, secret := range ss {
		if secret == "" {
			continue
		}
		msg = strings.ReplaceAll(msg, secret, redacted)
	}
	return &redactedError{msg: msg, err: err}
}

// secrets returns the passwords of dsn as written in it and as decoded.
func secrets(dsn string) []string {
	var out []string
	for _, sp := range passwordSpans(dsn) {
		raw := dsn[sp.start:sp.end]
		if raw == "" {
			continue
		}
		forms := []string{raw}
		if s, err := url.PathUnescape(raw); err == nil && s != raw {
			forms = append(forms, s)
		}
		if s, err := url.QueryUnescape(raw); err == nil && s != raw {
			forms = append(forms, s)
		}
		if s := strings.Trim(raw, "'"); s != raw {
			forms = append(forms, s, strings.NewReplacer(`\\`, `\`, `\'`, `'`).Replace(s))
		}
		// Escaped again, as a URL or a %q-quoted message would show them.
		for _, f := range slices.Clone(forms) {
			forms = append(forms, url.PathEscape(f), url.QueryEscape(f))
		}
		for _, f := range forms {
			out = append(out, f)
			if q := strconv.Quote(f); len(q) > 2 && q[1:len(q)-1] != f {
				out = append(out, q[1:len(q)-1])
			}
		}
	}
	return out
}

// RedactError returns err with every password of databaseURL masked in its
// message, as written, decoded and escaped again, for errors that did not
// come through Open (a failed ping of a running daemon, say). A nil err
// stays nil; the original stays reachable through errors.Is and errors.As.
func RedactError(err error, databaseURL string) error {
	if err == nil {
		return nil
	}
	return redactError(err, databaseURL)
}

// parseProblem is the reason pgx gives for rejecting a DSN, unless it
// quotes any part of the DSN.
func parseProblem(pce *pgconn.ParseConfigError) string {
	full := pce.Error()
	reason := full
	if i := strings.LastIndex(full, "`: "); i >= 0 {
		reason = full[i+3:]
	}
	if reason == full || strings.ContainsAny(reason, "`'\"") {
		return "malformed (characters such as @ / ? # % in a password must be percent-encoded)"
	}
	return reason
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
