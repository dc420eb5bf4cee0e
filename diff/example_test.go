package diff_test

import (
	"fmt"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/job"
)

func ExampleCompute() {
	before := job.Job{ID: "job-1", Status: job.StatusActive, Tasks: job.Tasks{Total: 100, Succeeded: 40}}
	now := job.Job{ID: "job-1", Status: job.StatusComplete, Tasks: job.Tasks{Total: 100, Succeeded: 97, Failed: 3}}

	res := diff.Compute(diff.Input{
		Previous: []diff.Snapshot{{Job: before, Sequence: 4}},
		Listing:  []job.Job{now},
		Complete: true,
	})
	for _, c := range res.Changes {
		fmt.Printf("#%d %s", c.Sequence, c.Kind)
		switch c.Kind {
		case diff.StatusChanged:
			fmt.Printf(" %s→%s", c.From, c.Job.Status)
		case diff.TasksFailed:
			fmt.Printf(" +%d failed", c.FailedDelta)
		case diff.Progress:
			fmt.Printf(" +%d succeeded", c.SucceededDelta)
		}
		fmt.Println()
	}
	// Output:
	// #5 status_changed Active→Complete
	// #6 tasks_failed +3 failed
	// #7 progress +57 succeeded
}
