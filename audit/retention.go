package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// Retention works in chunks, each its own small transaction queued on the
// writer between the batches of webhooks, so a purge never holds the write
// lock for long: ingest goes on while it runs.
const (
	purgeEventChunk = 200 // events per transaction at most (see nextEventChunk)
	minEventChunk   = 25  // and at least
	chunkBudget     = 25 * time.Millisecond
	purgeAuditChunk = 5000 // audit rows per transaction
	purgeKeyChunk   = 2000 // data keys per transaction
	// Pages a chunk gives back at most (4 MiB): what it freed, 0.7-1.4
	// MiB for 200 events (see chunk). Given back in one vacuum after the
	// purge, the pages were half of its CPU: SQLite looks up each page it
	// moves in the free list, and that list held all the purge had freed.
	vacuumPages = 1024
	// Between two chunks retention pauses: paceShare times what the
	// chunk's own statements took, and at least until paceInterval has
	// passed since the chunk began, so retention takes at most a fifth of
	// the writer's time and writes its pages at a pace the checkpointer
	// copies without holding up the commits beside it. Chunks 5 ms apart
	// wrote 70–100 MiB/s to the WAL while the purges of the 15-minute soak
	// ran (a chunk of 200 events writes 0.7–1.4 MiB), and the
	// checkpointer's copies of them made the webhooks' commits wait
	// 60–130 ms for the disk. While the WAL is past walLimit retention
	// also waits (up to paceWait) for the checkpointer: a purge that wrote
	// its chunks back to back grew the WAL by a hundred megabytes, and the
	// checkpoint that then emptied it held ingest back for a third of a
	// second.
	paceShare    = 4
	paceInterval = 50 * time.Millisecond
	pacePoll     = 5 * time.Millisecond
	paceWait     = 3 * time.Second
)

// pace runs between two chunks of retention work whose own statements
// took own: see paceShare.
func (s *Store) pace(ctx context.Context, own time.Duration) error {
	pause := max(paceInterval-own, paceShare*own)
	deadline := time.Now().Add(pause + paceWait)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		if s.drv.backlog() <= walLimit || time.Now().After(deadline) {
			return nil
		}
		pause = pacePoll
	}
}

// chunk runs one chunk of retention work as a background write, gives
// the pages it freed back to the file system in the same transaction
// (counted in r.Pages), and returns the time its own statements took,
// the vacuum's included (see ownTime).
func (s *Store) chunk(ctx context.Context, r *veil.PurgeResult, fn func(tx *wtx) error) (time.Duration, error) {
	var own time.Duration
	var given int64
	err := s.writeBackground(ctx, ownTime(&own, func(tx *wtx) error {
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		if given, err = s.drv.reclaim(tx); err != nil {
			return fmt.Errorf("give back free pages: %w", err)
		}
		return nil
	}))
	if err == nil {
		r.Pages += given
	}
	return own, err
}

// ownTime runs fn after the statements the batch queued before it (the
// webhooks' inserts), so own is the time of fn's own statements alone:
// what retention adds to the batch it shares.
func ownTime(own *time.Duration, fn func(tx *wtx) error) func(tx *wtx) error {
	return func(tx *wtx) error {
		tx.flush() // a failure is kept in tx.err, and the batch retried op by op
		start := time.Now()
		err := fn(tx)
		*own = time.Since(start)
		return err
	}
}

// Purge applies retention at now: payloads (and the outbound bodies of their
// deliveries) received before now-payloadTTL are deleted, and the data keys
// of the hours they were sealed in; a delivery still waiting for its payload
// is given up with a dead audit row (expired); audit rows older than
// now-auditTTL are deleted from the start of the chain, behind an anchor so
// verification still passes, and so are the rows of events received
// before then, with their deliveries (purgeRows); the pages freed are
// given back to the file system. One purged row records the counts. With
// dryRun nothing changes and the counts say what would go.
//
// One purge runs at a time per store (a second waits for the first), and
// on PostgreSQL one per database: a replica that finds another applying
// retention returns at once with Elsewhere set.
func (s *Store) Purge(ctx context.Context, now time.Time, payloadTTL, auditTTL time.Duration, dryRun bool) (veil.PurgeResult, error) {
	s.purgeMu.Lock()
	defer s.purgeMu.Unlock()
	payloadCut := now.Add(-payloadTTL)
	auditCut := now.Add(-auditTTL).UTC().Format(veil.AuditTimeFormat)
	rowCut := now.Add(-auditTTL)
	if dryRun {
		return s.purgeCounts(ctx, payloadCut, auditCut, rowCut)
	}
	var r veil.PurgeResult
	ran, err := s.drv.exclusive(ctx, s, lockRetention, func() error {
		var err error
		r, err = s.purge(ctx, now, payloadCut, auditCut, rowCut)
		return err
	})
	if err == nil && !ran {
		r.Elsewhere = true
	}
	return r, err
}

