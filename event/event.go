// Package event is ossjobwatch's public contract in code: the CloudEvents
// JSON a change becomes and the NATS subject it is published on. What this
// package emits is what users build on; change it only with the contract.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/job"
)

// ContentType is the NATS Content-Type header of every event: structured
// mode, the body is the whole event.
const ContentType = "application/cloudevents+json"

// TypePrefix starts every event type, e.g. "ossjobwatch.job.progress".
const TypePrefix = "ossjobwatch.job."

// DefaultSubjectPrefix is the subject prefix when none is configured.
const DefaultSubjectPrefix = "ossjobs"

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidName reports whether s may be a target name or a subject prefix
// token: [A-Za-z0-9_-]+.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// ValidPrefix reports whether p is a usable subject prefix: one or more
// dot-separated tokens of [A-Za-z0-9_-].
func ValidPrefix(p string) bool {
	for _, tok := range bytes.Split([]byte(p), []byte(".")) {
		if !namePattern.Match(tok) {
			return false
		}
	}
	return true
}

// Type returns the CloudEvents type for a change kind.
func Type(k diff.Kind) string { return TypePrefix + k.String() }

// Subject returns the NATS subject of a change:
// <prefix>.<target>.discovered, .status.<From>.<To>, .tasks_failed,
// .progress or .removed. Statuses become safe tokens.
func Subject(prefix, target string, c diff.Change) string {
	base := prefix + "." + target + "."
	if c.Kind == diff.StatusChanged {
		return base + "status." + c.From.Token() + "." + c.Job.Status.Token()
	}
	return base + c.Kind.String()
}

// Source is the CloudEvents source of a target's events.
func Source(target string) string { return "/ossjobwatch/" + target }

// Meta is what a sweep knows that a change does not.
type Meta struct {
	Target        string
	Region        string
	SubjectPrefix string
	SweepID       string
	// ObservedAt is when the listing that showed the change was taken.
	ObservedAt time.Time
}

// Event is an encoded change, ready for the outbox.
type Event struct {
	ID       string
	Type     string
	Subject  string
	JobID    string
	Sequence int64
	// From and To are the statuses of a status change; To alone is set for
	// other kinds (the job's status).
	From, To job.Status
	// Payload is the exact JSON published, stored byte for byte.
	Payload    []byte
	ObservedAt time.Time
}

// envelope is a CloudEvents 1.0 structured-mode event. Field order is the
// order of the JSON.
type envelope struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            data      `json:"data"`
}

type data struct {
	JobID                string             `json:"jobId"`
	Target               string             `json:"target"`
	Region               string             `json:"region"`
	Status               job.Status         `json:"status"`
	PreviousStatus       *job.Status        `json:"previousStatus,omitempty"`
	Operation            string             `json:"operation"`
	Description          string             `json:"description"`
	Priority             int64              `json:"priority"`
	CreationTime         *time.Time         `json:"creationTime"`
	TerminationTime      *time.Time         `json:"terminationTime"`
	Tasks                job.Tasks          `json:"tasks"`
	ElapsedActiveSeconds int64              `json:"elapsedActiveSeconds"`
	FailedDelta          int64              `json:"failedDelta"`
	SucceededDelta       int64              `json:"succeededDelta"`
	Sequence             int64              `json:"sequence"`
	ObservedAt           time.Time          `json:"observedAt"`
	SweepID              string             `json:"sweepId"`
	Baseline             bool               `json:"baseline"`
	Reason               diff.RemovalReason `json:"reason,omitempty"`
	StalledSince         *time.Time         `json:"stalledSince,omitempty"`
	SuspendedSince       *time.Time         `json:"suspendedSince,omitempty"`
	FailsAt              *time.Time         `json:"failsAt,omitempty"`
	*enrichment
	// EnrichmentError replaces the enrichment when DescribeJob failed.
	EnrichmentError string `json:"enrichmentError,omitempty"`
}

// enrichment is DescribeJob's part of a status event into Failing, Failed,
// Cancelling, Cancelled or Suspended.
type enrichment struct {
	FailureReasons       []job.FailureReason `json:"failureReasons"`
	StatusUpdateReason   string              `json:"statusUpdateReason"`
	ConfirmationRequired bool                `json:"confirmationRequired"`
}

// NewID returns a new event id: a UUIDv7, unique and ordered by creation.
func NewID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new event id: %w", err)
	}
	return id.String(), nil
}

// Enrichment is what DescribeJob said about a job whose status changed
// into one it explains: its answer, or, when it failed after its retries,
// why (an OSS error code or a short reason).
type Enrichment struct {
	Detail *job.Detail
	Err    string
}

// Encode turns a change into its event. en enriches a status event into a
// status that needs it (job.Status.NeedsDetail) with DescribeJob's answer,
// or with enrichmentError when en.Err is set; it is ignored elsewhere. id is
// the event's id (see NewID).
func Encode(id string, c diff.Change, en Enrichment, m Meta) (Event, error) {
	if id == "" {
		return Event{}, errors.New("encode event: empty id")
	}
	if m.ObservedAt.IsZero() {
		return Event{}, errors.New("encode event: zero observation time")
	}
	j := c.Job
	observed := m.ObservedAt.UTC()
	env := envelope{
		SpecVersion:     "1.0",
		ID:              id,
		Source:          Source(m.Target),
		Type:            Type(c.Kind),
		Subject:         j.ID,
		Time:            observed,
		DataContentType: "application/json",
		Data: data{
			JobID:                j.ID,
			Target:               m.Target,
			Region:               m.Region,
			Status:               j.Status,
			Operation:            j.Operation,
			Description:          j.Description,
			Priority:             j.Priority,
			CreationTime:         optionalTime(j.CreationTime),
			TerminationTime:      optionalTime(j.TerminationTime),
			Tasks:                j.Tasks,
			ElapsedActiveSeconds: j.ElapsedActiveSeconds,
			FailedDelta:          c.FailedDelta,
			SucceededDelta:       c.SucceededDelta,
			Sequence:             c.Sequence,
			ObservedAt:           observed,
			SweepID:              m.SweepID,
			Baseline:             c.Baseline,
			Reason:               c.Reason,
			StalledSince:         optionalTime(c.StalledSince),
			SuspendedSince:       optionalTime(c.SuspendedSince),
			FailsAt:              optionalTime(c.FailsAt),
		},
	}
	ev := Event{
		ID:         id,
		Type:       env.Type,
		Subject:    Subject(m.SubjectPrefix, m.Target, c),
		JobID:      j.ID,
		Sequence:   c.Sequence,
		To:         j.Status,
		ObservedAt: observed,
	}
	if c.Kind == diff.StatusChanged {
		from := c.From
		env.Data.PreviousStatus = &from
		ev.From = from
		detail := en.Detail
		switch {
		case !j.Status.NeedsDetail():
		case en.Err != "":
			env.Data.EnrichmentError = en.Err
		case detail != nil:
			reasons := detail.FailureReasons
			if reasons == nil {
				reasons = []job.FailureReason{}
			}
			env.Data.enrichment = &enrichment{
				FailureReasons:       reasons,
				StatusUpdateReason:   detail.StatusUpdateReason,
				ConfirmationRequired: detail.ConfirmationRequired,
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the payload is not for HTML; keep '<' and '&' readable
	if err := enc.Encode(env); err != nil {
		return Event{}, fmt.Errorf("encode event for job %s: %w", j.ID, err)
	}
	ev.Payload = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return ev, nil
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
