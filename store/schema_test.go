package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

const (
	typeDiscovered    = "ossjobwatch.job.discovered"
	typeStatusChanged = "ossjobwatch.job.status_changed"
	typeProgress      = "ossjobwatch.job.progress"
	typeTasksFailed   = "ossjobwatch.job.tasks_failed"
)

// event is a job_events row, for tests that write them by hand.
type event struct {
	target, jobID string
	sequence      int64
	typ           string
	from, to      *string
	observedAt    time.Time
	payload       []byte
}

func status(s string) *string { return &s }

func insertEvent(t *testing.T, s *store.Store, e event) error {
	t.Helper()
	payload := e.payload
	if payload == nil {
		payload = fmt.Appendf(nil, `{"type":%q,"subject":%q,"data":{"sequence":%d}}`, e.typ, e.jobID, e.sequence)
	}
	_, err := s.Pool().Exec(t.Context(), `
		INSERT INTO job_events (id, target, job_id, sequence, type, subject, from_status, to_status, payload, observed_at)
		VALUES (gen_random_uuid(), $1, $2, $3, $4, 'ossjobs.' || $1 || '.x', $5, $6, $7, $8)`,
		e.target, e.jobID, e.sequence, e.typ, e.from, e.to, payload, e.observedAt)
	return err
}

func TestJobStatusHistory(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	at := func(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

	for _, e := range []event{
		{target: "hz", jobID: "job-1", sequence: 1, typ: typeDiscovered, to: status("New"), observedAt: at(0)},
		{target: "hz", jobID: "job-1", sequence: 2, typ: typeProgress, observedAt: at(1)},
		{target: "hz", jobID: "job-1", sequence: 3, typ: typeStatusChanged, from: status("New"), to: status("Active"), observedAt: at(2)},
		{target: "hz", jobID: "job-1", sequence: 4, typ: typeTasksFailed, observedAt: at(3)},
		{target: "hz", jobID: "job-1", sequence: 5, typ: typeStatusChanged, from: status("Active"), to: status("Failed"), observedAt: at(10)},
		// The same job id in another target is another job.
		{target: "sh", jobID: "job-1", sequence: 1, typ: typeDiscovered, to: status("Active"), observedAt: at(5)},
		{target: "hz", jobID: "job-2", sequence: 1, typ: typeDiscovered, to: status("Complete"), observedAt: at(7)},
	} {
		if err := insertEvent(t, s, e); err != nil {
			t.Fatal(err)
		}
	}

	type row struct {
		target, status  string
		sequence        int64
		entered, left   time.Time
		hasLeft         bool
		durationMinutes float64
	}
	want := []row{
		{"hz", "New", 1, at(0), at(2), true, 2},
		{"hz", "Active", 3, at(2), at(10), true, 8},
		{"hz", "Failed", 5, at(10), time.Time{}, false, 0},
		{"sh", "Active", 1, at(5), time.Time{}, false, 0},
	}

	rows, err := s.Pool().Query(t.Context(), `
		SELECT target, status, sequence, entered_at, left_at, duration
		FROM job_status_history WHERE job_id = 'job-1' ORDER BY target, sequence`)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		var left pgtype.Timestamptz
		var duration pgtype.Interval
		if err := rows.Scan(&r.target, &r.status, &r.sequence, &r.entered, &left, &duration); err != nil {
			t.Fatal(err)
		}
		if left.Valid != duration.Valid {
			t.Errorf("left_at %v but duration %v", left, duration)
		}
		r.entered = r.entered.UTC()
		if left.Valid {
			r.left, r.hasLeft = left.Time.UTC(), true
			r.durationMinutes = time.Duration(duration.Microseconds * int64(time.Microsecond)).Minutes()
			if duration.Days != 0 || duration.Months != 0 {
				t.Errorf("duration %v has days or months", duration)
			}
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("job_status_history has %d rows for job-1, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestJobEvents(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	now := time.Now()

	// Key order and spacing a jsonb column would not keep.
	payload := []byte(`{"specversion":"1.0",  "id":"e1","type":"ossjobwatch.job.discovered","data":{"z":1,"a":"ü"}}`)
	if err := insertEvent(t, s, event{target: "hz", jobID: "job-1", sequence: 1, typ: typeDiscovered, to: status("New"), observedAt: now, payload: payload}); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	var a string
	var pos int64
	if err := s.Pool().QueryRow(t.Context(), `SELECT payload, payload->'data'->>'a', pos FROM job_events WHERE job_id = 'job-1'`).Scan(&stored, &a, &pos); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, payload) {
		t.Errorf("payload came back as %s, want %s", stored, payload)
	}
	if a != "ü" {
		t.Errorf("payload->'data'->>'a' = %q, want %q", a, "ü")
	}

	if err := insertEvent(t, s, event{target: "hz", jobID: "job-1", sequence: 2, typ: typeProgress, observedAt: now}); err != nil {
		t.Fatal(err)
	}
	var pos2 int64
	if err := s.Pool().QueryRow(t.Context(), `SELECT pos FROM job_events WHERE job_id = 'job-1' AND sequence = 2`).Scan(&pos2); err != nil {
		t.Fatal(err)
	}
	if pos2 <= pos {
		t.Errorf("pos of the second event = %d, want more than %d", pos2, pos)
	}

	tests := []struct {
		name     string
		event    event
		sqlState string
	}{
		{"payload not JSON", event{target: "hz", jobID: "job-2", sequence: 1, typ: typeProgress, payload: []byte(`{"a":`)}, "22P02"},
		{"payload not UTF-8", event{target: "hz", jobID: "job-2", sequence: 1, typ: typeProgress, payload: []byte("\"\xff\"")}, "22021"},
		{"sequence taken", event{target: "hz", jobID: "job-1", sequence: 1, typ: typeProgress}, "23505"},
		{"sequence 0", event{target: "hz", jobID: "job-2", sequence: 0, typ: typeProgress}, "23514"},
		{"status change without status", event{target: "hz", jobID: "job-2", sequence: 1, typ: typeStatusChanged, from: status("New")}, "23514"},
		{"discovered without status", event{target: "hz", jobID: "job-2", sequence: 1, typ: typeDiscovered}, "23514"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.event.observedAt = now
			err := insertEvent(t, s, tt.event)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.sqlState {
				t.Errorf("insert error = %v, want SQLSTATE %s", err, tt.sqlState)
			}
		})
	}
}
