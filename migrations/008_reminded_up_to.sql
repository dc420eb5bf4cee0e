-- Reminders are remembered by the longest wait announced, not by how many
-- were: with a count, changing OSSJOBWATCH_SUSPENDED_REMINDERS would skip a
-- reminder (24h,312h → 312h after the first) or repeat one (→ 12h,24h,312h).

-- +goose Up

ALTER TABLE jobs ADD COLUMN reminded_up_to_seconds bigint NOT NULL DEFAULT 0 CHECK (reminded_up_to_seconds >= 0);
COMMENT ON COLUMN jobs.reminded_up_to_seconds IS 'The longest wait of OSSJOBWATCH_SUSPENDED_REMINDERS announced (a confirmation_due event) for the current suspension, in seconds; 0 when none was. A reminder fires once its wait is longer than this and has passed.';
