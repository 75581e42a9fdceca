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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	_ "modernc.org/sqlite"

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

// Store is the SQLite store. Create it with NewStore, then Open it.
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

	pg  bool // PostgreSQL, not SQLite
	wdb dbh  // the writer's single connection
	// wconn is the writer's connection on PostgreSQL, held across batches
	// (queued writes go through it); nil after it failed.
	wconn *sql.Conn
	rdb   dbh      // readers
	ops   chan *op // webhooks and what a user waits on
	// restartDue is set by the checkpointer when its PASSIVE run found
	// the WAL past walLimit; the writer makes the WAL start over after its
	// next batch (truncateWAL). lastTruncate is when it last tried.
	restartDue   atomic.Bool
	lastTruncate time.Time
	// walFrames is how many frames the WAL held at the last checkpoint
	// (0 after the writer made it start over): what is in it, which its
	// file size no longer says once the file is reused.
	walFrames atomic.Int64
	bg        chan *op // delivery bookkeeping and retention: see writeBackground

	purgeMu sync.Mutex // one retention run at a time

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	done   chan struct{} // closed when the writer has stopped

	stopCheckpoint, checkpointDone chan struct{}

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
	multi       map[multiKey]string // multi-row INSERTs made of one-row ones
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
	return &Store{Path: path, vaultKey: vaultKey, subjectKey: derive(pseudonymKey, "veil subject hash v1"),
		dedupKey: derive(pseudonymKey, "veil dedup hash v1"), MaxBatch: 256}
}

// NewPostgresStore returns a store on the PostgreSQL database dsn names;
// the keys as for NewStore. Several processes may open the same database.
func NewPostgresStore(dsn string, vaultKey, pseudonymKey []byte) *Store {
	s := NewStore("", vaultKey, pseudonymKey)
	s.DSN, s.pg = dsn, true
	return s
}

// Driver names the store's database: "sqlite" or "postgres".
func (s *Store) Driver() string {
	if s.pg {
		return veil.DriverPostgres
	}
	return veil.DriverSQLite
}

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
	if s.pg {
		err = s.openPostgres()
	} else {
		err = s.openSQLite()
	}
	if err != nil {
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
	s.multi = make(map[multiKey]string)
	s.ops = make(chan *op, 4*s.MaxBatch)
	s.bg = make(chan *op, 4*s.MaxBatch)
	s.done = make(chan struct{})
	s.stopCheckpoint = make(chan struct{})
	s.checkpointDone = make(chan struct{})
	go s.writer()
	if s.pg {
		close(s.checkpointDone) // PostgreSQL checkpoints by itself
	} else {
		go s.checkpointer()
	}
	return nil
}

// openSQLite opens the file with the writer's connection and the readers',
// in WAL mode, and migrates it.
func (s *Store) openSQLite() error {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	dsn := "file:" + s.Path + "?_pragma=page_size(" + strconv.Itoa(pageSize) + ")&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_txlock=immediate"
	// The writer never checkpoints: copying the WAL into the database took
	// a sixth of its time. The checkpointer goroutine does it beside it.
	// Its statement journals (every multi-row INSERT into a table with a
	// unique index keeps one, to undo itself alone) stay in memory: past
	// 64 KiB SQLite spilled them to a temporary file, a seventh of the
	// writer's CPU. Its statements are bounded (INSERTs of at most 64
	// rows, purges in chunks), and so is the journal. Temporary tables
	// stay in memory too; the writer builds one, in the purge of keys
	// made before per-hour keys: the subjects of such events that still
	// have a payload (none a payload retention after the upgrade).
	w, err := sql.Open("sqlite", dsn+"&_pragma=wal_autocheckpoint(0)&_pragma=temp_store(MEMORY)")
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.wdb = dbh{DB: w}
	s.wdb.SetMaxOpenConns(1)
	if err := incrementalVacuum(s.wdb, s.Logger); err != nil {
		s.wdb.Close()
		return fmt.Errorf("open store: %w", err)
	}
	if s.Migrated, err = migrateSQLite(s.wdb, s.Now(), s.OnMigrate); err != nil {
		s.wdb.Close()
		return fmt.Errorf("migrate store: %w", err)
	}
	if err := checkVaultKey(s.wdb, s.vaultKey); err != nil {
		s.wdb.Close()
		return err
	}
	// The database and its WAL hold only ciphertext and hashes, but keep
	// them private to the process owner anyway.
	for _, p := range []string{s.Path, s.Path + "-wal", s.Path + "-shm"} {
		_ = os.Chmod(p, 0o600)
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		s.wdb.Close()
		return fmt.Errorf("open store: %w", err)
	}
	s.rdb = dbh{DB: r}
	s.rdb.SetMaxOpenConns(4)
	return nil
}

