// Package audit is Veil's store: the vault of encrypted events, the
// delivery queue and the hash-chained audit log, on SQLite (one file, no
// setup) or PostgreSQL (several serve replicas on one database). One
// writer goroutine per process owns every write and commits them in
// batches (group commit), so a burst of webhooks costs one fsync per
// batch, not one per request; on PostgreSQL each batch locks the chain's
// head row first, so the audit chain has one total order across replicas.
package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/veilhq/veil"
)

// ErrClosed is returned for work handed to a store that is closing or closed.
var ErrClosed = veil.Errorf(veil.EUNAVAILABLE, "The store is unavailable; retry later.")

var (
	commitBatchSize = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "veil_store_commit_batch_size", Help: "Writes committed together in one transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	commitSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "veil_store_commit_seconds", Help: "Time to run and commit one batch of writes.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
	})
	commitErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "veil_store_commit_errors_total", Help: "Batches whose commit failed.",
	})
)

// Store is the store, on SQLite (NewStore) or PostgreSQL
// (NewPostgresStore); then Open it.
type Store struct {
	// Path is the SQLite database file; its folder is created if missing.
	Path string
	// DSN is the PostgreSQL connection string, for a store made by
	// NewPostgresStore.
	DSN string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxPending bounds the single sign-on logins under way (0:
	// DefaultMaxPending).
	MaxPending int
	// Logger receives operational messages, never a payload value; nil discards.
	Logger *slog.Logger
	// MaxBatch bounds the writes committed in one transaction; 0 means 256.
	MaxBatch int
	// BatchTimeout bounds a PostgreSQL batch of the writer, every round
	// trip included; 0 means 30 s.
	BatchTimeout time.Duration
	// CheckpointInterval is how often the WAL is copied into the database;
	// 0 means 1s.
	CheckpointInterval time.Duration
	// KeyCacheSize bounds the unwrapped data keys kept in memory (an LRU);
	// 0 means DefaultKeyCacheSize.
	KeyCacheSize int
	// ReceiptKey signs erasure receipts (keys.receipt); nil means the
	// store's own, generated on first start and kept sealed in the store.
	ReceiptKey ed25519.PrivateKey

	// Migrated lists the migrations Open applied.
	Migrated []Migration
	// OnMigrate, when set, is told before Open applies each migration:
	// its place among those to apply, and how many there are.
	OnMigrate func(m Migration, i, n int)

	vaultKey   []byte // wraps per-subject data keys
	receiptKey ed25519.PrivateKey
	subjectKey []byte // keyed hash of subject references
	dedupKey   []byte // keyed hash of dedup keys and bodies

	drv     driver   // SQLite or PostgreSQL
	dialect dialect  // drv's
	wdb     dbh      // the writer's connection(s)
	rdb     dbh      // readers
	ops     chan *op // webhooks and what a user waits on
	bg      chan *op // delivery bookkeeping and retention: see writeBackground

	purgeMu sync.Mutex // one retention run at a time

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	done   chan struct{} // closed when the writer has stopped

	// keys caches unwrapped data keys (safe for concurrent use).
	keys *lru.Cache[keyID, []byte]

	erasedMu  sync.RWMutex
	erased    map[string]bool // guarded by erasedMu: erased references (keyed hashes)
	erasedSeq int64           // guarded by erasedMu: the last erasures row applied to erased
	// salts are the pseudonym salts of the people whose erasure was lifted
	// (guarded by erasedMu; nil until first read).
	salts         map[string][]byte
	erasedChecked atomic.Int64 // when a decision last read the erasures log (unix ns)

	// writer-goroutine state
	chain       chainState
	newKeys     []keyID // data keys created in the uncommitted batch
	erasureSeen int64   // the last erasures.seq whose keys were evicted
	stmts       map[string]*sql.Stmt
	unprepared  []string
}

// chainTail returns the last row of the chain, or the anchor retention left
// when every row was purged, or the empty chain.
func chainTail(tx *wtx) (chainState, error) {
	var c chainState
	err := tx.queryRow(`SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&c.seq, &c.hash)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.queryRow(`SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&c.seq, &c.hash)
		if errors.Is(err, sql.ErrNoRows) {
			return chainState{}, nil
		}
	}
	return c, err
}

// chainState is the tail of the audit hash chain.
type chainState struct {
	seq  int64
	hash string
}