func (s *Store) purge(ctx context.Context, now, payloadCut time.Time, auditCut string, rowCut time.Time) (veil.PurgeResult, error) {
	r := veil.PurgeResult{Expired: map[string]int64{}}
	err := s.inChunks(ctx, purgeEventChunk, true, func(size int) (int, time.Duration, error) {
		return s.purgeEvents(ctx, payloadCut, size, &r)
	})
	if err == nil {
		err = s.purgeKeys(ctx, payloadCut, &r)
	}
	if err == nil {
		err = s.inChunks(ctx, purgeAuditChunk, false, func(int) (int, time.Duration, error) {
			n, own, err := s.purgeAudit(ctx, auditCut, &r)
			return int(n), own, err
		})
	}
	if err == nil {
		err = s.inChunks(ctx, purgeEventChunk, true, func(size int) (int, time.Duration, error) {
			return s.purgeRows(ctx, rowCut, size, &r)
		})
	}
	if err != nil {
		return r, err
	}
	expired := int64(0)
	for _, n := range r.Expired {
		expired += n
	}
	if r.Payloads+r.DeliveryBodies+r.DataKeys+r.AuditRows+r.Events+r.Deliveries+expired == 0 {
		return r, nil // nothing removed: no row every few minutes saying so
	}
	err = s.write(ctx, func(tx *wtx) error {
		return s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionPurged, Actor: "veil", Outcome: "purged",
			Detail: fmt.Sprintf("payloads=%d delivery_bodies=%d data_keys=%d audit_rows=%d events=%d deliveries=%d deliveries_expired=%d",
				r.Payloads, r.DeliveryBodies, r.DataKeys, r.AuditRows, r.Events, r.Deliveries, expired)})
	})
	if err != nil {
		return r, err
	}
	return r, s.vacuum(ctx, &r)
}

// inChunks runs step, one chunk of retention work asking for up to size
// rows, until a chunk finds fewer than it asked for, pacing between
// chunks; with resize each next size follows the last chunk's own time
// (nextEventChunk).
func (s *Store) inChunks(ctx context.Context, size int, resize bool, step func(size int) (int, time.Duration, error)) error {
	for {
		n, own, err := step(size)
		if err != nil || n < size {
			return err
		}
		if resize {
			size = nextEventChunk(size, own)
		}
		if err := s.pace(ctx, own); err != nil {
			return err
		}
	}
}

// nextEventChunk sizes retention's next chunk of events by the time the
// statements of the last one took (size events): halved past chunkBudget,
// doubled under a quarter of it. A purge reads the pages of events
// minutes old, which in the 15-minute soak came from the disk (reads of
// 40–65 MB/s while purges ran): there chunks of 200 took 20–90 ms; the
// same chunks of a copy of that file, run alone, 5 ms.
func nextEventChunk(size int, own time.Duration) int {
	switch {
	case own > chunkBudget:
		return max(size/2, minEventChunk)
	case own < chunkBudget/4:
		return min(size*2, purgeEventChunk)
	}
	return size
}