// incrementalVacuum puts the database in incremental auto-vacuum mode, so
// that retention can give freed pages back to the file system a few at a
// time. The mode takes effect with a VACUUM, for a new database too: by
// the time this runs, journal_mode(WAL) has written the new file's header,
// and the pragma alone left a new database without the mode (retention
// gave nothing back until a restart rewrote the whole file). On a new,
// empty file the VACUUM is instant; a database made before this mode is
// rewritten once.
func incrementalVacuum(db dbh, log *slog.Logger) error {
	mode, err := autoVacuum(db)
	if err != nil || mode == autoVacuumIncremental {
		return err
	}
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master`).Scan(&tables); err != nil {
		return err
	}
	if tables > 0 {
		log.Info("rewriting the database once so retention can give space back (VACUUM)")
	}
	if _, err := db.Exec(`PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
		return err
	}
	if _, err := db.Exec(`VACUUM`); err != nil {
		return fmt.Errorf("vacuum into incremental mode: %w", err)
	}
	if mode, err = autoVacuum(db); err == nil && mode != autoVacuumIncremental {
		err = fmt.Errorf("auto_vacuum is %d after VACUUM, want %d (incremental)", mode, autoVacuumIncremental)
	}
	return err
}

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

func autoVacuum(db dbh) (int, error) {
	var mode int
	err := db.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode)
	return mode, err
}

// pageSize is the database's page size (page sizes from 4 to 64 KiB made
// no difference in the load runs).
const pageSize = 4096

// walLimit is how much the WAL may hold before the writer makes it start
// over.
const walLimit = 16 << 20

// checkpointer copies the WAL into the database every CheckpointInterval,
// off the writer's path. PASSIVE never blocks the writer. When the WAL is
// past walLimit it asks the writer to make it start over (truncateWAL):
// right after this copy, little is left for the writer to copy itself.
func (s *Store) checkpointer() {
	defer close(s.checkpointDone)
	t := time.NewTicker(s.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCheckpoint:
			return
		case <-t.C:
			frames, ok := s.passive()
			// Past walLimit, copy again what was committed while the last
			// run copied (a purge's chunks write many pages): what is left
			// the writer copies itself while the batches behind it wait.
			for pass := 0; ok && s.walBytes() > walLimit && pass < 3; pass++ {
				before := frames
				if frames, ok = s.passive(); frames-before < catchUpFrames {
					break
				}
			}
			if ok && s.walBytes() > walLimit {
				s.restartDue.Store(true)
			}
		}
	}
}

// catchUpFrames is how many frames committed during a PASSIVE run are few
// enough to leave to the writer's restart.
const catchUpFrames = 256

// passive copies what the WAL holds into the database without blocking
// the writer, and notes how many frames the WAL held.
func (s *Store) passive() (int64, bool) {
	var busy, frames, copied int64
	if err := s.rdb.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		s.Logger.Warn("checkpoint", "mode", "PASSIVE", "err", err)
		return 0, false
	}
	if frames < 0 {
		return 0, false
	}
	s.walFrames.Store(frames)
	return frames, true
}

// restartRetry is how long the writer waits before it tries again to make
// the WAL start over when a reader was in the way.
const restartRetry = 50 * time.Millisecond

