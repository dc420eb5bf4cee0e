-- Retention: `ossjobwatch prune`, and the cleaner of `run`, delete what the
-- retention settings let go, oldest first, in batches of at most 1,000 rows.
--
-- job_events needs no new index: published progress events are found by
-- job_events_type_observed_at_idx, the other published events by
-- job_events_observed_at_idx, and whether an event is published is read from
-- the row (and the outbox), not from an index: an index holding published_at
-- would make marking an event published an update of every index rather than
-- a heap-only one (see 003_outbox_queue.sql). Sweep records are found by when
-- they started, over all targets at once: sweeps_target_started_at_idx leads
-- with the target, hence this index. started_at is never updated, so the
-- updates a sweep makes of its own row stay heap-only.

-- +goose Up

CREATE INDEX sweeps_started_at_idx ON sweeps (started_at);

COMMENT ON TABLE job_events IS 'History of every event ossjobwatch emitted, and the outbox the relay publishes to NATS JetStream from. Written in the same transaction as the jobs snapshot that caused it. Rows are never updated but to mark them published; retention (OSSJOBWATCH_RETENTION_PROGRESS, _EVENTS) deletes published events only, so a job''s sequence numbers may have gaps where deleted events were.';
COMMENT ON TABLE sweeps IS 'One row per sweep: one listing of every job of a target, compared with the stored snapshots. An operational log: rows started longer ago than OSSJOBWATCH_RETENTION_SWEEPS are deleted, except each target''s last applied sweep (targets.last_sweep_id).';
COMMENT ON TABLE replicas IS 'One row per running ossjobwatch run process; a replica whose heartbeat is older than the lease time-to-live is gone, and its row is deleted by retention once the heartbeat is older than max(1h, 10 × the lease time-to-live).';
COMMENT ON TABLE target_leases IS 'Which replica sweeps which target. A replica renews its leases on every heartbeat; an expired lease may be taken by any replica, and is deleted by retention once expired for max(1h, 10 × the lease time-to-live).';
