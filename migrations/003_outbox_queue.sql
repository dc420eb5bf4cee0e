-- The relay's queue of unpublished events moves out of job_events' indexes.
--
-- Marking an event published used to rewrite its job_events row with five
-- index entries, because published_at was in the predicate of the partial
-- index the relay scanned. Measured on 2 cores: 17.5 ms per 1,000 events,
-- which held the relay to under a third of NATS's raw publish rate. Now the
-- pending events are listed in the small outbox table, filled by a
-- statement-level trigger in the inserting statement and emptied by the
-- relay, and no index of job_events mentions published_at. With free room
-- on each page (fillfactor 50), setting published_at is then a heap-only
-- (HOT) update: 5.5 ms per 1,000. The cost is disk: job_events pages stay
-- half empty. job_events.published_at keeps its meaning: null exactly while
-- the event is in outbox.
--
-- An update also recomputed the generated data column (parsing the JSON
-- again) and copied the event twice. payload becomes json instead: the json
-- type keeps the exact text it was given (key order, white space), which is
-- what the relay publishes and replay re-publishes, and it is queried with
-- -> and ->> directly, so the jsonb copy goes.

-- +goose Up

CREATE TABLE outbox (
    pos bigint PRIMARY KEY
);

COMMENT ON TABLE outbox IS 'The positions (job_events.pos) of the events JetStream has not acknowledged yet, in publishing order. Internal to the relay; job_events.published_at says the same per event.';
COMMENT ON COLUMN outbox.pos IS 'The pending event''s job_events.pos.';

-- +goose StatementBegin
CREATE FUNCTION job_events_enqueue() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (pos) SELECT pos FROM new_events WHERE published_at IS NULL;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

COMMENT ON FUNCTION job_events_enqueue() IS 'Queues the events an INSERT or COPY into job_events adds, once per statement.';

CREATE TRIGGER job_events_enqueue
    AFTER INSERT ON job_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION job_events_enqueue();

INSERT INTO outbox (pos) SELECT pos FROM job_events WHERE published_at IS NULL;

DROP INDEX job_events_unpublished_idx;

ALTER TABLE job_events DROP COLUMN data;
DROP FUNCTION job_event_payload_jsonb(bytea);
ALTER TABLE job_events ALTER COLUMN payload TYPE json USING convert_from(payload, 'UTF8')::json;
COMMENT ON COLUMN job_events.payload IS 'The event exactly as published to NATS (and re-published by replay): CloudEvents JSON, kept byte for byte by the json type. Query it with -> and ->>, e.g. payload->''data''->>''failedDelta''.';

ALTER TABLE job_events SET (fillfactor = 50);

-- What the columns say, as the poller writes them: a row is written when its
-- job changed, not on every sweep that lists it, so that a sweep writes rows
-- in proportion to the changes rather than to the jobs.
COMMENT ON COLUMN jobs.last_seen_at IS 'When a listing last changed this snapshot. A job that is not removed was also present in every later complete sweep of its target (sweeps.complete).';
COMMENT ON COLUMN jobs.elapsed_active_seconds IS 'ProgressSummary''s ElapsedTimeInActiveSeconds as of the last change. It moves on every poll of an active job and is not, alone, a change, so it is not written back on its own.';
