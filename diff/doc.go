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
//     watching" from "a job appeared". Every OSS job starts as New, so a job
//     first seen after the baseline in another status also gets a Status
//     change New→Status: a job created and failed between two sweeps still
//     reaches a subscriber of failures. A job seen again after removal is
//     discovered again, its sequence continuing where it stopped, with a
//     Status change from the status it left in if it differs.
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
// # Entries that cannot be used
//
// A listing that names a JobId twice cannot say which descriptor is
// current, and one with an empty JobId names no job. Clean leaves out every
// such entry and returns a *ListingError naming them; Compute cleans too,
// and a listing it had to clean reports no removals, as if incomplete, so
// neither a repeated id nor a blank one ever makes a job look removed or
// gives one id two snapshots. Callers Clean first and report the error.
package diff