// purgeEvents purges the payloads of up to size events received before
// cut, in one transaction, and returns how many it found and the
// time its statements took.
func (s *Store) purgeEvents(ctx context.Context, cut time.Time, size int, r *veil.PurgeResult) (int, time.Duration, error) {
	var n int
	own, err := s.chunk(ctx, r, func(tx *wtx) error {
		var cursor int64
		if err := tx.queryRow(`SELECT coalesce((SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'retention_cursor'), 0)`).Scan(&cursor); err != nil {
			return fmt.Errorf("read retention cursor: %w", err)
		}
		rows, err := tx.queryText(`SELECT id, received_at FROM events WHERE received_at >= ? AND received_at < ?
			AND `+payloadHeld("events")+` ORDER BY received_at LIMIT ?`, cursor, cut.UnixNano(), size)
		if err != nil {
			return fmt.Errorf("find expired payloads: %w", err)
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id, &cursor); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if n = len(ids); n == 0 {
			return rows.Err()
		}
		in := "(?" + strings.Repeat(", ?", n-1) + ")"
		expired, err := s.expireWaiting(tx, `d.event_id IN `+in, ids, "expired", "expired: the payload passed retention before it could be delivered")
		if err != nil {
			return err
		}
		res, err := tx.execText(`DELETE FROM outbound_bodies WHERE delivery_id IN
			(SELECT id FROM deliveries WHERE event_id IN `+in+`)`, ids...)
		if err != nil {
			return fmt.Errorf("purge delivery bodies: %w", err)
		}
		bodies, _ := res.RowsAffected()
		if _, err := tx.execText(`DELETE FROM payloads WHERE event_id IN `+in, ids...); err != nil {
			return fmt.Errorf("purge payloads: %w", err)
		}
		if _, err := tx.execText(`UPDATE events SET upstream = NULL WHERE upstream IS NOT NULL AND id IN `+in, ids...); err != nil {
			return fmt.Errorf("purge upstream ids: %w", err)
		}
		if _, err := tx.execText(`INSERT INTO meta (key, value) VALUES ('retention_cursor', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fmt.Sprint(cursor)); err != nil {
			return fmt.Errorf("write retention cursor: %w", err)
		}
		// Counted only once the transaction is sure to commit its own part.
		r.Payloads += int64(n)
		r.DeliveryBodies += bodies
		for d, c := range expired {
			r.Expired[d] += c
		}
		return nil
	})
	return n, own, err
}

// oldRows selects the events received before the cut whose rows
// retention deletes: every one but those with a delivery still waiting
// (pending, being sent, or held for review). Retention gives those up
// with their payload, before this cut (the config keeps retention.audit
// at least retention.payload), so what it keeps is an attempt in flight
// while the purge runs; its event goes at the next purge.
const oldRows = `FROM events e WHERE e.received_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries w
	WHERE w.event_id = e.id AND w.status IN ('pending', 'sending', 'held'))`

// purgeRows deletes, in one transaction, the rows of up to size events
// received before cut (oldRows) and of their deliveries, and returns how
// many events it found and the time its statements took (chunks sized as
// purgeEvents' are).
// Past retention.audit the audit rows that named them are gone, and the
// rows themselves — keyed subject hashes, dedup digests, event types,
// statuses and paths, never a value — would otherwise outlive the log
// and grow the file with every webhook. A lookup of such an event
// answers 404, as for an id never seen, and the ATS sending the same
// event again a year later would have it accepted as new.
func (s *Store) purgeRows(ctx context.Context, cut time.Time, size int, r *veil.PurgeResult) (int, time.Duration, error) {
	var n int
	own, err := s.chunk(ctx, r, func(tx *wtx) error {
		rows, err := tx.queryText(`SELECT e.id `+oldRows+` ORDER BY e.received_at LIMIT ?`, cut.UnixNano(), size)
		if err != nil {
			return fmt.Errorf("find expired events: %w", err)
		}
		found, err := readStrings(rows)
		if n = len(found); n == 0 || err != nil {
			return err
		}
		ids := anys(found)
		in := "(?" + strings.Repeat(", ?", n-1) + ")"
		var deliveries int64
		for _, d := range []struct {
			query string
			count *int64
		}{
			{`DELETE FROM outbound_bodies WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN ` + in + `)`, nil},
			{`DELETE FROM delivery_fields WHERE id IN (SELECT id FROM deliveries WHERE event_id IN ` + in + `)`, nil},
			{`DELETE FROM deliveries WHERE event_id IN ` + in, &deliveries},
			{`DELETE FROM payloads WHERE event_id IN ` + in, nil},
			{`DELETE FROM events WHERE id IN ` + in, nil},
		} {
			res, err := tx.execText(d.query, ids...)
			if err != nil {
				return fmt.Errorf("purge expired events: %w", err)
			}
			if d.count != nil {
				*d.count, _ = res.RowsAffected()
			}
		}
		r.Events += int64(n)
		r.Deliveries += deliveries
		return nil
	})
	return n, own, err
}

// expireWaiting gives up the deliveries matching where (over deliveries d
// joined with events e) that wait: pending, or claimed by a process whose
// lease has ended. Each gets its dead audit row saying why; it returns how
// many per destination. An attempt in flight (a live lease) is left to
// finish and record its own outcome, so no delivery ends twice; if it is
// to be retried, the body it would need is gone, and the next claim gives
// it up.
func (s *Store) expireWaiting(tx *wtx, where string, args []any, outcome, detail string) (map[string]int64, error) {
	args = append([]any{s.Now().UnixNano()}, args...)
	rows, err := tx.queryText(`SELECT d.id, d.destination, d.attempts, d.subject, d.event_id, e.source, e.event_type
		FROM deliveries d JOIN events e ON e.id = d.event_id
		WHERE (d.status IN ('pending', 'held') OR (d.status = 'sending' AND d.next_attempt_at <= ?)) AND `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("find waiting deliveries: %w", err)
	}
	var ds []*veil.Delivery
	for rows.Next() {
		d := &veil.Delivery{}
		if err := rows.Scan(&d.ID, &d.Destination, &d.Attempts, &d.Subject, &d.EventID, &d.Source, &d.EventType); err != nil {
			rows.Close()
			return nil, err
		}
		ds = append(ds, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	now := s.Now()
	for _, d := range ds {
		if _, err := tx.exec(`UPDATE deliveries SET status = 'dead', detail = ?, next_attempt_at = 0, updated_at = ?, claim = '' WHERE id = ?`,
			detail, now.UnixNano(), d.ID); err != nil {
			return nil, fmt.Errorf("give up delivery: %w", err)
		}
		if _, ok := tx.claims[d.ID]; ok {
			tx.claims[d.ID] = claimState{status: veil.DeliveryDead}
		}
		if err := s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionDead, Actor: "veil", Source: d.Source,
			EventType: d.EventType, EventID: d.EventID, Destination: d.Destination, Subject: d.Subject,
			Outcome: outcome, Attempt: d.Attempts, Detail: detail}); err != nil {
			return nil, err
		}
		out[d.Destination]++
	}
	return out, nil
}

// GiveUpRemoved gives up the waiting deliveries of destinations that are
// no longer configured (they would never be claimed), each with a dead
// audit row, and returns how many per destination. serve calls it at start.
func (s *Store) GiveUpRemoved(ctx context.Context, configured []string) (map[string]int64, error) {
	var out map[string]int64
	err := s.write(ctx, func(tx *wtx) error {
		args := make([]any, len(configured))
		for i, d := range configured {
			args[i] = d
		}
		where := "1 = 1"
		if len(args) > 0 {
			where = "d.destination NOT IN (?" + strings.Repeat(", ?", len(args)-1) + ")"
		}
		var err error
		out, err = s.expireWaiting(tx, where, args, "destination_removed", "destination no longer configured")
		return err
	})
	return out, err
}

// purgeKeys deletes the data keys of the hours whose events are all past
// cut, in chunks, and the keys made before per-hour keys (epoch 0) that no
// remaining payload needs.
func (s *Store) purgeKeys(ctx context.Context, cut time.Time, r *veil.PurgeResult) error {
	for {
		var n int64
		own, err := s.chunk(ctx, r, func(tx *wtx) error {
			res, err := tx.execText(`DELETE FROM data_keys WHERE (epoch, subject) IN
				(SELECT epoch, subject FROM data_keys WHERE epoch > 0 AND epoch < ? LIMIT ?)`, epochOf(cut), purgeKeyChunk)
			if err != nil {
				return fmt.Errorf("purge data keys: %w", err)
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return err
		}
		r.DataKeys += n
		if n < purgeKeyChunk {
			break
		}
		if err := s.pace(ctx, own); err != nil {
			return err
		}
	}
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.execText(`DELETE FROM data_keys WHERE epoch = 0 AND subject NOT IN (SELECT subject FROM events
			WHERE key_epoch = 0 AND ` + payloadHeld("events") + `)`)
		if err != nil {
			return fmt.Errorf("purge data keys: %w", err)
		}
		n, _ := res.RowsAffected()
		r.DataKeys += n
		return nil
	})
}

// purgeAudit deletes up to purgeAuditChunk audit rows from the start of
// the chain, stopping before the first row at or after cut, and moves the
// anchor to the last one deleted; and the time its statements took.
func (s *Store) purgeAudit(ctx context.Context, cut string, r *veil.PurgeResult) (int64, time.Duration, error) {
	var n int64
	own, err := s.chunk(ctx, r, func(tx *wtx) error {
		var young sql.NullInt64
		if err := tx.queryRowText(`SELECT min(seq) FROM audit WHERE time >= ?`, cut).Scan(&young); err != nil {
			return fmt.Errorf("find purgeable audit rows: %w", err)
		}
		upto := int64(1<<63 - 1)
		if young.Valid {
			upto = young.Int64
		}
		var last int64
		var hash string
		err := tx.queryRowText(`SELECT seq, hash FROM (SELECT seq, hash FROM audit WHERE seq < ? ORDER BY seq LIMIT ?)
			AS chunk ORDER BY seq DESC LIMIT 1`, upto, purgeAuditChunk).Scan(&last, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("find purgeable audit rows: %w", err)
		}
		res, err := tx.execText(`DELETE FROM audit WHERE seq <= ?`, last)
		if err != nil {
			return fmt.Errorf("purge audit rows: %w", err)
		}
		n, _ = res.RowsAffected()
		if _, err := tx.execText(`INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, last, hash); err != nil {
			return fmt.Errorf("write audit anchor: %w", err)
		}
		r.AuditRows += n
		return nil
	})
	return n, own, err
}