// truncateWAL makes the WAL start over once the checkpointer found it past
// walLimit: under steady writes it never gets a chance to restart by
// itself. The writer does it between two batches, so it cannot be starved
// (run from another connection it waited for the write lock, gave up, and
// the WAL grew to a quarter of a gigabyte). It comes right after the
// checkpointer's PASSIVE run, so it copies only the batches committed
// since, and it never waits: a reader still on the WAL (or a PASSIVE run
// under way) makes it give up and try again after a later batch. Waiting
// for readers (up to 100 ms, SQLite's busy handler sleeping 1, 2, 5, 10…
// ms) cost the batches behind it 16–20 ms every second, and up to 131 ms.
// RESTART, not TRUNCATE: the file keeps its size and the next commits
// overwrite blocks it already has. Cutting it to nothing made every commit
// after grow the file again, and the soak's ingest p99 (300 events/s, 3
// min) was 118 ms with TRUNCATE against 62 ms with RESTART.
func (s *Store) truncateWAL() {
	if s.pg || !s.restartDue.Load() || time.Since(s.lastTruncate) < restartRetry {
		return
	}
	s.lastTruncate = time.Now()
	s.wdb.Exec(`PRAGMA busy_timeout = 0`)
	var busy, frames, copied int
	if err := s.wdb.QueryRow(`PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied); err != nil {
		s.Logger.Warn("checkpoint", "mode", "RESTART", "err", err)
	} else if busy != 0 {
		s.Logger.Debug("checkpoint busy", "mode", "RESTART", "frames", frames, "copied", copied)
	} else {
		s.walFrames.Store(0)
		s.restartDue.Store(false)
	}
	s.wdb.Exec(`PRAGMA busy_timeout = 5000`)
}

// walBytes is about what the WAL holds: its frames at the last checkpoint
// times the page size (a frame is one page and a small header).
func (s *Store) walBytes() int64 {
	return s.walFrames.Load() * pageSize
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
	close(s.stopCheckpoint)
	<-s.checkpointDone
	var err error
	if !s.pg {
		_, err = s.wdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	return errors.Join(err, s.rdb.Close(), s.wdb.Close())
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
		s.truncateWAL()
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
		if s.wconn != nil { // PostgreSQL: the next batch takes a fresh connection
			s.wconn.Close()
			s.wconn = nil
		}
		s.Logger.Error("commit batch", "err", err, "writes", len(ops))
		s.forgetNewKeys()
		for i := range errs {
			errs[i] = veil.Errorf(veil.EUNAVAILABLE, "The store could not commit; retry later.")
		}
		return errs, true // not worth retrying op by op
	}
	sqlTx, err := s.begin()
	if err != nil {
		return unavailable(fmt.Errorf("begin: %w", err))
	}
	tx := &wtx{Tx: sqlTx, s: s}
	// SQLite: the chain's tail, under the write lock (veil erase, another
	// process, may have appended since the last batch). PostgreSQL locks
	// the chain when the batch ends (sealAudit).
	if !s.pg {
		if s.chain, err = chainTail(tx); err != nil {
			tx.Rollback()
			return unavailable(fmt.Errorf("read audit chain tail: %w", err))
		}
		if err := s.evictErased(tx); err != nil {
			tx.Rollback()
			return unavailable(err)
		}
		if err := s.prefetchLinks(tx, ops); err != nil {
			tx.Rollback()
			return unavailable(err)
		}
	} else if err := s.prefetch(tx, ops); err != nil {
		tx.Rollback()
		return unavailable(fmt.Errorf("read erasures, dedup keys and data keys: %w", err))
	}
	if tx.claims, err = s.prefetchClaims(tx.queryStale, ops); err != nil {
		tx.Rollback()
		return unavailable(err)
	}
	for i, o := range ops {
		if errs[i] = o.fn(tx); errs[i] != nil {
			if tx.err != nil {
				errs[i] = tx.err // the queued writes its reads sent failed first
			}
			tx.Rollback()
			s.forgetNewKeys()
			return errs, false
		}
	}
	if err := s.sealAudit(tx); err != nil {
		tx.Rollback()
		if tx.err != nil {
			err = tx.err // the queued writes sealAudit sent failed first
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
		tx.Rollback()
		s.forgetNewKeys()
		for i := range errs {
			errs[i] = err
		}
		return errs, false
	}
	if err := tx.Commit(); err != nil {
		return unavailable(fmt.Errorf("commit: %w", err))
	}
	if tx.async {
		if err := s.barrier(); err != nil {
			// Committed, but maybe not durable: answer nobody. A webhook
			// sent again finds its duplicate if the commit survived.
			return unavailable(fmt.Errorf("flush commit: %w", err))
		}
	}
	s.newKeys = s.newKeys[:0]
	return errs, true
}

// wtx is the writer's transaction. Parsing SQL was a tenth of the writer's
// time under load, so statements are prepared on the writer's connection
// and reused. The connection is busy inside a transaction, so a query seen
// for the first time runs unprepared and is prepared after the batch.
type wtx struct {
	*sql.Tx
	s      *Store
	queued []queued                  // writes deferExec queued
	stmts  map[string]*sql.Stmt      // SQLite: the batch's handles of prepared statements
	pre    *prefetched               // PostgreSQL: what the batch's webhooks read
	apps   map[appKey]*veil.AppState // application states the batch wrote
	links  *links                    // the subject links the batch read and wrote
	claims map[string]claimState     // the claims of the deliveries the batch finishes
	audit  []*veil.AuditEntry        // PostgreSQL: rows to chain when the batch ends
	// keysUsed are the subjects whose data keys the batch sealed with.
	keysUsed map[string]bool
	err      error // the first failed flush
	async    bool  // PostgreSQL: commits without waiting for the flush (sealAudit)
}

// Exec, Query and QueryRow run a query unprepared (rebound for
// PostgreSQL, after the statements deferExec queued).
func (tx *wtx) Exec(query string, args ...any) (sql.Result, error) {
	tx.flush()
	return tx.Tx.Exec(tx.s.wdb.q(query), args...)
}

func (tx *wtx) Query(query string, args ...any) (*sql.Rows, error) {
	tx.flush()
	return tx.Tx.Query(tx.s.wdb.q(query), args...)
}

func (tx *wtx) QueryRow(query string, args ...any) *sql.Row {
	tx.flush()
	return tx.Tx.QueryRow(tx.s.wdb.q(query), args...)
}

// deferExec queues a write whose result nobody reads. The queue is sent
// before the next statement that is not queued (flush) and before the
// commit, with runs of plain INSERTs merged into multi-row INSERTs per
// statement: an event with three destinations is a dozen rows in six
// tables. On PostgreSQL that is one round trip instead of a dozen (one
// each held the writer at a sixth of SQLite's rate); on SQLite a
// multi-row INSERT costs a third less per row than a statement per row.
func (tx *wtx) deferExec(query string, args ...any) error {
	tx.queued = append(tx.queued, queued{query, args})
	return nil
}

// queued is one write deferExec queued.
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
					return err
				}
				continue
			}
			for _, args := range rows[q] {
				if err := other(queued{q, args}); err != nil {
					return err
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
				return err
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

// flush sends the queued writes. An error leaves the batch to be rolled
// back and retried op by op (on PostgreSQL the transaction is aborted:
// the next statement fails too).
func (tx *wtx) flush() error {
	if len(tx.queued) == 0 {
		return nil
	}
	if tx.s.pg {
		return tx.flushThen(nil, nil)
	}
	err := tx.drain(func(query string, rs [][]any) error {
		for len(rs) > 0 {
			// Chunks of 64, 32, … rows: a few prepared statements per
			// INSERT, far under SQLite's 32,766 parameters.
			n := 1
			for n*2 <= min(len(rs), maxMergedRows) {
				n *= 2
			}
			args := make([]any, 0, n*len(rs[0]))
			for _, r := range rs[:n] {
				args = append(args, r...)
			}
			if _, err := tx.execNow(tx.s.multiRow(query, n), args...); err != nil {
				return err
			}
			rs = rs[n:]
		}
		return nil
	}, func(q queued) error {
		_, err := tx.execNow(q.query, q.args...)
		return err
	})
	if err != nil && tx.err == nil {
		tx.err = err
	}
	return err
}

// maxMergedRows bounds the rows of one multi-row INSERT on SQLite.
const maxMergedRows = 64

// multiRow returns query, a one-row INSERT … VALUES (…), with n rows.
// Writer only.
func (s *Store) multiRow(query string, n int) string {
	if n == 1 {
		return query
	}
	k := multiKey{query, n}
	if q, ok := s.multi[k]; ok {
		return q
	}
	head, tuple, _ := strings.Cut(query, "VALUES")
	tuple = strings.TrimSpace(tuple)
	q := head + "VALUES " + tuple + strings.Repeat(", "+tuple, n-1)
	s.multi[k] = q
	return q
}

type multiKey struct {
	query string
	rows  int
}

// flushThen is flush on PostgreSQL followed, in the same round trip, by
// the reads queue adds to the batch; scan reads their results in order.
func (tx *wtx) flushThen(queue func(*pgx.Batch), scan func(pgx.BatchResults) error) error {
	if len(tx.queued) == 0 && queue == nil {
		return nil
	}
	b := &pgx.Batch{}
	tx.drain(func(query string, rs [][]any) error {
		queueInsert(b, query, rs)
		return nil
	}, func(q queued) error {
		b.Queue(rebind(q.query), q.args...)
		return nil
	})
	writes := b.Len()
	if queue != nil {
		queue(b)
	}
	err := tx.s.wconn.Raw(func(dc any) error {
		br := dc.(*stdlib.Conn).Conn().SendBatch(context.Background(), b)
		if scan != nil {
			for range writes {
				if _, err := br.Exec(); err != nil {
					br.Close()
					return err
				}
			}
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

// queueInsert queues rows of one INSERT statement as multi-row INSERTs,
// each under PostgreSQL's 65,535 parameters.
func queueInsert(b *pgx.Batch, query string, rs [][]any) {
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
		rs = rs[n:]
	}
}

// queryRowStale reads without sending the queued writes first: only for
// reads whose misses a constraint catches, or that nothing queued could
// change.
func (tx *wtx) queryRowStale(query string, args ...any) *sql.Row {
	if tx.s.pg {
		return tx.Tx.QueryRow(rebind(query), args...)
	}
	return tx.queryRowNow(query, args...)
}

// queryStale is queryRowStale for several rows.
func (tx *wtx) queryStale(query string, args ...any) (*sql.Rows, error) {
	if tx.s.pg {
		return tx.Tx.Query(rebind(query), args...)
	}
	if st := tx.prepared(query); st != nil {
		return st.Query(args...)
	}
	return tx.Tx.Query(query, args...)
}

// exec and queryRow run a statement after the queued writes, prepared on
// SQLite (pgx caches its prepared statements by itself).
func (tx *wtx) exec(query string, args ...any) (sql.Result, error) {
	if tx.s.pg {
		return tx.Exec(query, args...)
	}
	tx.flush()
	return tx.execNow(query, args...)
}

func (tx *wtx) queryRow(query string, args ...any) *sql.Row {
	if tx.s.pg {
		return tx.QueryRow(query, args...)
	}
	tx.flush()
	return tx.queryRowNow(query, args...)
}

// query is queryRow for several rows.
func (tx *wtx) query(query string, args ...any) (*sql.Rows, error) {
	if tx.s.pg {
		return tx.Query(query, args...)
	}
	tx.flush()
	if st := tx.prepared(query); st != nil {
		return st.Query(args...)
	}
	return tx.Tx.Query(query, args...)
}

// execNow and queryRowNow run a statement prepared, on SQLite, whatever
// is queued.
func (tx *wtx) execNow(query string, args ...any) (sql.Result, error) {
	if st := tx.prepared(query); st != nil {
		return st.Exec(args...)
	}
	return tx.Tx.Exec(query, args...)
}

func (tx *wtx) queryRowNow(query string, args ...any) *sql.Row {
	if st := tx.prepared(query); st != nil {
		return st.QueryRow(args...)
	}
	return tx.Tx.QueryRow(query, args...)
}

// prepared returns the transaction's handle of query's prepared statement,
// made once per batch (database/sql makes and later closes one per call),
// or nil for a query not prepared yet, which the writer prepares after the
// batch.
func (tx *wtx) prepared(query string) *sql.Stmt {
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
	t := tx.Stmt(st)
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
