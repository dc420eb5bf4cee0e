-- What ossjobwatch notify told whom. One row per (event, receiver): a
-- redelivered message skips the receivers that already have it, and
-- history and the console show who was told what.

-- +goose Up

CREATE TABLE notify_deliveries (
    event_id         uuid NOT NULL,
    receiver         text NOT NULL,
    route            text NOT NULL,
    target           text NOT NULL,
    job_id           text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       text,
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    delivered_at     timestamptz,
    digest_size      integer NOT NULL DEFAULT 1 CHECK (digest_size >= 1),
    PRIMARY KEY (event_id, receiver)
);

-- One job's notifications (history, the console's job page).
CREATE INDEX notify_deliveries_job_idx ON notify_deliveries (job_id, target);
-- Retention: delivered rows by age.
CREATE INDEX notify_deliveries_delivered_at_idx ON notify_deliveries (delivered_at) WHERE delivered_at IS NOT NULL;

COMMENT ON TABLE notify_deliveries IS 'One row per event and notify receiver: attempts, the last error, and when the receiver accepted it. A row with delivered_at set is never sent again.';
COMMENT ON COLUMN notify_deliveries.event_id IS 'The event (job_events.id, the CloudEvent id). No foreign key: retention may delete the event first.';
COMMENT ON COLUMN notify_deliveries.receiver IS 'The receiver''s name in the notify section of the config.';
COMMENT ON COLUMN notify_deliveries.route IS 'The route whose consumer delivered it.';
COMMENT ON COLUMN notify_deliveries.attempts IS 'Requests made to the receiver carrying this event, the accepted one included.';
COMMENT ON COLUMN notify_deliveries.last_error IS 'Why the last refused attempt failed (secrets removed), kept after a later success; null when no attempt was refused.';
COMMENT ON COLUMN notify_deliveries.delivered_at IS 'When the receiver accepted a message carrying this event; null until then.';
COMMENT ON COLUMN notify_deliveries.digest_size IS 'How many events the accepted message carried: 1 for a message of its own, more when a burst was folded into a digest.';
COMMENT ON COLUMN notify_deliveries.target IS 'The event''s target, copied so a job''s notifications are found without the event.';
COMMENT ON COLUMN notify_deliveries.job_id IS 'The event''s job id, byte for byte.';
COMMENT ON COLUMN notify_deliveries.first_attempt_at IS 'When the first request carrying this event was made.';
COMMENT ON COLUMN notify_deliveries.last_attempt_at IS 'When the last request carrying this event was made.';
