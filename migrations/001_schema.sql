-- The initial ossjobwatch schema. Forward-only: there is no Down section.
--
-- No foreign keys, on purpose: job_events is permanent history while sweeps is
-- an operational log that may be pruned, and the store writes a sweep's rows
-- in one transaction, so the references hold by construction.

-- +goose Up

CREATE TABLE targets (
    target         text PRIMARY KEY,
    baseline_done  boolean NOT NULL DEFAULT false,
    last_listed_at timestamptz,
    last_sweep_id  uuid
);

COMMENT ON TABLE targets IS 'One row per watched target (an OSS account and region). Fences the sweeps of a target: the first complete sweep is the baseline, and a listing older than last_listed_at is never applied.';
COMMENT ON COLUMN targets.target IS 'The target''s name, [A-Za-z0-9_-]+ (OSSJOBWATCH_TARGET).';
COMMENT ON COLUMN targets.baseline_done IS 'True once a sweep of this target has been applied; the events of the first one carry data.baseline = true.';
COMMENT ON COLUMN targets.last_listed_at IS 'When the listing of the last applied sweep was taken. A sweep whose listing is not newer is discarded, so two replicas cannot apply listings out of order.';
COMMENT ON COLUMN targets.last_sweep_id IS 'The sweep (sweeps.id) whose listing was applied last.';

CREATE TABLE sweeps (
    id          uuid PRIMARY KEY,
    target      text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    pages       integer NOT NULL DEFAULT 0,
    jobs_listed integer NOT NULL DEFAULT 0,
    events      integer NOT NULL DEFAULT 0,
    complete    boolean NOT NULL DEFAULT false,
    error       text
);

CREATE INDEX sweeps_target_started_at_idx ON sweeps (target, started_at DESC);

COMMENT ON TABLE sweeps IS 'One row per sweep: one listing of every job of a target, compared with the stored snapshots. An operational log; rows may be pruned.';
COMMENT ON COLUMN sweeps.id IS 'The sweep''s id (UUIDv7, from ossjobwatch); the events it caused carry it as data.sweepId.';
COMMENT ON COLUMN sweeps.target IS 'The swept target (targets.target).';
COMMENT ON COLUMN sweeps.started_at IS 'When the sweep started listing.';
COMMENT ON COLUMN sweeps.finished_at IS 'When the sweep ended, successfully or not; null while it runs or if the process died.';
COMMENT ON COLUMN sweeps.pages IS 'ListJobs pages fetched.';
COMMENT ON COLUMN sweeps.jobs_listed IS 'Jobs in the listing.';
COMMENT ON COLUMN sweeps.events IS 'Events the sweep wrote to job_events.';
COMMENT ON COLUMN sweeps.complete IS 'True when every page was listed and the result applied. Only a complete sweep may report jobs as removed.';
COMMENT ON COLUMN sweeps.error IS 'Why the sweep failed; null on success.';

CREATE TABLE jobs (
    target                 text NOT NULL,
    job_id                 text NOT NULL,
    status                 text NOT NULL,
    operation              text,
    description            text,
    priority               bigint,
    creation_time          timestamptz,
    termination_time       timestamptz,
    tasks_total            bigint,
    tasks_succeeded        bigint,
    tasks_failed           bigint,
    elapsed_active_seconds bigint,
    descriptor             jsonb NOT NULL,
    first_seen_at          timestamptz NOT NULL,
    last_seen_at           timestamptz NOT NULL,
    last_changed_at        timestamptz NOT NULL,
    removed_at             timestamptz,
    last_sequence          bigint NOT NULL CHECK (last_sequence >= 0),
    last_sweep_id          uuid,
    listed_at              timestamptz,
    PRIMARY KEY (target, job_id)
);

-- The live jobs of a target: what each sweep compares its listing with.
CREATE INDEX jobs_target_live_idx ON jobs (target, job_id) WHERE removed_at IS NULL;

