// Package notify delivers chosen events to chat robots and webhooks: one
// durable JetStream consumer per route, a Sender per receiver that formats,
// signs and posts the platform's request and judges its reply, a rate
// limit per receiver that folds bursts into digests, and a record of
// deliveries in PostgreSQL so a redelivered message skips the receivers
// that already have it.
//
// The wire format of each receiver type is fixed by the contract's
// Notifications section; see the README.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"text/template"
	"time"
)

// Receiver types.
const (
	TypeDingTalk = "dingtalk"
	TypeFeishu   = "feishu"
	TypeWeCom    = "wecom"
	TypeSlack    = "slack"
	TypeWebhook  = "webhook"
)

// Types lists every receiver type, in the contract's order.
var Types = []string{TypeDingTalk, TypeFeishu, TypeWeCom, TypeSlack, TypeWebhook}

// ReceiverConfig is one receiver of the config's notify section, its
// ${VAR}s already expanded.
type ReceiverConfig struct {
	Name string
	Type string
	// URL is where requests go. It may hold a token (DingTalk's
	// access_token, WeCom's key): it is a secret and never printed.
	URL string
	// Secret signs requests; empty sends them unsigned.
	Secret string
	// Rates bound how many requests the receiver gets; empty takes the
	// type's defaults (DefaultRates).
	Rates []Rate
}

// Rate is at most Count requests in any window of Per.
type Rate struct {
	Count int
	Per   time.Duration
}

func (r Rate) String() string {
	switch r.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", r.Count)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.Count)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.Count)
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Per)
}

// RouteConfig is one route: the events whose NATS subject matches one of
// Subjects reach every receiver named in Receivers.
type RouteConfig struct {
	Name      string
	Subjects  []string
	Receivers []string
	// Template, when not empty, is a Go text/template over an Event that
	// replaces the receiver type's default message text.
	Template string
}

// Event is a published event as a receiver sees it: the CloudEvent's
// attributes, its data, and the exact bytes published (what a webhook
// gets).
type Event struct {
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Type        string    `json:"type"`
	Subject     string    `json:"subject"`
	Time        time.Time `json:"time"`
	Data        EventData `json:"data"`
	NATSSubject string    `json:"-"`
	Raw         []byte    `json:"-"`
}

// EventData is the CloudEvent's data (see the contract's Event section).
// Fields an event kind does not carry are zero.
type EventData struct {
	JobID                string          `json:"jobId"`
	Target               string          `json:"target"`
	Region               string          `json:"region"`
	Status               string          `json:"status"`
	PreviousStatus       string          `json:"previousStatus"`
	Operation            string          `json:"operation"`
	Description          string          `json:"description"`
	Priority             int64           `json:"priority"`
	CreationTime         *time.Time      `json:"creationTime"`
	TerminationTime      *time.Time      `json:"terminationTime"`
	Tasks                Tasks           `json:"tasks"`
	ElapsedActiveSeconds int64           `json:"elapsedActiveSeconds"`
	FailedDelta          int64           `json:"failedDelta"`
	SucceededDelta       int64           `json:"succeededDelta"`
	Sequence             int64           `json:"sequence"`
	ObservedAt           time.Time       `json:"observedAt"`
	SweepID              string          `json:"sweepId"`
	Baseline             bool            `json:"baseline"`
	Reason               string          `json:"reason"`
	StalledSince         *time.Time      `json:"stalledSince"`
	SuspendedSince       *time.Time      `json:"suspendedSince"`
	FailsAt              *time.Time      `json:"failsAt"`
	FailureReasons       []FailureReason `json:"failureReasons"`
	StatusUpdateReason   string          `json:"statusUpdateReason"`
	ConfirmationRequired bool            `json:"confirmationRequired"`
	EnrichmentError      string          `json:"enrichmentError"`
}

// Tasks are a job's task counters.
type Tasks struct {
	Total     int64 `json:"total"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
}

// FailureReason is one of DescribeJob's failure reasons.
type FailureReason struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// ParseEvent reads a published CloudEvent. natsSubject is the subject it
// was published on.
func ParseEvent(natsSubject string, body []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("parse event on %s: %w", natsSubject, err)
	}
	if ev.ID == "" {
		return Event{}, fmt.Errorf("parse event on %s: no id", natsSubject)
	}
	ev.NATSSubject = natsSubject
	ev.Raw = body
	return ev, nil
}

// Message is what one request to a receiver carries: one event, or a
// digest of several that waited while the receiver's rate was spent.
type Message struct {
	// Events holds one event, or more for a digest, oldest first.
	Events []Event
	// Template, when not nil, renders the text of a single-event message
	// in place of the type's default. Digests use the default.
	Template *template.Template
}

// Sender delivers messages to one receiver.
type Sender interface {
	// Send makes one request. It returns the platform's answer when the
	// receiver accepted the message, or a *SendError saying why not.
	Send(ctx context.Context, m Message) (Reply, error)
}

// Reply is what the platform answered.
type Reply struct {
	// Status is the HTTP status code.
	Status int
	// Body is the start of the reply's body, for `notify --test`.
	Body string
}

// SendError is a refused or failed request.
type SendError struct {
	Receiver string
	// Reason is a short label for metrics and logs: "throttled",
	// "signature", "keyword", "rejected", "http_4xx", "http_5xx",
	// "timeout", "network", "too_large", "redirected".
	Reason string
	// Status is the HTTP status code, 0 when no reply came.
	Status int
	// Code is the platform's errcode/code, 0 when none.
	Code int
	// RetryAfter is the wait the receiver asked for (Retry-After), or 0.
	RetryAfter time.Duration
	// Slow asks for slow retries: the fault needs a person (a wrong
	// secret, a missing keyword) and hammering will not fix it.
	Slow bool
	// Content says the platform refused this message for what it holds
	// (its size, its text: a 4xx other than 401, 403, 404, 408, 410 and
	// 429, DingTalk's 430xxx, "too_large"), not for the receiver's
	// setup: other messages may still go through. The engine sets the
	// event aside (see the worker) rather than hold the receiver.
	Content bool
	Err     error
}

func (e *SendError) Error() string {
	s := fmt.Sprintf("notify %s: %s", e.Receiver, e.Reason)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Code != 0 {
			s += fmt.Sprintf(", code %d", e.Code)
		}
		s += ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SendError) Unwrap() error { return e.Err }
