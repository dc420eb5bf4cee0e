package job_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	terminal := map[job.Status]bool{job.StatusComplete: true, job.StatusCancelled: true, job.StatusFailed: true}
	detail := map[job.Status]bool{job.StatusFailing: true, job.StatusFailed: true, job.StatusCancelling: true, job.StatusCancelled: true, job.StatusSuspended: true}
	for _, s := range job.Statuses {
		if !s.Known() || s.Terminal() != terminal[s] || s.NeedsDetail() != detail[s] || s.Token() != string(s) {
			t.Errorf("%s: known %v terminal %v detail %v token %q", s, s.Known(), s.Terminal(), s.NeedsDetail(), s.Token())
		}
	}
	for s, token := range map[job.Status]string{"": "_", "Archiving.v2": "Archiving_v2", "a b*>": "a_b__", "Ünknown": "_nknown", "ok_-9": "ok_-9"} {
		if s.Known() || s.Terminal() {
			t.Errorf("%q is known or terminal", s)
		}
		if got := s.Token(); got != token {
			t.Errorf("Token(%q) = %q, want %q", s, got, token)
		}
	}
}

func TestJobEqual(t *testing.T) {
	t.Parallel()
	base := job.Job{ID: " j ", Status: job.StatusActive, CreationTime: time.Unix(1749983400, 0).UTC(),
		Anomalies: []job.Anomaly{{Field: "TerminationDate", Raw: "-1", Reason: "negative Unix time"}}}
	same := base
	same.CreationTime = base.CreationTime.In(time.FixedZone("UTC+8", 8*3600))
	same.Anomalies = slices.Clone(base.Anomalies)
	if !base.Equal(same) {
		t.Errorf("%+v and %+v: want equal (same instant, same anomalies)", base, same)
	}
	for name, change := range map[string]func(*job.Job){
		"id":        func(j *job.Job) { j.ID = "j" },
		"elapsed":   func(j *job.Job) { j.ElapsedActiveSeconds = 1 },
		"anomaly":   func(j *job.Job) { j.Anomalies[0].Raw = "-2" },
		"anomalies": func(j *job.Job) { j.Anomalies = nil },
		"tasks":     func(j *job.Job) { j.Tasks.Failed = 1 },
	} {
		other := base
		other.Anomalies = slices.Clone(base.Anomalies)
		change(&other)
		if base.Equal(other) {
			t.Errorf("%s differs, yet Equal reports true", name)
		}
	}
}

func TestUnfinishedIsEveryStatusButTheTerminalOnes(t *testing.T) {
	t.Parallel()
	var want []job.Status
	for _, s := range job.Statuses {
		if !s.Terminal() {
			want = append(want, s)
		}
	}
	if got := job.Unfinished(); !slices.Equal(got, want) {
		t.Errorf("Unfinished() = %v, want %v", got, want)
	}
}
