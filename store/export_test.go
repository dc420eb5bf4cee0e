package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// InterpretError exposes interpretError to the external tests.
var InterpretError = interpretError

// AttentionSQL exposes the metrics query, to check its plan.
const AttentionSQL = attentionSQL

// SnapshotChunk is the most snapshots written over unnest'ed arrays; more
// go by COPY.
const SnapshotChunk = snapshotChunk

// UpsertUnnest writes a's snapshots as a small batch is written, whatever
// their number, for comparing with the COPY paths.
func UpsertUnnest(ctx context.Context, s *Store, a Apply) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error { return upsertUnnest(ctx, tx, a, a.Snapshots) })
}

// FirstSweepPart is how many jobs one part of a first sweep written in
// parts holds.
const FirstSweepPart = firstSweepPart

// AfterPart makes s run fn between the parts of a sweep written in parts,
// after part n committed.
func AfterPart(s *Store, fn func(ctx context.Context, n int) error) { s.afterPart = fn }
