package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// NewEvent encodes a real event of job jobID of target: discovered for
// sequence 1, progress after that, on the default subject prefix. Its
// payload is what a sweep writes, about 650 bytes.
func NewEvent(tb testing.TB, target, jobID string, sequence int64, observedAt time.Time) event.Event {
	tb.Helper()
	id, err := event.NewID()
	if err != nil {
		tb.Fatal(err)
	}
	c := diff.Change{Kind: diff.Progress, Sequence: sequence, SucceededDelta: 10, Job: &job.Job{
		ID: jobID, Status: job.StatusActive, Operation: "PutObjectTagging", Description: "nightly tagging",
		Priority: 1, CreationTime: observedAt.Add(-time.Hour),
		Tasks: job.Tasks{Total: 1000, Succeeded: 10 * sequence}, ElapsedActiveSeconds: 60 * sequence,
	}}
	if sequence == 1 {
		c.Kind, c.SucceededDelta = diff.Discovered, 0
	}
	ev, err := event.Encode(id, c, event.Enrichment{}, event.Meta{
		Target: target, Region: "cn-hangzhou", SubjectPrefix: event.DefaultSubjectPrefix,
		SweepID: id, ObservedAt: observedAt,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

// InsertEvents appends events of target to the outbox, unpublished, in the
// order given, with COPY as a sweep does; it writes no snapshots.
func InsertEvents(tb testing.TB, st *store.Store, target string, evs ...event.Event) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	rows := make([][]any, len(evs))
	for i, ev := range evs {
		var from any
		if ev.From != "" {
			from = string(ev.From)
		}
		rows[i] = []any{ev.ID, target, ev.JobID, ev.Sequence, ev.Type, ev.Subject, from, string(ev.To), ev.Payload, ev.ObservedAt}
	}
	_, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"job_events"},
		[]string{"id", "target", "job_id", "sequence", "type", "subject", "from_status", "to_status", "payload", "observed_at"},
		pgx.CopyFromRows(rows))
	if err != nil {
		tb.Fatal(fmt.Errorf("storetest: insert %d events: %w", len(evs), err))
	}
}