// vacuum gives back the free pages the chunks left (more than
// vacuumPages in one, or a free list from before), a chunk at a time, so
// the file stays in proportion to what retention keeps.
func (s *Store) vacuum(ctx context.Context, r *veil.PurgeResult) error {
	for {
		before := r.Pages
		own, err := s.chunk(ctx, r, func(*wtx) error { return nil })
		if err != nil {
			return err
		}
		if r.Pages == before { // nothing more to give back (or not in incremental mode)
			return nil
		}
		if err := s.pace(ctx, own); err != nil {
			return err
		}
	}
}

// purgeCounts says what a purge at these cuts would remove, reading only.
func (s *Store) purgeCounts(ctx context.Context, payloadCut time.Time, auditCut string, rowCut time.Time) (veil.PurgeResult, error) {
	r := veil.PurgeResult{Expired: map[string]int64{}}
	q := func(dst *int64, query string, args ...any) error {
		return s.rdb.QueryRowContext(ctx, query, args...).Scan(dst)
	}
	cut := payloadCut.UnixNano()
	for _, c := range []struct {
		dst   *int64
		query string
		args  []any
	}{
		{&r.Payloads, `SELECT count(*) FROM events WHERE received_at < ? AND ` + payloadHeld("events"), []any{cut}},
		{&r.DeliveryBodies, `SELECT count(*) FROM outbound_bodies WHERE delivery_id IN (SELECT d.id FROM deliveries d
			JOIN events e ON e.id = d.event_id WHERE e.received_at < ? AND ` + payloadHeld("e") + `)`, []any{cut}},
		{&r.DataKeys, `SELECT count(*) FROM data_keys WHERE epoch > 0 AND epoch < ?`, []any{epochOf(payloadCut)}},
		{&r.AuditRows, `SELECT count(*) FROM audit WHERE seq < coalesce((SELECT min(seq) FROM audit WHERE time >= ?), (SELECT max(seq) + 1 FROM audit))`, []any{auditCut}},
		{&r.Events, `SELECT count(*) ` + oldRows, []any{rowCut.UnixNano()}},
		{&r.Deliveries, `SELECT count(*) FROM deliveries WHERE event_id IN (SELECT e.id ` + oldRows + `)`, []any{rowCut.UnixNano()}},
	} {
		if err := q(c.dst, c.query, c.args...); err != nil {
			return r, fmt.Errorf("count what retention would purge: %w", err)
		}
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.destination, count(*) FROM deliveries d JOIN events e ON e.id = d.event_id
		WHERE d.status IN ('pending', 'sending', 'held') AND e.received_at < ? AND `+payloadHeld("e")+`
		GROUP BY d.destination`, cut)
	if err != nil {
		return r, fmt.Errorf("count waiting deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var n int64
		if err := rows.Scan(&d, &n); err != nil {
			return r, err
		}
		r.Expired[d] = n
	}
	return r, rows.Err()
}

// readStrings reads the one text column of rows (ids, mostly), closes
// them and returns what they held.
func readStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// anys returns ss as query arguments.
func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func dedupStrings(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
