-- Sweeps are fenced on when their listing was read, not only when it began,
-- and a listing that would remove most of a target's jobs waits for a second
-- one that agrees.
--
-- A listing is read over an interval: from the sweep's start to the answer of
-- its last page. Two listings whose intervals overlap show no order between
-- them, and a slow one may hold older pages than a quick one that began after
-- it. So a sweep records when its listing ended, the target keeps the end of
-- the listing applied last, and a listing that began before that end is
-- refused: listings are applied only in an order their intervals agree with.
--
-- An empty or foreign answer (credentials of another account, an empty
-- <ListJobsResult/>) would make every live job look removed. A full listing
-- that would remove more than half of a target's live jobs, and more than 10,
-- is not believed at once: its removals are held, and the target keeps when
-- that was first seen and a digest of the ids it would remove. A later full
-- listing, at least a minute later, that would remove the same jobs confirms
-- them.

-- +goose Up

ALTER TABLE sweeps ADD COLUMN listing_ended_at timestamptz;
COMMENT ON COLUMN sweeps.listing_ended_at IS 'When the last page of the sweep''s listing had been read (the database''s clock); null if the listing did not end.';

ALTER TABLE targets ADD COLUMN last_listing_ended_at timestamptz;
COMMENT ON COLUMN targets.last_listing_ended_at IS 'When the listing of the last applied sweep ended. A listing that began before it is refused: it may hold pages older than what was applied.';

ALTER TABLE targets ADD COLUMN removals_held_since timestamptz;
ALTER TABLE targets ADD COLUMN removals_held_digest text;
ALTER TABLE targets ADD COLUMN removals_held_count integer;
COMMENT ON COLUMN targets.removals_held_since IS 'When a full listing first lacked more than half of the live jobs (and more than 10); null when no removals are held. A listing at least a minute later that lacks the same jobs confirms the removals.';
COMMENT ON COLUMN targets.removals_held_digest IS 'A digest of the ids of the jobs whose removal is held, so that only a listing that agrees confirms it.';
COMMENT ON COLUMN targets.removals_held_count IS 'How many removals are held.';
