package audit

// PostgreSQL: several serve replicas on one database. What differs from
// SQLite: connections through pgx, migrations under an advisory lock, the
// chain's head in a row each batch locks, claims with FOR UPDATE SKIP
// LOCKED, and retention on one replica at a time (an advisory lock).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Advisory lock keys: the same numbers in every replica.
const (
	lockMigrate   = 0x7665696c0001 // "veil" 1
	lockRetention = 0x7665696c0002
)

// openPostgres connects (the writer's connection and a pool of readers),
// migrates under an advisory lock, and checks the vault key. An
// unreachable database is an error naming its host, never the password.
func (s *Store) openPostgres() error {
	cfg, err := pgx.ParseConfig(s.DSN)
	if err != nil {
		return fmt.Errorf("open store: storage.dsn is not a PostgreSQL connection string: %s", redactDSN(err.Error(), s.DSN))
	}
	where := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	s.wdb = dbh{DB: stdlib.OpenDB(*cfg), pg: true}
	s.wdb.SetMaxOpenConns(1)
	s.rdb = dbh{DB: stdlib.OpenDB(*cfg), pg: true}
	s.rdb.SetMaxOpenConns(8)
	s.rdb.SetMaxIdleConns(8)
	fail := func(err error) error {
		s.wdb.Close()
		s.rdb.Close()
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.wdb.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("open store: cannot reach PostgreSQL at %s (database %q, user %q): %s",
			where, cfg.Database, cfg.User, redactDSN(rootCause(err), s.DSN)))
	}
	if s.Migrated, err = migratePostgres(ctx, s.wdb, s.Now()); err != nil {
		return fail(fmt.Errorf("migrate store: %s", redactDSN(err.Error(), s.DSN)))
	}
	if err := checkVaultKey(s.wdb, s.vaultKey); err != nil {
		return fail(err)
	}
	return nil
}

// rootCause is the innermost error's text: pgx wraps the dial error in
// the connection settings.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// redactDSN removes the DSN's password from a message.
func redactDSN(msg, dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "********")
	}
	return msg
}

// migratePostgres brings the database to the newest version, one replica
// at a time: the others wait on the advisory lock and find nothing to do.
func migratePostgres(ctx context.Context, d dbh, now time.Time) ([]Migration, error) {
	ms, err := migrations("postgres")
	if err != nil {
		return nil, err
	}
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockMigrate); err != nil {
		return nil, err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, lockMigrate)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return nil, err
	}
	var current int
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return nil, err
	}
	var applied []Migration
	for _, m := range ms[min(current, len(ms)):] {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return applied, err
		}
		if _, err := tx.Exec(m.sql); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		if _, err := tx.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.version, now.UnixNano()); err != nil {
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

// lockChain reads the chain's tail at the start of a batch. On SQLite the
// batch already holds the only write lock; on PostgreSQL it locks the
// chain_head row, so batches of different replicas append one after the
// other and every later row lock is taken after this one (no deadlocks).
func (s *Store) lockChain(tx *wtx) (chainState, error) {
	if !s.pg {
		return chainTail(tx)
	}
	var c chainState
	err := tx.QueryRow(`SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE`).Scan(&c.seq, &c.hash)
	return c, err
}

// saveChain leaves the new tail in chain_head before a PostgreSQL batch
// commits.
func (s *Store) saveChain(tx *wtx, from chainState) error {
	if !s.pg || s.chain == from {
		return nil
	}
	_, err := tx.exec(`UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1`, s.chain.seq, s.chain.hash)
	return err
}

// exclusive runs fn while this process holds the named advisory lock, or
// reports false without running it when another replica holds it. On
// SQLite (one process per file) it just runs fn.
func (s *Store) exclusive(ctx context.Context, key int64, fn func() error) (bool, error) {
	if !s.pg {
		return true, fn()
	}
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return false, err
	}
	if !got {
		return false, nil
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, key)
	return true, fn()
}

// skipLocked ends a claim's SELECT: FOR UPDATE SKIP LOCKED on PostgreSQL,
// nothing on SQLite (one writer).
func (s *Store) skipLocked() string {
	if s.pg {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}
