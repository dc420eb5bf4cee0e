package poller_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// eventKeys returns every stored event as job, sequence, type, statuses
// and baseline flag, sorted.
func eventKeys(t *testing.T, b *bundle) []string {
	t.Helper()
	var keys []string
	for _, e := range events(t, b.store) {
		keys = append(keys, fmt.Sprintf("%s#%d %s %s>%s baseline=%v", e.JobID, e.Sequence, e.Type, e.From, e.To, e.Data["baseline"]))
	}
	slices.Sort(keys)
	return keys
}

// A first sweep large enough to be written in parts that fails after its
// first part committed leaves a target the next sweep finishes: the two
// together write exactly the events one successful first sweep writes,
// every job's discovery a baseline one, every job once.
func TestFirstSweepFailedInPartIsFinishedByTheNext(t *testing.T) {
	t.Parallel()
	const n = 25000 // three parts
	world := make([]job.Detail, n)
	for i := range world {
		status := job.Statuses[i%len(job.Statuses)]
		j := job.Job{ID: fmt.Sprintf("job-%05d", i), Status: status, Operation: "PutObjectTagging", Priority: 1,
			CreationTime: time.Unix(1749983400, 0), Tasks: job.Tasks{Total: 100, Succeeded: int64(i % 100), Failed: int64(i % 3)}}
		if status.Terminal() {
			j.TerminationTime = time.Unix(1749990000, 0)
		}
		world[i] = job.Detail{Job: j}
	}
	whole, failing := setup(t, osssim.Config{EmptyWorld: true}), setup(t, osssim.Config{EmptyWorld: true})
	for _, b := range []*bundle{whole, failing} {
		for _, d := range world {
			b.sim.Put(d)
		}
	}
	sweep(t, whole)

	// The database refuses a job of the second part.
	if _, err := failing.store.Pool().Exec(t.Context(), `
		CREATE FUNCTION refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'job % refused for the test', NEW.job_id; END $$;
		CREATE TRIGGER refuse_job BEFORE INSERT ON jobs FOR EACH ROW
			WHEN (NEW.job_id = 'job-15000') EXECUTE FUNCTION refuse_job()`); err != nil {
		t.Fatal(err)
	}
	res, err := failing.poller.SweepOnce(t.Context(), failing.target)
	if err == nil || !strings.Contains(err.Error(), "job job-15000 refused for the test") {
		t.Fatalf("first sweep: %v, want the database's refusal", err)
	}
	if got := count(t, failing.store, `SELECT count(*) FROM jobs`); got != 10000 {
		t.Errorf("after the failed part, %d jobs stored, want the first part's 10000", got)
	}
	if res.Events != 10000 {
		t.Errorf("the failed sweep reports %d events written, want the first part's 10000", res.Events)
	}
	if got := count(t, failing.store, `SELECT events FROM sweeps WHERE id = $1 AND NOT complete AND error LIKE '%refused%'`, res.SweepID); got != 10000 {
		t.Errorf("the failed sweep's record counts %d events, want 10000, not complete, with its error", got)
	}
	if _, err := failing.store.Pool().Exec(t.Context(), `DROP TRIGGER refuse_job ON jobs`); err != nil {
		t.Fatal(err)
	}
	sweep(t, failing)

	want, got := eventKeys(t, whole), eventKeys(t, failing)
	if len(want) < n || !slices.Equal(got, want) {
		t.Errorf("a failed first sweep and the next wrote %d events, one whole first sweep %d; first difference: %s",
			len(got), len(want), firstDiff(got, want))
	}
	if got := count(t, failing.store, `SELECT count(*) FROM jobs`); got != n {
		t.Errorf("%d jobs stored, want %d", got, n)
	}
}
