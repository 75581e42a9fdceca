package audit

// PostgreSQL: several serve replicas on one database. What differs from
// SQLite: connections through pgx, migrations under an advisory lock, the
// chain's head in a row each batch locks, claims with FOR UPDATE SKIP
// LOCKED, and retention on one replica at a time (an advisory lock).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/veilhq/veil"
)

// pgDriver is the store on a PostgreSQL database.
type pgDriver struct {
	s *Store
	// wconn is the writer's connection, held across batches (queued
	// writes go through it); nil after it failed.
	wconn *sql.Conn
}

func (d *pgDriver) name() string { return veil.DriverPostgres }

func (d *pgDriver) dialect() dialect {
	return dialect{rebind: rebind, skipLocked: " FOR UPDATE SKIP LOCKED"}
}

func (d *pgDriver) start(*Store)   {} // PostgreSQL checkpoints by itself
func (d *pgDriver) idle()          {}
func (d *pgDriver) backlog() int64 { return 0 }

// reclaim gives nothing back: autovacuum reuses the space.
func (d *pgDriver) reclaim(*wtx) (int64, error) { return 0, nil }

func (d *pgDriver) close(s *Store) error {
	if d.wconn != nil {
		d.wconn.Close()
		d.wconn = nil
	}
	return errors.Join(s.rdb.Close(), s.wdb.Close())
}

// failed drops the writer's connection: the next batch takes a fresh one.
func (d *pgDriver) failed() {
	if d.wconn != nil {
		d.wconn.Close()
		d.wconn = nil
	}
}

// appendAudit keeps the row for seal, which chains the batch's rows under
// the chain's lock, so replicas hold it only for as long as it takes to
// append.
func (d *pgDriver) appendAudit(tx *wtx, e *veil.AuditEntry) error {
	tx.audit = append(tx.audit, e)
	return nil
}

// copyValue writes as bytes what SQLite hands back as a string from a
// BLOB written as text, for a bytea column.
func (d *pgDriver) copyValue(col string, v any) any {
	if str, ok := v.(string); ok && isBinary(col) {
		return []byte(str)
	}
	return v
}

// Advisory lock keys: the same numbers in every replica.
const (
	lockMigrate   = 0x7665696c0001 // "veil" 1
	lockRetention = 0x7665696c0002
	lockReconcile = 0x7665696c0003 // shifted left 16, the source's hash below
)

// open connects (the writer's connection and a pool of readers),
// migrates under an advisory lock, and checks the vault key. An
// unreachable database is an error naming its host, never the password.
func (d *pgDriver) open(s *Store) error {
	cfg, err := pgx.ParseConfig(s.DSN)
	if err != nil {
		return fmt.Errorf("open store: storage.dsn is not a PostgreSQL connection string: %s", redactDSN(err.Error(), s.DSN))
	}
	where := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	w, r := stdlib.OpenDB(*cfg), stdlib.OpenDB(*cfg)
	w.SetMaxOpenConns(2) // the writer's held connection, and one for a store copy
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s.wdb, s.rdb = dbh{db: w, rebind: rebind}, dbh{db: r, rebind: rebind}
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
	if s.Migrated, err = migratePostgres(ctx, s.wdb, s.Now(), s.OnMigrate); err != nil {
		return fail(fmt.Errorf("migrate store: %s", redactDSN(err.Error(), s.DSN)))
	}
	if err := checkVaultKey(s.wdb, s.vaultKey); err != nil {
		return fail(err)
	}
	return nil
}

// rootCause is the text of the attempts pgx made: it wraps the dial
// errors in the connection settings, joined, one per way it tried
// (sslmode=prefer, the default, tries with TLS, then without; a host may
// have several addresses). Each different attempt is told once, on one
// line.
func rootCause(err error) string {
	for {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			var attempts []string
			for _, e := range j.Unwrap() {
				if !slices.Contains(attempts, e.Error()) {
					attempts = append(attempts, e.Error())
				}
			}
			return strings.Join(attempts, "; ")
		}
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
func migratePostgres(ctx context.Context, d dbh, now time.Time, tick func(m Migration, i, n int)) ([]Migration, error) {
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockMigrate); err != nil {
		return nil, err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, lockMigrate)
	return migrate(ctx, conn, veil.DriverPostgres, rebind, now, tick, nil)
}

// errRetryAlone fails a batch so that each of its writes runs again alone.
var errRetryAlone = errors.New("the batch raced another replica; each write runs again")

