package job_test

import (
	"testing"

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