COMMENT ON TABLE jobs IS 'One row per (target, job id): the last snapshot of an OSS batch-processing job. Rows are never deleted: a job gone from the listing is tombstoned with removed_at, so its event sequence never restarts.';
COMMENT ON COLUMN jobs.target IS 'The target the job was listed in (targets.target).';
COMMENT ON COLUMN jobs.job_id IS 'The OSS job id.';
COMMENT ON COLUMN jobs.status IS 'The last status seen, verbatim as OSS reports it: New, Preparing, Suspended, Ready, Active, Pausing, Paused, Completing, Complete, Cancelling, Cancelled, Failing, Failed (unknown values are kept).';
COMMENT ON COLUMN jobs.operation IS 'The job''s operation, from its descriptor.';
COMMENT ON COLUMN jobs.description IS 'The job''s description.';
COMMENT ON COLUMN jobs.priority IS 'The job''s priority.';
COMMENT ON COLUMN jobs.creation_time IS 'When OSS created the job; null when OSS gives 0 or nothing.';
COMMENT ON COLUMN jobs.termination_time IS 'When the job ended; null while it runs or when OSS gives 0 or nothing.';
COMMENT ON COLUMN jobs.tasks_total IS 'ProgressSummary''s TotalNumberOfTasks.';
COMMENT ON COLUMN jobs.tasks_succeeded IS 'ProgressSummary''s NumberOfTasksSucceeded.';
COMMENT ON COLUMN jobs.tasks_failed IS 'ProgressSummary''s NumberOfTasksFailed.';
COMMENT ON COLUMN jobs.elapsed_active_seconds IS 'ProgressSummary''s ElapsedTimeInActiveSeconds. Moves on every poll of an active job; alone it is not a change.';
COMMENT ON COLUMN jobs.descriptor IS 'The whole job descriptor as last listed or described (JSON), for fields without a column.';
COMMENT ON COLUMN jobs.first_seen_at IS 'When ossjobwatch first listed the job.';
COMMENT ON COLUMN jobs.last_seen_at IS 'When the job was last present in a listing.';
COMMENT ON COLUMN jobs.last_changed_at IS 'When an event was last written for the job.';
COMMENT ON COLUMN jobs.removed_at IS 'When a complete listing first lacked the job (its removed event); null while listed.';
COMMENT ON COLUMN jobs.last_sequence IS 'The sequence of the job''s last event; the next event takes last_sequence + 1.';
COMMENT ON COLUMN jobs.last_sweep_id IS 'The sweep (sweeps.id) that last listed the job.';
COMMENT ON COLUMN jobs.listed_at IS 'When the listing behind this snapshot was taken; an older listing never overwrites a newer snapshot.';

-- job_events keeps each event's JSON twice, on purpose. payload is the exact
-- bytes published to NATS (and re-published by replay): jsonb would reorder
-- keys and drop whitespace. data is the same JSON as jsonb, for queries such
-- as data->'data'->>'failedDelta'. A stored generated column, rather than a
-- view or a column the writer fills, so it can never disagree with payload,
-- can be indexed, and rejects bytes that are not JSON. convert_from is only
-- STABLE (a database's encoding cannot change, but PostgreSQL does not know
-- that), hence the IMMUTABLE wrapper a generated column needs.

-- +goose StatementBegin
CREATE FUNCTION job_event_payload_jsonb(payload bytea) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT convert_from(payload, 'UTF8')::jsonb $$;
-- +goose StatementEnd

COMMENT ON FUNCTION job_event_payload_jsonb(bytea) IS 'Decodes a UTF-8 JSON event payload to jsonb: job_events.data.';

CREATE TABLE job_events (
    id           uuid PRIMARY KEY,
    pos          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    target       text NOT NULL,
    job_id       text NOT NULL,
    sequence     bigint NOT NULL CHECK (sequence >= 1),
    type         text NOT NULL,
    subject      text NOT NULL,
    from_status  text,
    to_status    text,
    payload      bytea NOT NULL,
    data         jsonb GENERATED ALWAYS AS (job_event_payload_jsonb(payload)) STORED,
    observed_at  timestamptz NOT NULL,
    sweep_id     uuid,
    published_at timestamptz,
    -- job_id first: the same index serves one job's history within a target
    -- and `ossjobwatch history JOBID`, which does not know the target.
    UNIQUE (job_id, target, sequence),
    -- job_status_history relies on it.
    CONSTRAINT job_events_status_event_to_status_check
        CHECK (type NOT IN ('ossjobwatch.job.discovered', 'ossjobwatch.job.status_changed') OR to_status IS NOT NULL)
);

