package audit

// The two drivers share the store's SQL, written with ? placeholders. What
// differs between them is the driver interface, implemented in sqlite.go
// and postgres.go; nothing outside those two files asks which one it is.

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"

	"github.com/veilhq/veil"
)

// driver is what differs between SQLite and PostgreSQL.
type driver interface {
	// name is veil.DriverSQLite or veil.DriverPostgres.
	name() string
	// open connects s.wdb and s.rdb, migrates and checks the vault key;
	// start, after the writer started, runs what the driver does beside
	// it, until close.
	open(s *Store) error
	start(s *Store)
	// begin starts the writer's transaction of a batch; failed is told
	// when a batch could not commit.
	begin(ctx context.Context) (*sql.Tx, error)
	failed()
	// startBatch reads, first in a batch, what its writes need: the
	// chain's tail (SQLite, under the write lock) or everything the
	// batch's webhooks look up, in one round trip (PostgreSQL).
	startBatch(tx *wtx, ops []*op) error
	// appendAudit adds a row to the batch's part of the chain, and seal
	// ends the batch's writes (PostgreSQL chains the rows here, under the
	// chain head's lock); durable makes the committed batch durable.
	appendAudit(tx *wtx, e *veil.AuditEntry) error
	seal(tx *wtx) error
	durable(tx *wtx) error
	// flush sends the writes queued in tx.
	flush(tx *wtx) error
	// idle runs between two batches (SQLite: the WAL's restart); backlog
	// is how many bytes the database still has to copy (the WAL) — what
	// retention paces itself by.
	idle()
	backlog() int64
	// close stops what start started and closes the connections.
	close(s *Store) error
	// exclusive runs fn while this process holds the named lock (other
	// replicas skip it; SQLite has one process per file).
	exclusive(ctx context.Context, s *Store, key int64, fn func() error) (bool, error)
	// reclaim gives free pages back to the file system after a purge.
	reclaim(tx *wtx) (int64, error)
	// afterCopy fixes what a row-by-row copy into the store leaves (the
	// chain head, sequences); copyValue converts one copied value.
	afterCopy(ctx context.Context, s *Store) error
	copyValue(column string, v any) any
	// dialect is how the driver's SQL differs.
	dialect() dialect
}

// dialect is how a driver's SQL differs from the store's.
type dialect struct {
	rebind func(query string) string // ? to the driver's placeholders
	// skipLocked ends a claim's SELECT (FOR UPDATE SKIP LOCKED where
	// several replicas claim).
	skipLocked string
	// prepares says the writer prepares its statements itself (SQLite:
	// parsing was a tenth of its time); pgx caches them by itself.
	prepares bool
}

// dbh is a database handle whose queries are written with ? and rebound
// for the driver.
type dbh struct {
	db     *sql.DB
	rebind func(string) string
}

func (d dbh) Exec(query string, args ...any) (sql.Result, error) {
	return d.db.Exec(d.rebind(query), args...)
}

func (d dbh) QueryRow(query string, args ...any) *sql.Row {
	return d.db.QueryRow(d.rebind(query), args...)
}

func (d dbh) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.db.ExecContext(ctx, d.rebind(query), args...)
}

func (d dbh) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.db.QueryContext(ctx, d.rebind(query), args...)
}

func (d dbh) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, d.rebind(query), args...)
}

// Prepare prepares a statement for the writer's batches.
func (d dbh) Prepare(query string) (*sql.Stmt, error) { return d.db.Prepare(d.rebind(query)) }

// Begin starts a transaction outside the writer (migrations, copies).
func (d dbh) Begin() (*sql.Tx, error) { return d.db.Begin() }

// Conn takes one connection of the pool, for work that must stay on it
// (an advisory lock).
func (d dbh) Conn(ctx context.Context) (*sql.Conn, error) { return d.db.Conn(ctx) }

func (d dbh) PingContext(ctx context.Context) error { return d.db.PingContext(ctx) }

// Close closes the handle; the zero dbh has nothing to close.
func (d dbh) Close() error {
	if d.db == nil {
		return nil
	}
	return d.db.Close()
}

// same leaves a query as written (SQLite takes ? placeholders).
func same(query string) string { return query }

// rebound caches rebind's results: the store's queries are a few dozen.
var rebound sync.Map

// rebind turns ? placeholders into PostgreSQL's $n, outside quoted text.
func rebind(query string) string {
	if v, ok := rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	rebound.Store(query, out)
	return out
}
