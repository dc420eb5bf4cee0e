// Package migrations holds the ossjobwatch SQL schema as embedded, forward-only
// migrations.
//
// Each file is named NNN_name.sql (001_schema.sql, 002_…) and carries only a
// "-- +goose Up" section: the schema moves forward and never back, so there
// are no Down sections to keep correct. A change to a released migration is
// made by a new file, never by editing an old one. store.Migrate applies the
// files in order with pressly/goose under a PostgreSQL advisory lock.
//
// The tables and the job_status_history view are part of the public contract:
// people query them directly, so every object and column has a COMMENT.
package migrations

import "embed"

// FS holds the migration files at its root, in the form goose reads them.
//
//go:embed *.sql
var FS embed.FS