-- The outbox: what the relay has still to publish, in insert order.
CREATE INDEX job_events_unpublished_idx ON job_events (pos) WHERE published_at IS NULL;
CREATE INDEX job_events_type_observed_at_idx ON job_events (type, observed_at);
-- replay --since.
CREATE INDEX job_events_observed_at_idx ON job_events (observed_at);

COMMENT ON TABLE job_events IS 'Append-only history of every event ossjobwatch emitted, and the outbox the relay publishes to NATS JetStream from. Written in the same transaction as the jobs snapshot that caused it.';
COMMENT ON COLUMN job_events.id IS 'The CloudEvents id (UUIDv7), also the NATS Nats-Msg-Id; stable across retries and replays.';
COMMENT ON COLUMN job_events.pos IS 'Insert order. The relay publishes unpublished rows in pos order.';
COMMENT ON COLUMN job_events.target IS 'The target (targets.target).';
COMMENT ON COLUMN job_events.job_id IS 'The OSS job id: the CloudEvents subject attribute.';
COMMENT ON COLUMN job_events.sequence IS 'Per job: 1, 2, 3 … with no gaps, across all event types (data.sequence).';
COMMENT ON COLUMN job_events.type IS 'The CloudEvents type: ossjobwatch.job.discovered, .status_changed, .tasks_failed, .progress or .removed.';
COMMENT ON COLUMN job_events.subject IS 'The NATS subject the event is published on, e.g. ossjobs.cn-hangzhou.status.Active.Complete.';
COMMENT ON COLUMN job_events.from_status IS 'For status_changed: the status left. Null for other types.';
COMMENT ON COLUMN job_events.to_status IS 'For status_changed: the status entered; for discovered: the status the job was found in. Null for other types.';
COMMENT ON COLUMN job_events.payload IS 'The CloudEvents JSON exactly as published, byte for byte.';
COMMENT ON COLUMN job_events.data IS 'payload as jsonb, for queries (generated from payload).';
COMMENT ON COLUMN job_events.observed_at IS 'When the change was observed: the listing time (the CloudEvents time attribute).';
COMMENT ON COLUMN job_events.sweep_id IS 'The sweep (sweeps.id) that observed the change.';
COMMENT ON COLUMN job_events.published_at IS 'When JetStream acknowledged the event; null while it waits in the outbox.';

CREATE VIEW job_status_history AS
SELECT target, job_id, status, sequence, entered_at, left_at, left_at - entered_at AS duration
FROM (
    SELECT target, job_id, to_status AS status, sequence, observed_at AS entered_at,
           lead(observed_at) OVER (PARTITION BY target, job_id ORDER BY sequence) AS left_at
    FROM job_events
    WHERE type IN ('ossjobwatch.job.discovered', 'ossjobwatch.job.status_changed')
) AS status_events;

COMMENT ON VIEW job_status_history IS 'One row per status a job was seen in, from its discovered and status_changed events. A poller sees samples: times are observation times, accurate to one sweep interval, and short-lived statuses may be missing. Filter on target and job_id (they reach the index).';
COMMENT ON COLUMN job_status_history.target IS 'The target (targets.target).';
COMMENT ON COLUMN job_status_history.job_id IS 'The OSS job id.';
COMMENT ON COLUMN job_status_history.status IS 'The status.';
COMMENT ON COLUMN job_status_history.sequence IS 'The sequence of the event that entered the status (job_events.sequence).';
COMMENT ON COLUMN job_status_history.entered_at IS 'When the status was first observed.';
COMMENT ON COLUMN job_status_history.left_at IS 'When the next status was first observed; null for the job''s current (or, once removed, last) status.';
COMMENT ON COLUMN job_status_history.duration IS 'left_at - entered_at; null for the current status.';