// seal ends a batch that appends audit rows: its other
// writes are sent, then it locks the chain head, gives the rows their seq
// and hashes, inserts them and leaves the new tail in chain_head. The lock
// is held from here to the commit only, so replicas do everything else of
// their batches side by side. A subject erased by another replica since
// the batch began, whose data key the batch used, fails the batch: run
// again, each write finds the key gone and makes a new one.
func (d *pgDriver) seal(tx *wtx) error {
	s := d.s
	if len(tx.audit) == 0 {
		return nil
	}
	// The batch's queued writes, then the chain's head under its row lock
	// and the erasures seen since: one round trip.
	var c chainState
	var last int64
	err := d.flushThen(tx, func(b *pgx.Batch) {
		b.Queue(`SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE`)
		b.Queue(`SELECT coalesce(max(seq), 0) FROM erasures`)
	}, func(br pgx.BatchResults) error {
		if err := br.QueryRow().Scan(&c.seq, &c.hash); err != nil {
			return err
		}
		return br.QueryRow().Scan(&last)
	})
	if err != nil {
		return err
	}
	before := s.erasureSeen
	if err := s.evictErasedUpTo(tx, last); err != nil {
		return err
	}
	if s.erasureSeen != before && len(tx.keysUsed) > 0 {
		var n int64
		subjects := make([]string, 0, len(tx.keysUsed))
		for sub := range tx.keysUsed {
			subjects = append(subjects, sub)
		}
		if err := tx.queryRowText(`SELECT count(*) FROM erasures WHERE seq > ? AND subject = ANY(?)`, before, subjects).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errRetryAlone
		}
	}
	// The lock on chain_head lasts until the commit. Waiting there for the
	// WAL flush made the replicas' commits run one at a time; this commit
	// does not wait, and the barrier after it (run) makes it durable
	// before any webhook of the batch is answered.
	tx.queue(`SET LOCAL synchronous_commit = off`)
	tx.async = true
	s.chain = c
	for _, e := range tx.audit {
		if err := s.insertAudit(tx, e); err != nil {
			return err
		}
	}
	tx.audit = tx.audit[:0]
	tx.queue(`UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1`, s.chain.seq, s.chain.hash)
	return nil
}

// durable makes durable a batch that committed without waiting for the
// WAL flush (seal): a write of its own committed synchronously, whose
// flush covers every WAL record before it. Until it returns, the batch's
// rows are visible to other replicas but could still be lost with the
// server; no webhook of the batch has been answered yet.
func (d *pgDriver) durable(tx *wtx) error {
	if !tx.async {
		return nil
	}
	_, err := d.wconn.ExecContext(tx.ctx, `INSERT INTO commit_barrier (pid, n) VALUES (pg_backend_pid(), 1)
		ON CONFLICT (pid) DO UPDATE SET n = commit_barrier.n + 1`)
	return err
}

