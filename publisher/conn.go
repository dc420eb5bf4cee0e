package publisher

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// reconnectWait is the pause between reconnect attempts, before nats.go's
// jitter.
const reconnectWait = time.Second

// Connect connects to NATS at natsURL (one URL or a comma-separated list)
// under the client name name. The connection reconnects forever: nats.go's
// default gives up after about two minutes and closes the connection for
// good, which would leave a long-running relay unable to publish. A nil
// logger discards.
// Disconnections, reconnections and asynchronous errors are logged, with
// credentials removed from URLs (nats.go's own ConnectedUrlRedacted hides a
// password but not a token).
//
// No error or log line carries natsURL's password or token, in any
// escaping: a URL that does not parse is rejected here, without quoting it
// (nats.go's parse errors quote the whole URL, or the part of the password
// before an unescaped '/', '?' or '#'), and every error nats.go returns or
// reports is scrubbed of the secrets (see RedactError).
//
// The connection does not buffer publishes while it is disconnected: one
// made then fails at once (nats.ErrReconnectBufExceeded) and the event stays
// in the outbox. nats.go's default buffer would send it on reconnecting,
// possibly after the stream's duplicate window and after newer events
// published meanwhile, storing a stale copy. opts cannot turn the buffer
// back on.
//
// opts come after the other defaults: credentials (nats.UserCredentials) and
// TLS (nats.RootCAs) go there.
func Connect(natsURL, name string, logger *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckURL(natsURL); err != nil {
		return nil, err
	}
	scrub := func(err error) error { return RedactError(err, natsURL) }
	nc, err := nats.Connect(natsURL, slices.Concat([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS disconnected", "err", scrub(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("NATS reconnected", "url", RedactURL(nc.ConnectedUrl()))
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			logger.Info("NATS connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logger.Error("NATS error", "subject", sub.Subject, "err", scrub(err))
				return
			}
			logger.Error("NATS error", "err", scrub(err))
		}),
	}, opts, []nats.Option{nats.ReconnectBufSize(-1)})...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(natsURL), scrub(err))
	}
	logger.Info("NATS connected", "url", RedactURL(nc.ConnectedUrl()))
	return nc, nil
}

// CheckURL reports whether natsURL (one URL or a comma-separated list)
// parses as nats.go will parse it, with an error that names the server by
// its redacted form and never quotes the URL or any part of it.
func CheckURL(natsURL string) error {
	for i, p := range splitURLs(natsURL) {
		if !strings.Contains(p, "://") {
			p = "nats://" + p // as nats.go does
		}
		if _, err := url.Parse(p); err != nil {
			return fmt.Errorf("NATS URL %d of %d in %s does not parse: %s; a password or token must escape its special characters (%%40 for @, %%2F for /, %%25 for %%, %%2C for a comma)",
				i+1, len(splitURLs(natsURL)), RedactURL(natsURL), urlProblem(err))
		}
	}
	return nil
}

// urlProblem says what url.Parse disliked without quoting the input: its
// messages quote the URL, an escape or a port, any of which can be part of a
// password.
func urlProblem(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "invalid URL escape"):
		return "a %-escape is not two hexadecimal digits"
	case strings.Contains(msg, "invalid port"):
		return "the port is not a number (an unescaped / ? or # in a password?)"
	case strings.Contains(msg, "invalid userinfo"):
		return "the user or password has a character that must be escaped"
	case strings.Contains(msg, "invalid character"):
		return "the host name has an invalid character"
	case strings.Contains(msg, "missing ']'"):
		return "an IPv6 address lacks its closing ]"
	}
	return "malformed"
}

