package notify

import (
	"fmt"
	"time"
)

// SampleEvent is a realistic event for `notify --test`: a job that went
// from Active to Failed, with DescribeJob's failure reasons, observed at
// now. Its Raw holds it as a CloudEvent, so webhooks get what they would
// get from the stream.
func SampleEvent(now time.Time) Event {
	now = now.UTC().Truncate(time.Second)
	created := now.Add(-2*time.Hour - 13*time.Minute)
	ended := now.Add(-40 * time.Second)
	// A new id per run: a webhook receiver deduplicating on webhook-id
	// must not drop a second test.
	id := fmt.Sprintf("00000000-0000-7000-8000-%012x", now.Unix())
	jobID := "MzRjZGU2NGQ3YTY5NGRhMTkxZmZhYzY5OTM5YTcxYWU="
	e := Event{
		ID:          id,
		Source:      "/ossjobwatch/sample",
		Type:        "ossjobwatch.job.status_changed",
		Subject:     jobID,
		Time:        now,
		NATSSubject: "ossjobs.sample.status.Active.Failed",
		Data: EventData{
			JobID:                jobID,
			Target:               "sample",
			Region:               "cn-hangzhou",
			Status:               "Failed",
			PreviousStatus:       "Active",
			Operation:            "PutObjectTagging",
			Description:          "ossjobwatch notify --test: tag archive/2026 (sample event)",
			Priority:             10,
			CreationTime:         &created,
			TerminationTime:      &ended,
			Tasks:                Tasks{Total: 1000, Succeeded: 612, Failed: 388},
			ElapsedActiveSeconds: int64(now.Sub(created).Seconds()),
			Sequence:             4,
			ObservedAt:           now,
			SweepID:              "00000000-0000-7000-8000-0000000sweep",
			FailureReasons: []FailureReason{
				{Code: "AccessDenied", Reason: "The bucket policy denies oss:PutObjectTagging on archive/2026/"},
				{Code: "TooManyFailedTasks", Reason: "More than 30% of the tasks failed"},
			},
			StatusUpdateReason: "job failed: too many failed tasks",
		},
	}
	e.Raw = e.CloudEvent()
	return e
}
