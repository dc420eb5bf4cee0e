package store

import (
	"context"
	"fmt"
	"time"
)

// Heartbeat records that replica is alive and returns how many replicas
// are: those whose heartbeat is younger than ttl.
func (s *Store) Heartbeat(ctx context.Context, replica string, ttl time.Duration) (live int, err error) {
	err = s.pool.QueryRow(ctx, `
		WITH beat AS (
			INSERT INTO replicas (id, heartbeat_at) VALUES ($1, now())
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
		)
		SELECT 1 + count(*) FROM replicas WHERE id <> $1 AND heartbeat_at > now() - $2::interval`,
		replica, ttl).Scan(&live)
	if err != nil {
		return 0, fmt.Errorf("heartbeat of replica %s: %w", replica, err)
	}
	return live, nil
}

// RenewLeases extends every lease holder still has and returns their
// targets. A lease that lapsed and was taken by another replica is gone.
func (s *Store) RenewLeases(ctx context.Context, holder string, ttl time.Duration) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		UPDATE target_leases SET expires_at = now() + $2::interval
		WHERE holder = $1 RETURNING target`, holder, ttl)
	if err != nil {
		return nil, fmt.Errorf("renew leases of %s: %w", holder, err)
	}
	defer rows.Close()
	var held []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("renew leases of %s: %w", holder, err)
		}
		held = append(held, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("renew leases of %s: %w", holder, err)
	}
	return held, nil
}

// AcquireLease takes target's lease for holder if it is free or lapsed, and
// reports whether holder now holds it.
func (s *Store) AcquireLease(ctx context.Context, target, holder string, ttl time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO target_leases AS l (target, holder, acquired_at, expires_at)
		VALUES ($1, $2, now(), now() + $3::interval)
		ON CONFLICT (target) DO UPDATE SET holder = $2, acquired_at = now(), expires_at = now() + $3::interval
		WHERE l.expires_at < now() OR l.holder = $2`, target, holder, ttl)
	if err != nil {
		return false, fmt.Errorf("acquire lease of target %s: %w", target, err)
	}
	return tag.RowsAffected() == 1, nil
}

// FreeTargets returns those of targets whose lease holder may take now:
// free, lapsed or its own. A replica asks this once a heartbeat instead of
// trying each target's lease in turn, which at hundreds of targets made a
// heartbeat late enough for the leases to lapse.
func (s *Store) FreeTargets(ctx context.Context, holder string, targets []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT t FROM unnest($1::text[]) AS t
		WHERE NOT EXISTS (SELECT 1 FROM target_leases l WHERE l.target = t AND l.holder <> $2 AND l.expires_at >= now())`,
		targets, holder)
	if err != nil {
		return nil, fmt.Errorf("free targets for %s: %w", holder, err)
	}
	defer rows.Close()
	var free []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("free targets for %s: %w", holder, err)
		}
		free = append(free, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("free targets for %s: %w", holder, err)
	}
	return free, nil
}

// ReleaseLease gives target's lease up, if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, target, holder string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM target_leases WHERE target = $1 AND holder = $2`, target, holder); err != nil {
		return fmt.Errorf("release lease of target %s: %w", target, err)
	}
	return nil
}

// Leave releases every lease of replica and removes it from the live set,
// so the others take its targets at once instead of after the lease TTL.
func (s *Store) Leave(ctx context.Context, replica string) error {
	if _, err := s.pool.Exec(ctx, `
		WITH gone AS (DELETE FROM target_leases WHERE holder = $1)
		DELETE FROM replicas WHERE id = $1`, replica); err != nil {
		return fmt.Errorf("leave as replica %s: %w", replica, err)
	}
	return nil
}