// exclusive runs fn while this process holds the named advisory lock, or
// reports false without running it when another replica holds it.
func (d *pgDriver) exclusive(ctx context.Context, s *Store, key int64, fn func() error) (bool, error) {
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

// begin starts the writer's transaction on its held connection (a new one
// after a failure, so serving resumes by itself when the database is back).
func (d *pgDriver) begin(ctx context.Context) (*sql.Tx, error) {
	if d.wconn == nil {
		c, err := d.s.wdb.Conn(ctx)
		if err != nil {
			return nil, err
		}
		// The writer plans each statement once: its statements, the
		// multi-row INSERTs above all, have plans that never change, and
		// planning each run for its arguments cost PostgreSQL's CPU on
		// every batch. A generic plan is fixed on first use, though, and
		// one made while the tables were empty scans them. Every
		// statement of the writer is keyed, so sequential scans are off on
		// its connection: a statement with no index to use still scans,
		// the others use theirs whatever the tables held when they were
		// planned. JIT is off with it: the scan's penalty would push such
		// a statement over jit_above_cost and compile it on every run.
		// SETs, not startup parameters, so poolers pass them.
		if _, err := c.ExecContext(ctx,
			`SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET jit = off`); err != nil {
			c.Close()
			return nil, err
		}
		d.wconn = c
	}
	// The batch's round trips end by BatchTimeout: a deadline on the
	// connection itself (pgx marks it broken when one passes).
	if err := d.wconn.Raw(func(dc any) error {
		return dc.(*stdlib.Conn).Conn().PgConn().Conn().SetDeadline(time.Now().Add(d.s.BatchTimeout))
	}); err != nil {
		d.failed()
		return nil, err
	}
	tx, err := d.wconn.BeginTx(ctx, nil)
	if err != nil {
		d.wconn.Close()
		d.wconn = nil
	}
	return tx, err
}

// ingestRead is what storing one webhook reads: whether its dedup keys are
// taken, and its subject's data key for the hour.
type ingestRead struct {
	dedup, bodyDedup []byte
	key              keyID
	app              appKey // the application whose state the event reports; zero if none
	refs             []subjectRef
}

// prefetched is what prefetch read for a batch, kept up to date with the
// batch's own inserts.
type prefetched struct {
	events map[string]string // dedup or body_dedup hash -> event id
	keys   map[keyID][]byte  // wrapped data keys found
	apps   map[appKey]*veil.AppState
	links  map[string]link // subject ref -> its link
}

// startBatch reads, in one round trip for the whole batch, the dedup
// hashes and data keys its webhooks will look up, and the erasures seen
// since the last batch (on SQLite each looks them up itself, a call into
// the library). A row it misses (one committed by no one before this
// batch locked the chain, so none) would be caught by the unique
// constraints anyway. The chain is locked when the batch ends (seal).
func (d *pgDriver) startBatch(tx *wtx, ops []*op) error {
	if err := d.prefetch(tx, ops); err != nil {
		return fmt.Errorf("read erasures, dedup keys and data keys: %w", err)
	}
	return nil
}

func (d *pgDriver) prefetch(tx *wtx, ops []*op) error {
	s := d.s
	var dedups, bodies [][]byte
	var epochs []int64
	var subjects, appSources, apps, refs []string
	for _, o := range ops {
		if o.ingest == nil {
			continue
		}
		for _, r := range o.ingest.refs {
			refs = append(refs, r.hash)
		}
		if o.ingest.app.app != "" {
			appSources, apps = append(appSources, o.ingest.app.source), append(apps, o.ingest.app.app)
		}
		if o.ingest.dedup != nil {
			dedups = append(dedups, o.ingest.dedup)
		}
		if o.ingest.bodyDedup != nil {
			bodies = append(bodies, o.ingest.bodyDedup)
		}
		if !s.keys.Contains(o.ingest.key) {
			epochs, subjects = append(epochs, o.ingest.key.epoch), append(subjects, o.ingest.key.subject)
		}
	}
	if dedups == nil && bodies == nil && epochs == nil && apps == nil && refs == nil {
		return s.evictErased(tx)
	}
	var last int64
	pre := &prefetched{events: map[string]string{}, keys: map[keyID][]byte{}, apps: map[appKey]*veil.AppState{},
		links: map[string]link{}}
	// Only the reads with something to look up: a vendor that signs an id
	// has no body hashes, a subject seen this hour has its key cached.
	b := &pgx.Batch{}
	var scans []func(pgx.Rows) error
	read := func(query string, scan func(pgx.Rows) error, args ...any) {
		b.Queue(query, args...)
		scans = append(scans, scan)
	}
	event := func(rows pgx.Rows) error {
		var id string
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			return err
		}
		pre.events[string(h)] = id
		return nil
	}
	if dedups != nil {
		read(`SELECT id, dedup FROM events WHERE dedup = ANY($1)`, event, dedups)
	}
	if bodies != nil {
		read(`SELECT id, body_dedup FROM events WHERE body_dedup = ANY($1)`, event, bodies)
	}
	if epochs != nil {
		read(`SELECT k.epoch, k.subject, k.wrapped FROM data_keys k
			JOIN unnest($1::bigint[], $2::text[]) AS want(epoch, subject) ON k.epoch = want.epoch AND k.subject = want.subject`,
			func(rows pgx.Rows) error {
				var k keyID
				var w []byte
				if err := rows.Scan(&k.epoch, &k.subject, &w); err != nil {
					return err
				}
				pre.keys[k] = w
				return nil
			}, epochs, subjects)
	}
	if apps != nil {
		read(`SELECT a.source, a.app, coalesce(a.stage, ''), coalesce(a.outcome, ''), a.seen_by FROM app_states a
			JOIN unnest($1::text[], $2::text[]) AS want(source, app) ON a.source = want.source AND a.app = want.app`,
			func(rows pgx.Rows) error {
				var k appKey
				st := &veil.AppState{}
				if err := rows.Scan(&k.source, &k.app, &st.Stage, &st.Outcome, &st.SeenBy); err != nil {
					return err
				}
				pre.apps[k] = st
				return nil
			}, appSources, apps)
	}
	if refs != nil {
		read(`SELECT l.ref, l.person, l.person_kind, p.ref IS NOT NULL FROM subject_links l
			LEFT JOIN subject_links p ON p.ref = l.person WHERE l.ref = ANY($1)`, func(rows pgx.Rows) error {
			var ref, person, kind string
			var moved bool
			if err := rows.Scan(&ref, &person, &kind, &moved); err != nil {
				return err
			}
			if moved {
				// Her person merged: linkTx follows the rows.
				pre.links[ref] = link{}
				return nil
			}
			pre.links[ref] = link{person, kind == veil.RefCandidate}
			return nil
		}, refs)
	}
	b.Queue(`SELECT coalesce(max(seq), 0) FROM erasures`)
	err := d.wconn.Raw(func(dc any) error {
		br := dc.(*stdlib.Conn).Conn().SendBatch(tx.ctx, b)
		defer br.Close()
		for _, scan := range scans {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				if err := scan(rows); err != nil {
					rows.Close()
					return err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return br.QueryRow().Scan(&last)
	})
	if err != nil {
		return err
	}
	tx.pre = pre
	return s.evictErasedUpTo(tx, last)
}

// retryable reports whether a failed batch of one write is worth running
// again: it raced another replica (a unique key taken meanwhile: the
// retry finds the duplicate; a deadlock or serialization failure).
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505", "40P01", "40001":
			return true
		}
	}
	return errors.Is(err, errRetryAlone)
}

