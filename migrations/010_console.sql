-- The web console (/ui/) lists the live jobs newest first, a page at a time,
-- filters them, and counts them by target and status, on databases of
-- 100,000 jobs and more. One index serves them:
--
-- * the jobs page walks it in order and stops after a page: keyset
--   pagination over (creation time, target, job id), never OFFSET. A job
--   without a creation time (OSS gave 0) sorts last, as -infinity;
-- * a filter on the status is tested on its entries (status is an
--   INCLUDE column); a text filter that matches few jobs reads the table
--   in order instead (store.Reader.JobsPage), testing the search column
--   below. Carrying the descriptions here, for an index-only text search,
--   doubled the index for a gain lost in the noise of a shared 2-core
--   machine; a trigram index (pg_trgm) would be the real fix, at the
--   price of an extension;
-- * the overview counts jobs by target and status with an index-only scan.
--
-- jobs.search is the text the console's text filter searches, lowered
-- once when a job is written rather than twice per job at each search
-- (half the CPU time of a search at 100,000 jobs). It is generated, so
-- the sweeps' COPY, which names its columns, never writes it.
--
-- Removed jobs are left out, as the console lists live jobs only. A status
-- change was already an update of an indexed column (jobs_attention_idx),
-- so this index makes no heap-only update a full one; it costs a sweep one
-- more index entry per job it writes.

-- +goose Up

ALTER TABLE jobs ADD COLUMN search text GENERATED ALWAYS AS (lower(job_id || E'\n' || coalesce(description, ''))) STORED;
COMMENT ON COLUMN jobs.search IS 'The job id and description, newline-separated and lowered: what the console''s text filter searches.';

CREATE INDEX jobs_console_idx ON jobs ((coalesce(creation_time, '-infinity'::timestamptz)), target, job_id)
    INCLUDE (status) WHERE removed_at IS NULL;