// op is one unit of work for the writer: fn runs inside the batch's
// transaction under its own savepoint; done (if not nil) receives the result
// after the commit.
type op struct {
	fn   func(tx *wtx) error
	done chan error
	// ingest, for a webhook's write: what it reads, so that on PostgreSQL
	// one round trip reads it for the whole batch (see prefetch).
	ingest *ingestRead
	// finish, for an attempt's outcome: the delivery whose claim the batch
	// reads first (prefetchClaims).
	finish string
}

// NewStore returns a store for the database at path. vaultKey (32 bytes)
// wraps the data keys; pseudonymKey (32 bytes) derives the key of subject hashes.
func NewStore(path string, vaultKey, pseudonymKey []byte) *Store {
	s := &Store{Path: path, vaultKey: vaultKey, subjectKey: derive(pseudonymKey, "veil subject hash v1"),
		dedupKey: derive(pseudonymKey, "veil dedup hash v1"), MaxBatch: 256}
	s.setDriver(&sqliteDriver{s: s})
	return s
}

func (s *Store) setDriver(d driver) {
	s.drv, s.dialect = d, d.dialect()
}

// NewPostgresStore returns a store on the PostgreSQL database dsn names;
// the keys as for NewStore. Several processes may open the same database.
func NewPostgresStore(dsn string, vaultKey, pseudonymKey []byte) *Store {
	s := NewStore("", vaultKey, pseudonymKey)
	s.DSN = dsn
	s.setDriver(&pgDriver{s: s})
	return s
}

// Driver names the store's database: "sqlite" or "postgres".
func (s *Store) Driver() string { return s.drv.name() }

// derive returns HMAC-SHA256(key, label): one master key, separate keys
// per use.
func derive(key []byte, label string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// Open creates or migrates the database and starts the writer.
func (s *Store) Open() error {
	if len(s.vaultKey) != 32 {
		return fmt.Errorf("open store: vault key must be 32 bytes")
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = 256
	}
	if s.BatchTimeout <= 0 {
		s.BatchTimeout = batchTimeout
	}
	if s.CheckpointInterval <= 0 {
		s.CheckpointInterval = time.Second
	}
	if s.KeyCacheSize <= 0 {
		s.KeyCacheSize = DefaultKeyCacheSize
	}
	var err error
	if s.keys, err = lru.New[keyID, []byte](s.KeyCacheSize); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if err := s.drv.open(s); err != nil {
		return err
	}
	if err := s.wdb.QueryRow(`SELECT coalesce(max(seq), 0) FROM erasures`).Scan(&s.erasureSeen); err != nil {
		s.wdb.Close()
		s.rdb.Close()
		return fmt.Errorf("open store: %w", err)
	}
	if err := s.loadErased(s.wdb); err != nil {
		s.wdb.Close()
		s.rdb.Close()
		return fmt.Errorf("open store: %w", err)
	}
	if err := s.openReceiptKey(s.wdb); err != nil {
		s.wdb.Close()
		s.rdb.Close()
		return fmt.Errorf("open store: %w", err)
	}
	s.stmts = make(map[string]*sql.Stmt)
	s.ops = make(chan *op, 4*s.MaxBatch)
	s.bg = make(chan *op, 4*s.MaxBatch)
	s.done = make(chan struct{})
	go s.writer()
	s.drv.start(s)
	return nil
}

// Close lets queued writes commit, stops the writer and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed || s.ops == nil {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	close(s.bg)
	s.mu.Unlock()
	<-s.done
	return s.drv.close(s)
}

// Ping reports whether the database answers, for readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return s.rdb.PingContext(ctx)
}

// write hands fn to the writer and waits until its batch commits.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	return s.writeOn(ctx, false, fn)
}

// writeBackground is write for bookkeeping that may wait behind webhooks
// (delivery claims and outcomes, retention): the writer adds at most
// maxBackground such writes to a batch, after the webhooks waiting, so a
// destination's backlog draining at thousands of deliveries a second does
// not hold back the commits the ATS waits on.
func (s *Store) writeBackground(ctx context.Context, fn func(tx *wtx) error) error {
	return s.writeOn(ctx, true, fn)
}

// maxBackground bounds the background writes in one batch.
const maxBackground = 64

