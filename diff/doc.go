// Package diff turns a listing into transition events. It is pure: no I/O,
// no clock, no randomness. Given what the store last knew of a target's
// jobs and what ListJobs returned now, it says what changed and in which
// order, and what the stored snapshots must become.
//
// # What a poller can know
//
// OSS pushes nothing; ossjobwatch samples ListJobs on a schedule. Between
// two samples a job may pass through several states, so a transition is
// From→To between samples, not between adjacent lifecycle states:
// Active→Complete or New→Failed in one step is normal and reported as is.
//
// # The rules
//
// For each job in the listing, compared with its snapshot:
//
//   - No snapshot, or a tombstoned one: Discovered. The event carries the
//     full current state. On a target's first sweep every job is discovered
//     with Baseline set, so consumers can tell "ossjobwatch started
//     watching" from "a job appeared". A job seen again after removal is
//     discovered again; its sequence continues where it stopped.
//   - Status differs: Status, From→To.
//   - NumberOfTasksFailed grew: TasksFailed with the growth as FailedDelta.
//     A counter that went down (which OSS does not do) is not a failure; it
//     still updates the snapshot.
//   - NumberOfTasksSucceeded or TotalNumberOfTasks differs: Progress, with
//     SucceededDelta and FailedDelta.
//   - Other descriptor fields (priority, description, termination date)
//     differ: no event, but the snapshot is rewritten.
//   - Only ElapsedTimeInActiveSeconds moved: nothing at all. The timer ticks
//     on every poll of an active job; writing it back would make every sweep
//     rewrite every active job, and stored rows would grow with the number of
//     jobs instead of the number of changes. The stored value is therefore
//     the one from the job's last real change.
//
// For each snapshot whose job is absent from the listing: Removed, but only
// when the listing is complete (the last page came without NextToken). A
// partial listing says nothing about the jobs it did not reach. The reason
// is "expired" when the job's last status was terminal (OSS retention
// dropped it) and "vanished" otherwise, which no documented behaviour
// explains and an operator may want to look into.
//
// # Order and sequence
//
// Changes are ordered by job id, and within a job as the contract fixes:
// discovered, status, tasks_failed, progress, removed. Every change takes
// the job's next sequence number: 1, 2, 3 … with no gaps across all event
// kinds and across removals, so a consumer can detect a missing event from
// (jobId, sequence) alone.
//
// # Duplicates
//
// A listing that names a job twice (a pager that is not keyset-based can do
// this while jobs are created) is read as one observation: the last
// descriptor wins, as it is the most recent answer.
package diff
