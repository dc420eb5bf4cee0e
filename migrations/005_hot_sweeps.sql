-- Hot sweeps: most sweeps list only the unfinished jobs, and one at least
-- every reconcile interval lists everything. A sweep records which it was,
-- and a target when its last full listing was applied, so that every replica
-- knows when the next full one is due.

-- +goose Up

ALTER TABLE sweeps ADD COLUMN mode text NOT NULL DEFAULT 'full' CHECK (mode IN ('full', 'hot'));
COMMENT ON COLUMN sweeps.mode IS 'full: every job was listed; hot: only the unfinished ones, plus DescribeJob for the jobs last known unfinished that the listing lacked. Only full sweeps report removals.';

ALTER TABLE targets ADD COLUMN last_full_listed_at timestamptz;
COMMENT ON COLUMN targets.last_full_listed_at IS 'When the listing of the last applied full sweep began. run makes a full sweep when it is older than the reconcile interval.';
