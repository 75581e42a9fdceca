package audit

// SQLite: one file, no setup, one process. What differs from PostgreSQL:
// the WAL copied into the database beside the writer (checkpointer) and
// made to start over between batches; the writer's statements prepared
// once; queued writes sent as multi-row INSERTs of up to 64 rows; the
// chain's tail read under the write lock at each batch's start; freed
// pages given back after a purge.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite"

	"github.com/veilhq/veil"
)

// sqliteDriver is the store on a SQLite file.
type sqliteDriver struct {
	s *Store
	// restartDue is set by the checkpointer when its PASSIVE run found
	// the WAL past walLimit; the writer makes the WAL start over after its
	// next batch (idle). lastTruncate is when it last tried.
	restartDue   atomic.Bool
	lastTruncate time.Time
	// walFrames is how many frames the WAL held at the last checkpoint
	// (0 after the writer made it start over): what is in it, which its
	// file size no longer says once the file is reused.
	walFrames  atomic.Int64
	stop, done chan struct{}       // the checkpointer's
	multi      map[multiKey]string // multi-row INSERTs made of one-row ones (writer only)
}

func (d *sqliteDriver) name() string { return veil.DriverSQLite }

func (d *sqliteDriver) dialect() dialect { return dialect{rebind: same, prepares: true} }

// start starts the checkpointer.
func (d *sqliteDriver) start(s *Store) {
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go d.checkpointer(s.CheckpointInterval)
}

// close stops the checkpointer, copies the whole WAL into the database
// and closes the connections.
func (d *sqliteDriver) close(s *Store) error {
	var err error
	if d.stop != nil {
		close(d.stop)
		<-d.done
		_, err = s.wdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	return errors.Join(err, s.rdb.Close(), s.wdb.Close())
}

// begin starts a transaction on the writer's only connection (BEGIN
// IMMEDIATE: it takes the write lock at once).
func (d *sqliteDriver) begin(ctx context.Context) (*sql.Tx, error) {
	return d.s.wdb.db.BeginTx(ctx, nil)
}

func (d *sqliteDriver) failed() {}

// startBatch reads the chain's tail under the write lock (veil erase,
// another process, may have appended since the last batch), forgets the
// data keys of people erased since, and reads the batch's subject links.
func (d *sqliteDriver) startBatch(tx *wtx, ops []*op) error {
	var err error
	if d.s.chain, err = chainTail(tx); err != nil {
		return fmt.Errorf("read audit chain tail: %w", err)
	}
	if err := d.s.evictErased(tx); err != nil {
		return err
	}
	return d.s.prefetchLinks(tx, ops)
}

// appendAudit chains the row at once: the batch holds the write lock.
func (d *sqliteDriver) appendAudit(tx *wtx, e *veil.AuditEntry) error {
	return d.s.insertAudit(tx, e)
}

func (d *sqliteDriver) seal(*wtx) error    { return nil }
func (d *sqliteDriver) durable(*wtx) error { return nil }

// exclusive just runs fn: one process per file.
func (d *sqliteDriver) exclusive(_ context.Context, _ *Store, _ int64, fn func() error) (bool, error) {
	return true, fn()
}

func (d *sqliteDriver) afterCopy(context.Context, *Store) error { return nil }
func (d *sqliteDriver) copyValue(_ string, v any) any           { return v }

// open opens the file with the writer's connection and the readers', in
// WAL mode, and migrates it.
func (d *sqliteDriver) open(s *Store) error {
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
	w.SetMaxOpenConns(1)
	s.wdb = dbh{db: w, rebind: same}
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
	r.SetMaxOpenConns(4)
	s.rdb = dbh{db: r, rebind: same}
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
// past walLimit it asks the writer to make it start over (idle): right
// after this copy, little is left for the writer to copy itself.
func (d *sqliteDriver) checkpointer(every time.Duration) {
	defer close(d.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			frames, ok := d.passive()
			// Past walLimit, copy again what was committed while the last
			// run copied (a purge's chunks write many pages): what is left
			// the writer copies itself while the batches behind it wait.
			for pass := 0; ok && d.backlog() > walLimit && pass < 3; pass++ {
				before := frames
				if frames, ok = d.passive(); frames-before < catchUpFrames {
					break
				}
			}
			if ok && d.backlog() > walLimit {
				d.restartDue.Store(true)
			}
		}
	}
}

// catchUpFrames is how many frames committed during a PASSIVE run are few
// enough to leave to the writer's restart.
const catchUpFrames = 256

// passive copies what the WAL holds into the database without blocking
// the writer, and notes how many frames the WAL held.
func (d *sqliteDriver) passive() (int64, bool) {
	var busy, frames, copied int64
	if err := d.s.rdb.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		d.s.Logger.Warn("checkpoint", "mode", "PASSIVE", "err", err)
		return 0, false
	}
	if frames < 0 {
		return 0, false
	}
	d.walFrames.Store(frames)
	return frames, true
}