// isConstraint reports whether err is a PostgreSQL integrity violation
// (class 23), which one write of a batch caused, not the database.
func isConstraint(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "23")
}

// flush sends the queued writes in one round trip.
func (d *pgDriver) flush(tx *wtx) error { return d.flushThen(tx, nil, nil) }

// flushThen sends the queued writes followed, in the same round trip, by
// the reads queue adds to the batch; scan reads their results in order. A
// failed write is named by its statement.
func (d *pgDriver) flushThen(tx *wtx, queue func(*pgx.Batch), scan func(pgx.BatchResults) error) error {
	if len(tx.queued) == 0 && queue == nil {
		return nil
	}
	b := &pgx.Batch{}
	var sent []string // the statement of each write queued in b
	tx.drain(func(query string, rs [][]any) error {
		sent = queueInsert(b, query, rs, sent)
		return nil
	}, func(q queued) error {
		b.Queue(rebind(q.query), q.args...)
		sent = append(sent, q.query)
		return nil
	})
	if queue != nil {
		queue(b)
	}
	err := d.wconn.Raw(func(dc any) error {
		br := dc.(*stdlib.Conn).Conn().SendBatch(tx.ctx, b)
		for _, q := range sent {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return stmtErr(q, err)
			}
		}
		if scan != nil {
			if err := scan(br); err != nil {
				br.Close()
				return err
			}
		}
		return br.Close()
	})
	if err != nil && tx.err == nil {
		tx.err = err
	}
	return err
}

// queueInsert queues rows of one INSERT statement as multi-row INSERTs,
// each under PostgreSQL's 65,535 parameters, and adds each to sent.
func queueInsert(b *pgx.Batch, query string, rs [][]any, sent []string) []string {
	head, tuple, _ := strings.Cut(query, "VALUES")
	tuple = strings.TrimSpace(tuple)
	per := max(1, 60000/max(1, len(rs[0])))
	for len(rs) > 0 {
		n := min(len(rs), per)
		args := make([]any, 0, n*len(rs[0]))
		var sb strings.Builder
		sb.WriteString(head)
		sb.WriteString("VALUES ")
		for i, r := range rs[:n] {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(tuple)
			args = append(args, r...)
		}
		b.Queue(rebind(sb.String()), args...)
		sent = append(sent, query)
		rs = rs[n:]
	}
	return sent
}

// isBinary says whether a column is binary (bytea) on PostgreSQL.
func isBinary(col string) bool {
	switch col {
	case "wrapped", "dedup", "body_dedup", "sealed", "body", "key_hash", "salt":
		return true
	}
	return false
}

// afterCopy moves the chain head to the copied tail and the id sequences
// past the copied ids.
func (d *pgDriver) afterCopy(ctx context.Context, s *Store) error {
	tx, err := s.wdb.Begin()
	if err != nil {
		return err
	}
	w := &wtx{tx: tx, s: s, ctx: ctx}
	c, err := chainTail(w)
	if err == nil {
		_, err = w.execText(`UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1`, c.seq, c.hash)
	}
	for _, seq := range []string{`SELECT setval(pg_get_serial_sequence('consumers', 'id'), coalesce(max(id), 0) + 1, false) FROM consumers`,
		`SELECT setval(pg_get_serial_sequence('erasures', 'seq'), coalesce(max(seq), 0) + 1, false) FROM erasures`} {
		if err == nil {
			_, err = w.execText(seq)
		}
	}
	if err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
