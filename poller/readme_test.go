package poller_test

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// TestReadmeQueries runs the README's SQL examples against a history that
// sweeps wrote, so the documentation cannot drift from the schema.
func TestReadmeQueries(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) != 3 {
		t.Fatalf("README has %d sql blocks, want the 3 examples", len(blocks))
	}

	b := setup(t, osssim.Config{EmptyWorld: true})
	const failing = "MzRjZGU2NGQ3YTY5NGRhMTkxZmZhYzY5OTM5YTcxYWU="
	a := activeJob(failing, 10)
	c := activeJob("completes", 10)
	c.Operation = "RestoreObject"
	b.sim.Put(a)
	b.sim.Put(c)
	sweep(t, b)
	a.Status, a.FailureReasons = job.StatusFailed, []job.FailureReason{{Code: "AccessDenied", Reason: "no read"}}
	c.Status, c.TerminationTime, c.Tasks.Succeeded = job.StatusComplete, time.Unix(1749990000, 0), 100
	b.sim.Put(a)
	b.sim.Put(c)
	sweep(t, b)

	want := []int{2, 1, 1} // timeline rows (Active, Failed); failed jobs; operations
	for i, blk := range blocks {
		rows, err := b.store.Pool().Query(t.Context(), string(blk[1]))
		if err != nil {
			t.Fatalf("README query %d: %v\n%s", i+1, err, blk[1])
		}
		n := 0
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatalf("README query %d: %v", i+1, err)
			}
			if i == 2 && vals[0] != "RestoreObject" {
				t.Errorf("mean-time query row %v, want RestoreObject", vals)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("README query %d: %v", i+1, err)
		}
		rows.Close()
		if n != want[i] {
			t.Errorf("README query %d returned %d rows, want %d", i+1, n, want[i])
		}
	}
}
