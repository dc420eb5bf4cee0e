// Package job holds the domain types every other package shares: an OSS
// Batch Operations job as ListJobs and DescribeJob describe it, its status
// and its task counters. It imports nothing but the standard library.
package job

import (
	"slices"
	"strings"
	"time"
)

// Status is a job's status exactly as OSS reports it. Values outside the
// known set are kept verbatim: the API grows, and a poller must not crash on
// a status it has not heard of.
type Status string

// The statuses OSS documents for Batch Operations jobs.
const (
	StatusNew        Status = "New"
	StatusPreparing  Status = "Preparing"
	StatusSuspended  Status = "Suspended"
	StatusReady      Status = "Ready"
	StatusActive     Status = "Active"
	StatusPausing    Status = "Pausing"
	StatusPaused     Status = "Paused"
	StatusCompleting Status = "Completing"
	StatusComplete   Status = "Complete"
	StatusCancelling Status = "Cancelling"
	StatusCancelled  Status = "Cancelled"
	StatusFailing    Status = "Failing"
	StatusFailed     Status = "Failed"
)

// Statuses lists the documented statuses in lifecycle order.
var Statuses = []Status{
	StatusNew, StatusPreparing, StatusSuspended, StatusReady, StatusActive,
	StatusPausing, StatusPaused, StatusCompleting, StatusComplete,
	StatusCancelling, StatusCancelled, StatusFailing, StatusFailed,
}

// unfinished lists the documented statuses but the terminal ones.
var unfinished = []Status{
	StatusNew, StatusPreparing, StatusSuspended, StatusReady, StatusActive,
	StatusPausing, StatusPaused, StatusCompleting, StatusCancelling, StatusFailing,
}

// Unfinished returns the documented statuses of a job that may still
// change: every one but Complete, Cancelled and Failed. A hot sweep lists
// these. The caller must not modify the slice.
func Unfinished() []Status { return unfinished }

// Known reports whether s is one of the documented statuses.
func (s Status) Known() bool {
	for _, k := range Statuses {
		if s == k {
			return true
		}
	}
	return false
}

// Terminal reports whether a job in status s can never change again.
func (s Status) Terminal() bool {
	return s == StatusComplete || s == StatusCancelled || s == StatusFailed
}

// NeedsDetail reports whether a transition into s is worth a DescribeJob
// call: these are the statuses whose reasons (FailureReasons,
// StatusUpdateReason, ConfirmationRequired) only DescribeJob returns.
func (s Status) NeedsDetail() bool {
	switch s {
	case StatusFailing, StatusFailed, StatusCancelling, StatusCancelled, StatusSuspended:
		return true
	}
	return false
}

// Token returns s as a safe NATS subject token: every character outside
// [A-Za-z0-9_-] becomes '_', and an empty status becomes "_".
func (s Status) Token() string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, string(s))
}

// Tasks are a job's progress counters.
type Tasks struct {
	Total     int64 `json:"total"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
}

// Job is one JobListDescriptor: what a ListJobs page says of a job.
type Job struct {
	ID          string `json:"jobId"`
	Operation   string `json:"operation"`
	Description string `json:"description"`
	Priority    int64  `json:"priority"`
	Status      Status `json:"status"`
	// CreationTime and TerminationTime are zero when OSS gives 0 or nothing.
	CreationTime    time.Time `json:"creationTime"`
	TerminationTime time.Time `json:"terminationTime"`
	Tasks           Tasks     `json:"tasks"`
	// ElapsedActiveSeconds is ProgressSummary's ElapsedTimeInActiveSeconds.
	// It moves on every poll of an active job and is not, alone, a change.
	ElapsedActiveSeconds int64 `json:"elapsedActiveSeconds"`
	// Anomalies lists the values OSS sent that could not be used: each such
	// field is left zero (null in events) and its raw text is kept here, so
	// that one odd value never stops a target and nothing OSS said is lost.
	// Nil for a job without any. Because of this slice, Job values are not
	// comparable with ==: use Equal.
	Anomalies []Anomaly `json:"anomalies,omitempty"`
}

// Anomaly is one value of a job's descriptor that was out of range: a time
// no RFC 3339 timestamp can hold, a negative counter, an integer too large
// for 64 bits.
type Anomaly struct {
	// Field is the XML element, e.g. "CreationTime" or "TotalNumberOfTasks".
	Field string `json:"field"`
	// Raw is the element's text exactly as OSS sent it.
	Raw string `json:"raw"`
	// Reason says why the value was not used, in a few words.
	Reason string `json:"reason"`
}

// Equal reports whether j and o describe a job identically: every field,
// times compared as instants, and the same anomalies in the same order.
func (j Job) Equal(o Job) bool {
	return j.ID == o.ID &&
		j.Operation == o.Operation &&
		j.Description == o.Description &&
		j.Priority == o.Priority &&
		j.Status == o.Status &&
		j.CreationTime.Equal(o.CreationTime) &&
		j.TerminationTime.Equal(o.TerminationTime) &&
		j.Tasks == o.Tasks &&
		j.ElapsedActiveSeconds == o.ElapsedActiveSeconds &&
		slices.Equal(j.Anomalies, o.Anomalies)
}

// FailureReason is one JobFailure of a DescribeJob answer.
type FailureReason struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Detail is what DescribeJob adds to a listing's descriptor.
type Detail struct {
	Job
	ConfirmationRequired bool            `json:"confirmationRequired"`
	FailureReasons       []FailureReason `json:"failureReasons"`
	StatusUpdateReason   string          `json:"statusUpdateReason"`
	RoleARN              string          `json:"roleArn,omitempty"`
}

// Snapshot is what ossjobwatch last knew of a job: the descriptor of the
// listing that last changed it, the sequence of its last event, and whether
// a complete listing has since lacked it (a tombstone; the row stays so the
// sequence never restarts).
type Snapshot struct {
	Job      Job
	Sequence int64
	Removed  bool
	Attention
}

// Attention is what a snapshot keeps to tell when a job needs a human: how
// long it has been in its status, since when nothing has moved, and where
// its announcements stand. Zero times are unknown.
type Attention struct {
	// StatusSince is when the job was first seen in its current status.
	StatusSince time.Time
	// ActivityAt is when its status or a task counter was last seen to
	// change: the start of a stall.
	ActivityAt time.Time
	// StalledAt is when the current stall was announced; zero while none
	// is.
	StalledAt time.Time
	// SuspendedSince is when the job was first seen Suspended (its creation
	// time if it was Suspended when discovered); zero when it is not.
	SuspendedSince time.Time
	// RemindersSent counts the confirmation reminders announced for the
	// current suspension, and RemindedUpTo is the longest wait among them:
	// a reminder is due when its wait is longer and has passed, whatever
	// the list of reminders was when the others went out.
	RemindersSent int
	RemindedUpTo  time.Duration
}

// SuspensionLimit is how long OSS lets a job wait in Suspended for a
// confirmation before it fails it.
const SuspensionLimit = 14 * 24 * time.Hour

// Equal reports whether a and o are the same, times compared as instants.
func (a Attention) Equal(o Attention) bool {
	return a.StatusSince.Equal(o.StatusSince) && a.ActivityAt.Equal(o.ActivityAt) && a.StalledAt.Equal(o.StalledAt) &&
		a.SuspendedSince.Equal(o.SuspendedSince) && a.RemindersSent == o.RemindersSent && a.RemindedUpTo == o.RemindedUpTo
}
