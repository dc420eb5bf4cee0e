package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Generic webhook: the CloudEvent as published, signed the Standard
// Webhooks way (github.com/standard-webhooks/standard-webhooks,
// spec/standard-webhooks.md):
//   - headers webhook-id (the event id, stable across retries, so the
//     receiver can deduplicate), webhook-timestamp (Unix seconds) and
//     webhook-signature "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>";
//   - the key is the base64-decoded part of a "whsec_" secret; any other
//     secret is used as its bytes;
//   - receivers reject timestamps more than 5 minutes off (the reference
//     libraries' tolerance).
//
// One event per request: the body is the event exactly as published, so
// webhooks get no digests (see Digestible).

// WebhookContentType is the Content-Type of a webhook's request.
const WebhookContentType = "application/cloudevents+json"

// WebhookKey is the HMAC key of a webhook secret: the base64-decoded part
// after "whsec_", or the secret's bytes. An empty secret has no key.
func WebhookKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, errors.New(`the part after "whsec_" is not base64`)
		}
		if len(key) == 0 {
			return nil, errors.New(`nothing after "whsec_"`)
		}
		return key, nil
	}
	return []byte(secret), nil
}

// WebhookSign is the Standard Webhooks signature of one request, the
// value of the webhook-signature header.
func WebhookSign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

type webhook struct {
	base
	key []byte
}

func (w *webhook) Send(ctx context.Context, m Message) (Reply, error) {
	if len(m.Events) != 1 {
		// The engine's bug (see Digestible): retrying will not fix it.
		e := w.fail("rejected", 0, 0,
			errors.New("a webhook takes exactly one event per request (no digests), got "+strconv.Itoa(len(m.Events))))
		e.Slow = true
		return Reply{}, e
	}
	e := m.Events[0]
	body := e.Raw
	if len(body) == 0 {
		body = e.CloudEvent()
	}
	ts := w.now().Unix()
	h := http.Header{}
	h.Set("webhook-id", e.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	if w.key != nil {
		h.Set("webhook-signature", WebhookSign(w.key, e.ID, ts, body))
	}
	rp, serr := w.do(ctx, request{url: w.url, contentType: WebhookContentType, header: h, body: body})
	if serr != nil {
		return Reply{}, serr
	}
	if err := w.httpError(rp); err != nil {
		return Reply{}, err
	}
	return w.okReply(rp), nil
}

// CloudEvent encodes e as a structured-mode CloudEvent, for events that
// were not read from the stream (SampleEvent). Events read with ParseEvent
// have their published bytes in Raw.
func (e Event) CloudEvent() []byte {
	type envelope struct {
		SpecVersion     string    `json:"specversion"`
		ID              string    `json:"id"`
		Source          string    `json:"source"`
		Type            string    `json:"type"`
		Subject         string    `json:"subject"`
		Time            time.Time `json:"time"`
		DataContentType string    `json:"datacontenttype"`
		Data            EventData `json:"data"`
	}
	b, err := json.Marshal(envelope{"1.0", e.ID, e.Source, e.Type, e.Subject, e.Time, "application/json", e.Data})
	if err != nil {
		panic("notify: encode event: " + err.Error())
	}
	return b
}