func (s *Store) writeOn(ctx context.Context, background bool, fn func(tx *wtx) error) error {
	return s.writeOp(ctx, background, &op{fn: fn, done: make(chan error, 1)})
}

func (s *Store) writeOp(ctx context.Context, background bool, o *op) error {
	if err := s.enqueue(ctx, o, background); err != nil {
		return err
	}
	// Once queued, the write will be committed or fail; wait for the answer
	// even if ctx ends so the caller never reports a committed write as lost.
	return <-o.done
}

func (s *Store) enqueue(ctx context.Context, o *op, background bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || s.ops == nil {
		return ErrClosed
	}
	ch := s.ops
	if background {
		ch = s.bg
	}
	select {
	case ch <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, s.MaxBatch)
	ops, bg := s.ops, s.bg // nil once closed and drained
	for ops != nil || bg != nil {
		var first *op
		select {
		case o, ok := <-ops:
			if !ok {
				ops = nil
				continue
			}
			first = o
		case o, ok := <-bg:
			if !ok {
				bg = nil
				continue
			}
			first = o
		}
		batch = append(batch[:0], first)
		// The webhooks waiting first, then a bounded share of the rest.
	fill:
		for len(batch) < s.MaxBatch {
			select {
			case o, ok := <-ops:
				if !ok {
					ops = nil
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
	fillBackground:
		for n := 0; n < maxBackground && len(batch) < s.MaxBatch; n++ {
			select {
			case o, ok := <-bg:
				if !ok {
					bg = nil
					break fillBackground
				}
				batch = append(batch, o)
			default:
				break fillBackground
			}
		}
		s.commit(batch)
		s.drv.idle()
		if len(s.unprepared) > 0 {
			s.prepare()
		}
	}
}

// commit runs a batch in one transaction. When an op fails, the batch is
// rolled back and each op runs again alone, so one failing op undoes no
// other; a failed commit fails them all. (Savepoints around every op did
// the same at the cost of two statements per write, a third of the
// statements of a delivered event.)
func (s *Store) commit(batch []*op) {
	start := time.Now()
	errs, ok := s.run(batch)
	if !ok && len(batch) > 1 {
		for i, o := range batch {
			errs[i] = nil
			e, _ := s.run([]*op{o})
			if e != nil && e[0] != nil && retryable(e[0]) {
				e, _ = s.run([]*op{o}) // raced another replica: once more
			}
			if e != nil {
				errs[i] = e[0]
			}
		}
	} else if !ok && errs[0] != nil && retryable(errs[0]) {
		errs, _ = s.run(batch)
	}
	commitBatchSize.Observe(float64(len(batch)))
	commitSeconds.Observe(time.Since(start).Seconds())
	for i, o := range batch {
		if o.done != nil {
			o.done <- errs[i]
		} else if errs[i] != nil {
			s.Logger.Error("background write", "err", errs[i])
		}
	}
}

// run executes ops in one transaction and commits it when all succeed. It
// reports false, with the rollback done, when an op failed; the errors of a
// failed begin or commit are given to every op.
func (s *Store) run(ops []*op) ([]error, bool) {
	errs := make([]error, len(ops))
	unavailable := func(err error) ([]error, bool) {
		commitErrors.Inc()
		s.drv.failed()
		s.Logger.Error("commit batch", "err", err, "writes", len(ops))
		s.forgetNewKeys()
		for i := range errs {
			errs[i] = veil.Errorf(veil.EUNAVAILABLE, "The store could not commit; retry later.")
		}
		return errs, true // not worth retrying op by op
	}
	// The driver bounds the batch's round trips (BatchTimeout); a context
	// per statement, watched by pgx, cost the PostgreSQL writer a tenth.
	ctx := context.Background()
	sqlTx, err := s.drv.begin(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("begin: %w", err))
	}
	tx := &wtx{tx: sqlTx, s: s, ctx: ctx}
	if err := s.drv.startBatch(tx, ops); err != nil {
		tx.rollback()
		return unavailable(err)
	}
	if tx.claims, err = s.prefetchClaims(tx.queryStale, ops); err != nil {
		tx.rollback()
		return unavailable(err)
	}
	for i, o := range ops {
		if errs[i] = o.fn(tx); errs[i] != nil {
			if tx.err != nil {
				errs[i] = tx.err // the queued writes its reads sent failed first
			}
			tx.rollback()
			s.forgetNewKeys()
			return errs, false
		}
	}
	if err := s.drv.seal(tx); err != nil {
		tx.rollback()
		if tx.err != nil {
			err = tx.err // the queued writes seal sent failed first
		}
		if !retryable(err) && !isConstraint(err) {
			return unavailable(fmt.Errorf("append audit rows: %w", err))
		}
		// A write of the batch broke a constraint or raced another
		// replica: find which, running each alone.
		s.forgetNewKeys()
		for i := range errs {
			errs[i] = err
		}
		return errs, false
	}
	tx.flush()
	if err := tx.err; err != nil {
		// A queued statement failed, in this flush or (on SQLite, which
		// goes on with the transaction) in one an op's read made: find
		// which op by running each alone.
		tx.rollback()
		s.forgetNewKeys()
		for i := range errs {
			errs[i] = err
		}
		return errs, false
	}
	if err := tx.tx.Commit(); err != nil {
		return unavailable(fmt.Errorf("commit: %w", err))
	}
	if err := s.drv.durable(tx); err != nil {
		// Committed, but maybe not durable: answer nobody. A webhook
		// sent again finds its duplicate if the commit survived.
		return unavailable(fmt.Errorf("flush commit: %w", err))
	}
	s.newKeys = s.newKeys[:0]
	return errs, true
}

// wtx is the writer's transaction. Parsing SQL was a tenth of the writer's
// time under load on SQLite, so there statements are prepared on the
// writer's connection and reused. The connection is busy inside a
// transaction, so a query seen for the first time runs unprepared and is
// prepared after the batch.
//
// Its statements, by when they run:
//   - queue: a write whose result nobody reads, sent with the next
//     statement that is not queued or at the commit;
//   - exec, query, queryRow: after the queue is sent, prepared (fixed
//     statements);
//   - execText, queryText, queryRowText: after the queue is sent, as text
//     (statements built per call, which would fill the prepared cache);
//   - queryStale, queryRowStale: without sending the queue first;
//   - send: a statement of the queue itself.
type wtx struct {
	tx     *sql.Tx
	ctx    context.Context // the batch's
	s      *Store
	queued []queued                  // writes queue queued
	stmts  map[string]*sql.Stmt      // SQLite: the batch's handles of prepared statements
	pre    *prefetched               // PostgreSQL: what the batch's webhooks read
	apps   map[appKey]*veil.AppState // application states the batch wrote
	links  *links                    // the subject links the batch read and wrote
	claims map[string]claimState     // the claims of the deliveries the batch finishes
	audit  []*veil.AuditEntry        // PostgreSQL: rows to chain when the batch ends
	// keysUsed are the subjects whose data keys the batch sealed with.
	keysUsed map[string]bool
	err      error // the first failed flush
	async    bool  // PostgreSQL: commits without waiting for the flush (seal)
}

// batchTimeout is BatchTimeout's default: a database that stops answering
// fails the batch instead of holding the writer (SQLite runs in the
// process and needs none).
const batchTimeout = 30 * time.Second

func (tx *wtx) rollback() { _ = tx.tx.Rollback() }

// execText, queryText and queryRowText run a query as text, not prepared,
// after the writes queued before it.
func (tx *wtx) execText(query string, args ...any) (sql.Result, error) {
	tx.flush()
	return tx.tx.ExecContext(tx.ctx, tx.s.dialect.rebind(query), args...)
}

func (tx *wtx) queryText(query string, args ...any) (*sql.Rows, error) {
	tx.flush()
	return tx.tx.QueryContext(tx.ctx, tx.s.dialect.rebind(query), args...)
}

func (tx *wtx) queryRowText(query string, args ...any) *sql.Row {
	tx.flush()
	return tx.tx.QueryRowContext(tx.ctx, tx.s.dialect.rebind(query), args...)
}

// queue queues a write whose result nobody reads. The queue is sent
// before the next statement that is not queued (flush) and before the
// commit, with runs of plain INSERTs merged into multi-row INSERTs per
// statement: an event with three destinations is a dozen rows in six
// tables. On PostgreSQL that is one round trip instead of a dozen (one
// each held the writer at a sixth of SQLite's rate); on SQLite a
// multi-row INSERT costs a third less per row than a statement per row.
// A write that fails fails the statement that sent it and the batch,
// with the failed statement named (see drain).
func (tx *wtx) queue(query string, args ...any) {
	tx.queued = append(tx.queued, queued{query, args})
}

// queued is one write queue queued.
type queued struct {
	query string
	args  []any
}

// drain empties the queue: insert gets the rows of each plain INSERT
// statement of a run, other every other write. A run ends at any write
// but an INSERT … VALUES: an UPDATE or a DELETE may read any table, so
// it sees every write queued before it, as queued. Within a run, writes
// to one table keep their order (a different INSERT into a table already
// written ends the run), and writes to different tables commute: they
// read nothing, and no table references another. So an upsert of the
// application's state (INSERT … ON CONFLICT, which cannot merge: two rows
// of one statement may be the same application) no longer splits every
// event's INSERTs into runs of one row each, as it did.
func (tx *wtx) drain(insert func(query string, rows [][]any) error, other func(queued) error) error {
	var order []string // the run's statements, first seen first
	rows := map[string][][]any{}
	tables := map[string]string{} // table -> the run's statement that writes it
	emit := func() error {
		for _, q := range order {
			if mergeable(q) {
				if err := insert(q, rows[q]); err != nil {
					return stmtErr(q, err)
				}
				continue
			}
			for _, args := range rows[q] {
				if err := other(queued{q, args}); err != nil {
					return stmtErr(q, err)
				}
			}
		}
		order = order[:0]
		clear(rows)
		clear(tables)
		return nil
	}
	defer func() { tx.queued = tx.queued[:0] }()
	for _, q := range tx.queued {
		table := insertTable(q.query)
		if table == "" {
			if err := emit(); err != nil {
				return err
			}
			if err := other(q); err != nil {
				return stmtErr(q.query, err)
			}
			continue
		}
		if prev, ok := tables[table]; ok && prev != q.query {
			if err := emit(); err != nil {
				return err
			}
		}
		if _, ok := rows[q.query]; !ok {
			order = append(order, q.query)
			tables[table] = q.query
		}
		rows[q.query] = append(rows[q.query], q.args)
	}
	return emit()
}

// stmtErr names the queued statement a write failed in ("INSERT INTO
// deliveries", "UPDATE deliveries"), never its arguments.
func stmtErr(query string, err error) error {
	f := strings.Fields(query)
	n := min(len(f), 3)
	if n > 0 && f[0] == "UPDATE" {
		n = min(n, 2)
	}
	return fmt.Errorf("queued %s: %w", strings.Join(f[:n], " "), err)

}

// flush sends the queued writes. An error leaves the batch to be rolled
// back and retried op by op (on PostgreSQL the transaction is aborted:
// the next statement fails too).
func (tx *wtx) flush() error {
	if len(tx.queued) == 0 {
		return nil
	}
	err := tx.s.drv.flush(tx)
	if err != nil && tx.err == nil {
		tx.err = err
	}
	return err
}

// mergeable reports whether a query is a plain INSERT … VALUES (…) whose
// rows can join other rows of the same statement.
func mergeable(query string) bool {
	return insertTable(query) != "" && strings.HasSuffix(strings.TrimSpace(query), ")") &&
		!strings.Contains(query, "ON CONFLICT")
}

// insertTable returns the table an INSERT INTO table (…) VALUES (…),
// with or without ON CONFLICT, writes; "" for any other statement (one
// with a SELECT in it may read other tables).
func insertTable(query string) string {
	rest, ok := strings.CutPrefix(query, "INSERT INTO ")
	if !ok || !strings.Contains(query, "VALUES") || strings.Contains(query, "SELECT") {
		return ""
	}
	table, _, ok := strings.Cut(rest, " ")
	if !ok {
		return ""
	}
	return table
}

// queryRowStale reads without sending the queued writes first: only for
// reads whose misses a constraint catches, or that nothing queued could
// change.
func (tx *wtx) queryRowStale(query string, args ...any) *sql.Row {
	if st := tx.prepared(query); st != nil {
		return st.QueryRowContext(tx.ctx, args...)
	}
	return tx.tx.QueryRowContext(tx.ctx, tx.s.dialect.rebind(query), args...)
}

// queryStale is queryRowStale for several rows.
func (tx *wtx) queryStale(query string, args ...any) (*sql.Rows, error) {
	if st := tx.prepared(query); st != nil {
		return st.QueryContext(tx.ctx, args...)
	}
	return tx.tx.QueryContext(tx.ctx, tx.s.dialect.rebind(query), args...)
}

// exec, query and queryRow run a statement after the queued writes,
// prepared where the driver prepares.
func (tx *wtx) exec(query string, args ...any) (sql.Result, error) {
	tx.flush()
	return tx.send(query, args...)
}

func (tx *wtx) queryRow(query string, args ...any) *sql.Row {
	tx.flush()
	return tx.queryRowStale(query, args...)
}

func (tx *wtx) query(query string, args ...any) (*sql.Rows, error) {
	tx.flush()
	return tx.queryStale(query, args...)
}

// send runs a statement whatever is queued: a statement of the queue.
func (tx *wtx) send(query string, args ...any) (sql.Result, error) {
	if st := tx.prepared(query); st != nil {
		return st.ExecContext(tx.ctx, args...)
	}
	return tx.tx.ExecContext(tx.ctx, tx.s.dialect.rebind(query), args...)
}

// prepared returns the transaction's handle of query's prepared statement,
// made once per batch (database/sql makes and later closes one per call),
// or nil for a query not prepared yet, which the writer prepares after the
// batch.
func (tx *wtx) prepared(query string) *sql.Stmt {
	if !tx.s.dialect.prepares {
		return nil
	}
	if t, ok := tx.stmts[query]; ok {
		return t
	}
	st, ok := tx.s.stmts[query]
	if !ok {
		tx.s.unprepared = append(tx.s.unprepared, query)
		return nil
	}
	if tx.stmts == nil {
		tx.stmts = map[string]*sql.Stmt{}
	}
	t := tx.tx.Stmt(st)
	tx.stmts[query] = t
	return t
}

// prepare prepares the queries first seen in the last batch. Writer only,
// between transactions.
func (s *Store) prepare() {
	for _, q := range s.unprepared {
		if _, ok := s.stmts[q]; ok {
			continue
		}
		st, err := s.wdb.Prepare(q)
		if err != nil {
			s.Logger.Error("prepare statement", "err", err)
			continue
		}
		s.stmts[q] = st
	}
	s.unprepared = s.unprepared[:0]
}

// SubjectHash returns the keyed hash that stands for a subject reference
// (greenhouse:candidate:123) in every table and export.
func (s *Store) SubjectHash(ref string) string {
	if ref == "" {
		return ""
	}
	mac := hmac.New(sha256.New, s.subjectKey)
	mac.Write([]byte(ref))
	return "sub_" + hex.EncodeToString(mac.Sum(nil)[:16])
}

// ErrVaultKey is returned by Open when keys.vault is not the key the
// database was created with.
var ErrVaultKey = errors.New("keys.vault is not the key this database was created with, so its payloads cannot be decrypted: " +
	"set the original key, or point data_dir at an empty folder to start a new database")

// checkVaultKey compares the vault key with the check value the database
// keeps (an HMAC of a constant under the key, which reveals nothing of it),
// so a different key stops the start instead of failing every read later.
// A database without one gets it, after the key has unwrapped a stored data
// key if there is one.
func checkVaultKey(db dbh, vaultKey []byte) error {
	want := derive(vaultKey, "veil vault key check v1")
	var got []byte
	err := db.QueryRow(`SELECT value FROM meta WHERE key = 'vault_check'`).Scan(&got)
	if err == nil {
		// Written in hex; databases of the first SQLite releases hold the
		// raw bytes.
		if !hmac.Equal(got, []byte(hex.EncodeToString(want))) && !hmac.Equal(got, want) {
			return ErrVaultKey
		}
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read vault key check: %w", err)
	}
	var subject string
	var wrapped []byte
	switch err := db.QueryRow(`SELECT subject, wrapped FROM data_keys LIMIT 1`).Scan(&subject, &wrapped); {
	case err == nil:
		if _, err := open(vaultKey, wrapped, []byte(subject)); err != nil {
			return ErrVaultKey
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("read data key: %w", err)
	}
	if _, err := db.Exec(`INSERT INTO meta (key, value) VALUES ('vault_check', ?)`, hex.EncodeToString(want)); err != nil {
		return fmt.Errorf("write vault key check: %w", err)
	}
	return nil
}
