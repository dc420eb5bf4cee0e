-- Jobs that need a human: a job whose status and task counters stop moving
-- (stalled), and one that waits in Suspended for a confirmation that OSS
-- needs within 14 days. Sweeps decide both from what each job's row keeps,
-- so an episode is announced once, whichever replica sees it, and `ossjobwatch
-- jobs` reads what is happening now from the same columns.

-- +goose Up

ALTER TABLE jobs ADD COLUMN status_since timestamptz;
ALTER TABLE jobs ADD COLUMN activity_at timestamptz;
ALTER TABLE jobs ADD COLUMN stalled_at timestamptz;
ALTER TABLE jobs ADD COLUMN suspended_since timestamptz;
ALTER TABLE jobs ADD COLUMN reminders_sent integer NOT NULL DEFAULT 0 CHECK (reminders_sent >= 0);

-- Rows written before this migration: their last change is the best guess.
UPDATE jobs SET status_since = last_changed_at, activity_at = last_changed_at,
                suspended_since = CASE WHEN status = 'Suspended' THEN coalesce(creation_time, last_changed_at) END;

-- What is running now, for `ossjobwatch jobs`, the metrics and the console.
CREATE INDEX jobs_attention_idx ON jobs (target, status) WHERE removed_at IS NULL
    AND status NOT IN ('Complete', 'Cancelled', 'Failed');

COMMENT ON COLUMN jobs.status_since IS 'When the job was first seen in its current status (the observedAt of that sweep).';
COMMENT ON COLUMN jobs.activity_at IS 'When a sweep last saw the job''s status or a task counter change (its observedAt): the stalledSince of a stalled event.';
COMMENT ON COLUMN jobs.stalled_at IS 'When the current stall episode was announced (a stalled event); null when the job is not stalled or the episode is not announced yet. Any change of status or counters ends the episode.';
COMMENT ON COLUMN jobs.suspended_since IS 'When the job was first seen Suspended, or its creation time if it was Suspended when discovered; null when it is not Suspended. OSS fails an unconfirmed job 14 days after it.';
COMMENT ON COLUMN jobs.reminders_sent IS 'How many of OSSJOBWATCH_SUSPENDED_REMINDERS have been announced (confirmation_due events) for the current suspension.';
