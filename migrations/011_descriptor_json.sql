-- jobs.descriptor becomes json, as job_events.payload did (migration 003).
--
-- A jsonb value is parsed into a binary tree when written and printed back
-- when read. The descriptor is written with every snapshot and read whole,
-- by the sweeps (which decode it themselves) and by the console (which
-- shows it): it was parsed for nothing, and its binary form is larger than
-- its text (jobs took 53 MB instead of 66 at 100,000 jobs). A first sweep of
-- 100,000 jobs writes 100,000 of them; with json it ended 2% and 11% sooner
-- in two runs of BenchmarkSweepAB on 2 cores (medians of 6 interleaved
-- rounds: 8,422 against 8,232 ms, and 8,568 against 7,626 ms).
--
-- json keeps the text as the sweep encoded it, and -> and ->> work on it
-- as on jsonb. Containment (@>) and the other jsonb-only operators need a
-- cast: descriptor::jsonb @> '{"Priority": 10}'. No index or view of
-- ossjobwatch's used one. The column is rewritten once, with the table
-- locked for the time that takes: about a second per 100,000 jobs.

-- +goose Up

ALTER TABLE jobs ALTER COLUMN descriptor TYPE json USING descriptor::json;
COMMENT ON COLUMN jobs.descriptor IS 'The whole job descriptor as last listed or described (JSON, kept as the sweep wrote it), for fields without a column. Query it with -> and ->>; cast to jsonb for @>.';
