-- A target's first sweep of more than 10,000 jobs commits in parts of
-- 10,000 (store.Store.ApplySweep). The version of a target's snapshots was
-- the last applied sweep's id, but every part of one sweep has that id, so
-- snapshots read between two parts still matched it after the next part
-- committed, and an apply of them conflicted with that part's rows (a
-- second discovered event of a job, refused by the unique sequence) instead
-- of being refused as out of date and recomputed. The version is now the
-- sweep's id and how many of its parts have committed.

-- +goose Up

ALTER TABLE targets ADD COLUMN applied_parts integer;
COMMENT ON COLUMN targets.applied_parts IS 'How many parts of the sweep last_sweep_id have committed while it is written in parts (or after it failed part way); null once a sweep was applied whole. With last_sweep_id, the version of the target''s snapshots.';
