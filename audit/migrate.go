package audit

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Schema changes are numbered migrations, one file each per driver
// (migrations/<driver>/NNNN_name.sql), the same numbers for every driver.
// Each runs in its own transaction with the row that records it.

//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the driver's migrations in order.
func migrations(driver string) ([]migration, error) {
	dir := path.Join("migrations", driver)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s is not NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations of %s: version %d missing", driver, i+1)
		}
	}
	return out, nil
}

// Migration is one applied migration, as `veil migrate` reports it.
type Migration struct {
	Version int
	Name    string
}

// migrate brings the database on conn to the newest of driver's
// migrations and returns those it applied: the one migration loop of both
// drivers (PostgreSQL runs it under an advisory lock, so replicas take
// turns). q rebinds the loop's ? placeholders. legacy, when set, is asked
// first about a database without schema_migrations and says which version
// it brought it to (SQLite's releases before numbered migrations).
func migrate(ctx context.Context, conn *sql.Conn, driver string, q func(string) string, now time.Time,
	tick func(m Migration, i, n int), legacy func(ctx context.Context, conn *sql.Conn, v1 string) (int, error)) ([]Migration, error) {
	ms, err := migrations(driver)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return nil, err
	}
	var current int
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return nil, err
	}
	if current == 0 && legacy != nil {
		if current, err = legacy(ctx, conn, ms[0].sql); err != nil {
			return nil, fmt.Errorf("bring a database of an earlier release to version 1: %w", err)
		}
		if current > 0 {
			if _, err := conn.ExecContext(ctx, q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), current, now.UnixNano()); err != nil {
				return nil, err
			}
		}
	}
	if current > len(ms) {
		// A release older than the one that last opened the database (a
		// rollback): its statements would not match the schema.
		return nil, fmt.Errorf("the database is at schema version %d, newer than this release's %d: run a release at least as new", current, len(ms))
	}
	var applied []Migration
	todo := ms[current:]
	for i, m := range todo {
		if tick != nil {
			tick(Migration{Version: m.version, Name: m.name}, i, len(todo))
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return applied, err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), m.version, now.UnixNano()); err != nil {
			tx.Rollback()
			return applied, err
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		applied = append(applied, Migration{Version: m.version, Name: m.name})
	}
	return applied, nil
}

// upgradeLegacy brings a SQLite database of a release before numbered
// migrations (it has tables but no schema_migrations) to version 1: those
// releases created missing tables at every start and probed columns,
// adding the upstream column and moving each delivery's body and path
// lists to delivery_bodies. v1 is version 1's SQL. A new database stays
// at version 0.
func upgradeLegacy(ctx context.Context, db *sql.Conn, v1 string) (int, error) {
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'`).Scan(&tables); err != nil || tables == 0 {
		return 0, err
	}
	v1 = strings.ReplaceAll(v1, "CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
	v1 = strings.ReplaceAll(v1, "CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ")
	if _, err := db.ExecContext(ctx, v1); err != nil {
		return 0, err
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('events') WHERE name = 'upstream'`).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE events ADD COLUMN upstream TEXT`); err != nil {
			return 0, err
		}
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('deliveries') WHERE name = 'body'`).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 1, nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`INSERT OR IGNORE INTO delivery_bodies (id, body, fields_kept, pseudonymized)
			SELECT id, body, fields_kept, pseudonymized FROM deliveries`,
		`ALTER TABLE deliveries DROP COLUMN body`,
		`ALTER TABLE deliveries DROP COLUMN fields_kept`,
		`ALTER TABLE deliveries DROP COLUMN fields_dropped`,
		`ALTER TABLE deliveries DROP COLUMN pseudonymized`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("move delivery bodies: %w", err)
		}
	}
	return 1, tx.Commit()
}