// splitURLs splits a server list as nats.go does.
func splitURLs(natsURL string) []string {
	var out []string
	for p := range strings.SplitSeq(natsURL, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// redacted replaces user information in URLs and secrets in errors.
const redacted = "redacted"

// RedactURL returns a NATS URL, or comma-separated list of them, safe to
// log: any user information (user and password, or a token) becomes
// "redacted". It does not parse the URL, so that a malformed one (an
// unescaped '@', '/', '#' or ',' in a password, a bad %-escape, no scheme)
// is redacted as well: everything before the last '@' of a server, after its
// scheme, is user information, and a server that has an '@' but no scheme
// continues the one before it (its password held a comma), so the two are
// redacted as one.
func RedactURL(natsURL string) string {
	pieces := credentialPieces(natsURL)
	for i, p := range pieces {
		at := strings.LastIndexByte(p, '@')
		if at < 0 {
			continue
		}
		scheme := ""
		if j := strings.Index(p[:at], "://"); j >= 0 {
			scheme = p[:j+3]
		}
		pieces[i] = scheme + redacted + p[at:]
	}
	return strings.Join(pieces, ",")
}

// credentialPieces splits a server list on commas as nats.go does, except
// that a piece with an '@' and no scheme is joined to the piece before it:
// "nats://u:a,b@h" is one server whose password has a comma, and
// "nats://h1,u:p@h2" is read the same way, which redacts h1 too (safe, if
// more than needed).
func credentialPieces(natsURL string) []string {
	var out []string
	for p := range strings.SplitSeq(natsURL, ",") {
		p = strings.TrimSpace(p)
		if len(out) > 0 && strings.Contains(p, "@") && !strings.Contains(p[:strings.LastIndexByte(p, '@')], "://") {
			out[len(out)-1] += "," + p
			continue
		}
		out = append(out, p)
	}
	return out
}

// RedactError returns err with every secret of natsURL (each server's
// password or token, as written, decoded and escaped the ways net/url and
// Go's %q escape it) and every server URL as written replaced, so that it
// can be logged or shown. The original error stays reachable through
// errors.Is and errors.As. A nil err stays nil.
func RedactError(err error, natsURL string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, p := range credentialPieces(natsURL) {
		if strings.Contains(p, "@") {
			clean = strings.ReplaceAll(clean, p, RedactURL(p))
		}
	}
	for _, s := range urlSecrets(natsURL) {
		clean = strings.ReplaceAll(clean, s, redacted)
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// urlSecrets returns the forms, longest first, in which the passwords and
// tokens of natsURL may appear in a message.
func urlSecrets(natsURL string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	// Both readings: each server as nats.go splits the list, and servers
	// joined where a password may hold a comma.
	for _, p := range slices.Concat(splitURLs(natsURL), credentialPieces(natsURL)) {
		at := strings.LastIndexByte(p, '@')
		if at < 0 {
			continue
		}
		userinfo := p[:at]
		if j := strings.Index(userinfo, "://"); j >= 0 {
			userinfo = userinfo[j+3:]
		}
		secret := userinfo // a token
		if _, pw, ok := strings.Cut(userinfo, ":"); ok {
			secret = pw
		}
		forms := []string{secret}
		// nats.go splits the list on commas, so its messages may quote a
		// password's pieces on their own.
		if strings.Contains(secret, ",") {
			for frag := range strings.SplitSeq(secret, ",") {
				if len(frag) >= 3 {
					forms = append(forms, frag)
				}
			}
		}
		if d, err := url.PathUnescape(secret); err == nil {
			forms = append(forms, d)
		}
		if d, err := url.QueryUnescape(secret); err == nil {
			forms = append(forms, d)
		}
		for _, f := range slices.Clone(forms) {
			forms = append(forms, url.PathEscape(f), url.QueryEscape(f), url.UserPassword("u", f).String()[2:])
		}
		for _, f := range forms {
			add(f)
			if q := strconv.Quote(f); len(q) > 2 {
				add(q[1 : len(q)-1]) // as %q shows it, inside a quoted URL
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// NewJetStream is the JetStream context the relay and replay need: its
// pending async publishes expire after DefaultPublishTimeout, so that
// publishes a stream never answered do not pile up in nats.go and block all
// later ones.
func NewJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(DefaultPublishTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}
