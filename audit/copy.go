package audit

// Moving a deployment from SQLite into PostgreSQL: every table copied row
// for row (ciphertext, keyed hashes and the audit chain as they are), so
// the copy decrypts with the same vault key and verifies.

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// copyTables are the tables a copy moves, parents first, with the columns
// of the newest schema version and the column they are read in order of.
var copyTables = []struct {
	name, order string
	cols        []string
}{
	{"data_keys", "epoch, subject", []string{"epoch", "subject", "wrapped", "created_at"}},
	{"events", "received_at, id", []string{"id", "source", "vendor", "event_type", "subject", "dedup", "body_dedup",
		"received_at", "upstream", "key_epoch"}},
	{"payloads", "event_id", []string{"event_id", "sealed"}},
	{"deliveries", "created_at, id", []string{"id", "event_id", "destination", "subject", "status", "detail", "attempts",
		"next_attempt_at", "created_at", "updated_at"}},
	{"delivery_fields", "id", []string{"id", "fields_kept", "pseudonymized", "categories"}},
	{"outbound_bodies", "delivery_id", []string{"delivery_id", "sealed"}},
	{"schema_paths", "source, event_type, path", []string{"source", "event_type", "path", "first_seen"}},
	{"consumers", "id", []string{"id", "name", "key_hash", "purposes", "created_at", "revoked_at"}},
	{"erasures", "seq", []string{"seq", "subject", "at", "lifted"}},
	{"subject_links", "ref", []string{"ref", "person", "person_kind", "linked_at"}},
	{"tombstones", "person", []string{"person", "erased_at", "receipt", "salt", "restored_at", "restored_reason"}},
	{"audit_anchor", "id", []string{"id", "seq", "hash"}},
	{"audit", "seq", []string{"seq", "time", "action", "actor", "source", "event_type", "event_id", "destination",
		"subject", "outcome", "http_status", "attempt", "fields_kept", "fields_dropped", "categories", "detail", "prev_hash", "hash"}},
	{"meta", "key", []string{"key", "value"}},
	{"users", "name", []string{"name", "password", "roles", "must_change", "failures", "locked_until", "disabled", "created_at"}},
	{"api_tokens", "name", []string{"name", "digest", "roles", "created_at", "created_by", "expires_at", "revoked_at", "last_used"}},
	{"approvals", "delivery_id, actor", []string{"delivery_id", "actor", "at"}},
}

// ErrNotEmpty is returned by CopyTo when the destination holds events or
// audit rows already.
var ErrNotEmpty = errors.New("the destination database is not empty: copy into a new database")

// CopyTo copies every row of s into dst, an opened, empty store with the
// same keys (its vault key check was written by Open and must match), in
// transactions of a few hundred rows, and moves dst's chain head to the
// copied tail. progress, if not nil, is told each table's rows copied so
// far after each transaction, and once more with finished set. Both stores
// must be idle: run it with serve stopped.
func (s *Store) CopyTo(ctx context.Context, dst *Store, progress func(table string, rows int64, finished bool)) error {
	var n int64
	if err := dst.rdb.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM audit)`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return ErrNotEmpty
	}
	// dst, made empty, marked its links as backfilled; whether they are is
	// the source's to say (its meta row, copied below, or none).
	if _, err := dst.wdb.ExecContext(ctx, `DELETE FROM meta WHERE key = 'links_backfilled'`); err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	for _, t := range copyTables {
		rows, err := s.rdb.QueryContext(ctx, `SELECT `+strings.Join(t.cols, ", ")+` FROM `+t.name+` ORDER BY `+t.order)
		if err != nil {
			return fmt.Errorf("read %s: %w", t.name, err)
		}
		var batch [][]any
		var copied int64
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			if err := dst.insertRows(ctx, t.name, t.cols, batch); err != nil {
				return fmt.Errorf("write %s: %w", t.name, err)
			}
			copied += int64(len(batch))
			batch = batch[:0]
			if progress != nil {
				progress(t.name, copied, false)
			}
			return nil
		}
		for rows.Next() {
			vals := make([]any, len(t.cols))
			ptrs := make([]any, len(t.cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return fmt.Errorf("read %s: %w", t.name, err)
			}
			if t.name == "meta" && vals[0] == "vault_check" {
				continue // dst wrote its own, and Open checked it against the same key
			}
			if t.name == "meta" {
				// The source's value replaces any dst made when it opened
				// (its receipt key, so the source's receipts still verify).
				if _, err := dst.wdb.ExecContext(ctx, rebind(`DELETE FROM meta WHERE key = ?`), vals[0]); err != nil {
					rows.Close()
					return fmt.Errorf("write meta: %w", err)
				}
			}
			batch = append(batch, vals)
			if len(batch) == 200 {
				if err := flush(); err != nil {
					rows.Close()
					return err
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", t.name, err)
		}
		if err := flush(); err != nil {
			return err
		}
		if progress != nil {
			progress(t.name, copied, true)
		}
	}
	return dst.drv.afterCopy(ctx, dst)
}

// insertRows inserts rows into table in one statement and transaction.
func (s *Store) insertRows(ctx context.Context, table string, cols []string, rows [][]any) error {
	one := "(?" + strings.Repeat(", ?", len(cols)-1) + ")"
	q := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES ` + one + strings.Repeat(", "+one, len(rows)-1)
	args := make([]any, 0, len(rows)*len(cols))
	for _, r := range rows {
		for _, v := range r {
			args = append(args, s.drv.copyValue(cols[len(args)%len(cols)], v))
		}
	}
	_, err := s.wdb.ExecContext(ctx, q, args...)
	return err
}

// Counts returns the number of rows of each copied table.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range copyTables {
		var n int64
		if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM `+t.name).Scan(&n); err != nil {
			return nil, err
		}
		out[t.name] = n
	}
	return out, nil
}

// SchemaVersion is the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.rdb.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
