-- Leases spread targets over the replicas of `ossjobwatch run`, so that each
-- target is listed by one replica at a time (OSS calls are not multiplied)
-- and a stopped replica's targets are taken over. They are an efficiency
-- device, not the correctness one: the sweep's apply step is fenced on its
-- own (see targets), so even two replicas sweeping one target at once never
-- write an event twice. Times come from the database's clock, the one clock
-- every replica shares.

-- +goose Up

CREATE TABLE replicas (
    id           text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL
);

COMMENT ON TABLE replicas IS 'One row per running ossjobwatch run process; a replica whose heartbeat is older than the lease time-to-live is gone.';
COMMENT ON COLUMN replicas.id IS 'The replica''s id: host name and a random suffix.';
COMMENT ON COLUMN replicas.started_at IS 'When the replica first registered.';
COMMENT ON COLUMN replicas.heartbeat_at IS 'The replica''s last heartbeat (database time).';

CREATE TABLE target_leases (
    target      text PRIMARY KEY,
    holder      text NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

COMMENT ON TABLE target_leases IS 'Which replica sweeps which target. A replica renews its leases on every heartbeat; an expired lease may be taken by any replica.';
COMMENT ON COLUMN target_leases.target IS 'The target (targets.target).';
COMMENT ON COLUMN target_leases.holder IS 'The replica holding the lease (replicas.id).';
COMMENT ON COLUMN target_leases.acquired_at IS 'When the holder took the lease.';
COMMENT ON COLUMN target_leases.expires_at IS 'When the lease lapses unless renewed.';