// restartRetry is how long the writer waits before it tries again to make
// the WAL start over when a reader was in the way.
const restartRetry = 50 * time.Millisecond

// idle makes the WAL start over once the checkpointer found it past
// walLimit: under steady writes it never gets a chance to restart by
// itself. The writer does it between two batches, so it cannot be starved
// (from another connection it would wait for the write lock). It comes
// right after the checkpointer's PASSIVE run, so it copies only the
// batches committed since, and it never waits: a reader still on the WAL
// makes it give up and try again after a later batch, so the batches
// behind it never wait on SQLite's busy handler. RESTART, not TRUNCATE:
// the file keeps its size and the next commits overwrite blocks it
// already has instead of growing it again (BENCHMARKS.md, the soak).
func (d *sqliteDriver) idle() {
	if !d.restartDue.Load() || time.Since(d.lastTruncate) < restartRetry {
		return
	}
	s := d.s
	d.lastTruncate = time.Now()
	s.wdb.Exec(`PRAGMA busy_timeout = 0`)
	var busy, frames, copied int
	if err := s.wdb.QueryRow(`PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied); err != nil {
		s.Logger.Warn("checkpoint", "mode", "RESTART", "err", err)
	} else if busy != 0 {
		s.Logger.Debug("checkpoint busy", "mode", "RESTART", "frames", frames, "copied", copied)
	} else {
		d.walFrames.Store(0)
		d.restartDue.Store(false)
	}
	s.wdb.Exec(`PRAGMA busy_timeout = 5000`)
}

// migrateSQLite runs the migrations on the writer's only connection.
func migrateSQLite(db dbh, now time.Time, tick func(m Migration, i, n int)) ([]Migration, error) {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return migrate(ctx, conn, veil.DriverSQLite, same, now, tick, upgradeLegacy)
}

// backlog is about what the WAL holds: its frames at the last checkpoint
// times the page size (a frame is one page and a small header).
func (d *sqliteDriver) backlog() int64 {
	return d.walFrames.Load() * pageSize
}

// flush sends the queued writes, runs of one INSERT as multi-row ones.
func (d *sqliteDriver) flush(tx *wtx) error {
	return tx.drain(func(query string, rs [][]any) error {
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
			if _, err := tx.send(d.multiRow(query, n), args...); err != nil {
				return err
			}
			rs = rs[n:]
		}
		return nil
	}, func(q queued) error {
		_, err := tx.send(q.query, q.args...)
		return err
	})
}

// maxMergedRows bounds the rows of one multi-row INSERT on SQLite.
const maxMergedRows = 64

// multiRow returns query, a one-row INSERT … VALUES (…), with n rows.
// Writer only.
func (d *sqliteDriver) multiRow(query string, n int) string {
	if n == 1 {
		return query
	}
	k := multiKey{query, n}
	if q, ok := d.multi[k]; ok {
		return q
	}
	if d.multi == nil {
		d.multi = map[multiKey]string{}
	}
	head, tuple, _ := strings.Cut(query, "VALUES")
	tuple = strings.TrimSpace(tuple)
	q := head + "VALUES " + tuple + strings.Repeat(", "+tuple, n-1)
	d.multi[k] = q
	return q
}

type multiKey struct {
	query string
	rows  int
}

// reclaim gives up to vacuumPages free pages back to the file system and
// returns how many it gave (in incremental auto-vacuum; a database made
// without it keeps its pages).
func (d *sqliteDriver) reclaim(tx *wtx) (int64, error) {
	var before, after int64
	if err := tx.queryRowText(`PRAGMA freelist_count`).Scan(&before); err != nil || before == 0 {
		return 0, err
	}
	rows, err := tx.queryText(fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, vacuumPages))
	if err != nil {
		return 0, err
	}
	for rows.Next() {
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if err := tx.queryRowText(`PRAGMA freelist_count`).Scan(&after); err != nil {
		return 0, err
	}
	return before - after, nil
}
