package publisher

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
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
	nc, err := nats.Connect(natsURL, slices.Concat([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS disconnected", "err", err)
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
				logger.Error("NATS error", "subject", sub.Subject, "err", err)
				return
			}
			logger.Error("NATS error", "err", err)
		}),
	}, opts, []nats.Option{nats.ReconnectBufSize(-1)})...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(natsURL), err)
	}
	logger.Info("NATS connected", "url", RedactURL(nc.ConnectedUrl()))
	return nc, nil
}

// RedactURL returns a NATS URL, or comma-separated list of them, safe to
// log: any user information (user and password, or a token) becomes
// "redacted".
func RedactURL(natsURL string) string {
	parts := strings.Split(natsURL, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "@") {
			parts[i] = p
			continue
		}
		u, err := url.Parse(p)
		if err != nil || u.User == nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		u.User = url.User("redacted")
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

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
