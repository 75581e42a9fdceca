package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// openWriterStore opens a SQLite store in a temp folder, closed after
// the test.
func openWriterStore(t *testing.T) *Store {
	t.Helper()
	st := NewStore(filepath.Join(t.TempDir(), "veil.db"), bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32))
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// holdWriter keeps the writer inside a batch until release is called, so
// the writes queued meanwhile go into the next batch together.
func holdWriter(st *Store) (release func()) {
	hold, held := make(chan struct{}), make(chan struct{})
	go st.write(context.Background(), func(*wtx) error { close(held); <-hold; return nil })
	<-held
	return func() { close(hold) }
}

// TestWriter_WebhooksFirst: with a backlog of background writes queued,
// a webhook's write is committed in the next batch, not behind them.
func TestWriter_WebhooksFirst(t *testing.T) {
	st := openWriterStore(t)
	ctx := context.Background()
	var mu sync.Mutex
	var order []string
	ran := func(name string) func(*wtx) error {
		return func(*wtx) error { mu.Lock(); order = append(order, name); mu.Unlock(); return nil }
	}
	release := holdWriter(st) // while the queues fill
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); st.writeBackground(ctx, ran("background")) }()
	}
	for len(st.bg) < 100 {
		runtime.Gosched() // until all are queued
	}
	wg.Add(1)
	go func() { defer wg.Done(); st.write(ctx, ran("webhook")) }()
	for len(st.ops) < 1 {
		runtime.Gosched()
	}
	release()
	wg.Wait()
	at := -1
	for i, o := range order {
		if o == "webhook" {
			at = i
		}
	}
	if at < 0 || at > 1 {
		t.Fatalf("the webhook's write ran after %d background writes, want it in the next batch (at most 1 before it)", at)
	}
}

// TestWriter_OneBatchSeesItsQueuedWrites: writes are queued and sent as
// multi-row INSERTs when the batch ends, so webhooks committed in one
// batch must still see each other: a second copy of an event is its
// duplicate, and a webhook for a change reconciliation reported earlier in
// the same batch does not leave a second time.
func TestWriter_OneBatchSeesItsQueuedWrites(t *testing.T) {
	st := openWriterStore(t)
	ctx := context.Background()
	now := time.Now()
	event := func(key, stage string, reconciled bool) *veil.Event {
		return &veil.Event{Source: "lever", Vendor: "lever", EventType: "candidateStageChange", Subject: "lever:candidate:1",
			DedupKey: key, ReceivedAt: now, Payload: []byte(`{"stage":"` + stage + `"}`), Reconciled: reconciled,
			App: &veil.AppState{ID: "app-1", Stage: stage, Outcome: "active"}}
	}
	type result struct {
		id  string
		dup bool
		err error
	}
	// inOneBatch ingests the events in one batch, in order.
	inOneBatch := func(events ...*veil.Event) []result {
		release := holdWriter(st)
		results := make([]chan result, len(events))
		for i, e := range events {
			results[i] = make(chan result, 1)
			go func() {
				id, dup, err := st.IngestEvent(ctx, e, []*veil.Delivery{{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{}`)}}, veil.Drift{})
				results[i] <- result{id, dup, err}
			}()
			for len(st.ops) < i+1 {
				runtime.Gosched() // queued in this order
			}
		}
		release()
		var got []result
		for _, r := range results {
			res := <-r
			if res.err != nil {
				t.Fatal(res.err)
			}
			got = append(got, res)
		}
		return got
	}

	got := inOneBatch(event("k1", "screen", false), event("k1", "screen", false))
	if got[0].dup || !got[1].dup || got[1].id != got[0].id {
		t.Fatalf("got %+v, want the second a duplicate of the first", got)
	}
	var events int
	st.rdb.QueryRow(`SELECT count(*) FROM events`).Scan(&events)
	if events != 1 {
		t.Fatalf("stored %d events, want 1", events)
	}

	got = inOneBatch(event("r1", "onsite", true), event("k2", "onsite", false))
	if got[0].dup || got[1].dup {
		t.Fatalf("got %+v, want both stored", got)
	}
	ds, err := st.EventDeliveries(ctx, got[1].id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Status != veil.DeliveryFiltered || ds[0].Detail != DetailReconciled {
		t.Fatalf("the webhook's delivery: %+v, want filtered as already reconciled in the same batch", ds[0])
	}
}

// TestWriter_FailedQueuedWriteIsNotLost: a queued write that fails when a
// later op's read sends the queue (SQLite goes on with the transaction)
// fails its own op, and commits nothing of it; the other op still commits.
func TestWriter_FailedQueuedWriteIsNotLost(t *testing.T) {
	st := openWriterStore(t)
	ctx := context.Background()
	release := holdWriter(st)
	bad, good := make(chan error, 1), make(chan error, 1)
	go func() {
		bad <- st.write(ctx, func(tx *wtx) error {
			tx.queue(`INSERT INTO meta (key, value) VALUES (?, ?)`, "twice", []byte{1})
			tx.queue(`INSERT INTO meta (key, value) VALUES (?, ?)`, "twice", []byte{2})
			return nil
		})
	}()
	for len(st.ops) < 1 {
		runtime.Gosched()
	}
	go func() {
		good <- st.write(ctx, func(tx *wtx) error {
			var n int
			if err := tx.queryRow(`SELECT count(*) FROM meta`).Scan(&n); err != nil {
				return err
			}
			tx.queue(`INSERT INTO meta (key, value) VALUES (?, ?)`, "once", []byte{3})
			return nil
		})
	}()
	for len(st.ops) < 2 {
		runtime.Gosched()
	}
	release()
	if err := <-bad; err == nil {
		t.Fatal("a write that broke a unique key was reported committed")
	} else if !strings.Contains(err.Error(), "queued INSERT INTO meta:") {
		t.Fatalf("the failure does not name the statement queued: %v", err)
	}
	if err := <-good; err != nil {
		t.Fatal(err)
	}
	var keys []string
	rows, err := st.rdb.QueryContext(context.Background(), `SELECT key FROM meta WHERE key IN ('twice', 'once') ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys = append(keys, k)
	}
	rows.Close()
	if len(keys) != 1 || keys[0] != "once" {
		t.Fatalf("meta keys %v, want only the good write's", keys)
	}
}

// TestClaim_SizesSharePreparedStatements: claims of any size use a few
// prepared statements (their id lists padded to a power of two), and a
// padded list claims each delivery once.
func TestClaim_SizesSharePreparedStatements(t *testing.T) {
	st := openWriterStore(t)
	ctx := context.Background()
	at := time.Unix(1795688100, 0).UTC()
	for i := range 40 {
		e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate",
			Subject: fmt.Sprint("greenhouse:candidate:", i), DedupKey: fmt.Sprint("key-", i), ReceivedAt: at,
			Payload: []byte(`{"action":"hire_candidate"}`)}
		d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{}`)}
		if _, _, err := st.IngestEvent(ctx, e, []*veil.Delivery{d}, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, n := range []int{1, 2, 3, 5, 6, 7, 9, 7} { // padded: 1, 2, 4, 8, 8, 8, 16, 8
		ds, err := st.ClaimDeliveries(ctx, at.Add(time.Second), map[string]int{"hris": n}, time.Minute)
		if err != nil || len(ds) != n {
			t.Fatalf("claim of %d: %d deliveries, %v", n, len(ds), err)
		}
		for _, d := range ds {
			if seen[d.ID] {
				t.Fatalf("%s claimed twice", d.ID)
			}
			seen[d.ID] = true
		}
	}
	// The writer prepares after each batch what it saw first in it, so a
	// write of its own sees every claim's statements.
	var updates int
	if err := st.write(ctx, func(*wtx) error {
		for q := range st.stmts {
			if strings.HasPrefix(q, "UPDATE deliveries SET status = 'sending'") {
				updates++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if updates != 5 {
		t.Fatalf("%d prepared claim updates for 8 claims of 7 sizes, want 5 (1, 2, 4, 8 and 16 ids)", updates)
	}
}

// TestRetention_OwnTimeLeavesOutTheBatchsWrites: a retention chunk that
// shares a batch with webhooks starts its clock after their queued
// inserts are sent, so the pause after it follows its own cost (timing
// the webhooks' inserts with it made chunk sizes chosen by time shrink
// to nothing while the batch's inserts stayed as they were).
func TestRetention_OwnTimeLeavesOutTheBatchsWrites(t *testing.T) {
	st := openWriterStore(t)
	ctx := context.Background()
	release := holdWriter(st)
	ingested := make(chan error, 1)
	go func() {
		e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate", Subject: "greenhouse:candidate:1",
			DedupKey: "k1", ReceivedAt: time.Now(), Payload: []byte(`{}`)}
		_, _, err := st.IngestEvent(ctx, e, []*veil.Delivery{{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{}`)}}, veil.Drift{})
		ingested <- err
	}()
	for len(st.ops) < 1 {
		runtime.Gosched()
	}
	queuedAtStart, events := -1, -1
	var own time.Duration
	done := make(chan error, 1)
	// Queued as a webhook's write, so the batch runs it right after the
	// webhook (the writer may take a background write first).
	go func() {
		done <- st.write(ctx, ownTime(&own, func(tx *wtx) error {
			queuedAtStart = len(tx.queued)
			return tx.queryRow(`SELECT count(*) FROM events`).Scan(&events)
		}))
	}()
	for len(st.ops) < 2 {
		runtime.Gosched()
	}
	release()
	if err := <-ingested; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if queuedAtStart != 0 || events != 1 {
		t.Fatalf("the chunk began with %d queued writes and saw %d events; want 0 queued (sent before its clock starts) and the webhook's event", queuedAtStart, events)
	}
	if own <= 0 {
		t.Fatalf("own time %v, want it measured", own)
	}
}

// TestRetention_ChunksFollowTheirTime: a chunk of events that took longer
// than chunkBudget halves the next, one that took under a quarter of it
// doubles it, within [minEventChunk, purgeEventChunk].
func TestRetention_ChunksFollowTheirTime(t *testing.T) {
	for _, c := range []struct {
		size int
		own  time.Duration
		want int
	}{
		{purgeEventChunk, 90 * time.Millisecond, purgeEventChunk / 2},
		{purgeEventChunk / 2, 30 * time.Millisecond, purgeEventChunk / 4},
		{minEventChunk, 200 * time.Millisecond, minEventChunk},
		{minEventChunk + 1, 200 * time.Millisecond, minEventChunk},
		{50, 2 * time.Millisecond, 100},
		{150, 2 * time.Millisecond, purgeEventChunk},
		{purgeEventChunk, time.Millisecond, purgeEventChunk},
		{100, chunkBudget / 2, 100},
		{100, chunkBudget, 100},
	} {
		if got := nextEventChunk(c.size, c.own); got != c.want {
			t.Errorf("after %d events in %v: next chunk %d, want %d", c.size, c.own, got, c.want)
		}
	}
}

// TestDrain_UpsertsDoNotSplitRuns: an event's application-state upsert
// between its INSERTs no longer ends the run, so a batch's events still go
// out as one multi-row INSERT; a table's writes keep their order, and any
// write but an INSERT … VALUES still sees everything queued before it.
func TestDrain_UpsertsDoNotSplitRuns(t *testing.T) {
	const (
		events = `INSERT INTO events (id) VALUES (?)`
		upsert = `INSERT INTO app_states (app) VALUES (?) ON CONFLICT (app) DO UPDATE SET app = excluded.app`
		plain  = `INSERT INTO app_states (app) VALUES (?)`
		update = `UPDATE deliveries SET status = ? WHERE id = ?`
		copied = `INSERT INTO meta (key) SELECT key FROM meta WHERE key = ?`
	)
	tx := &wtx{}
	for _, q := range []queued{
		{events, []any{"e1"}}, {upsert, []any{"a1"}}, {events, []any{"e2"}}, {upsert, []any{"a1"}}, {events, []any{"e3"}},
		{plain, []any{"a2"}}, // another statement into app_states: after the upserts, so a new run
		{events, []any{"e4"}},
		{update, []any{"sent", "d1"}}, // sees e1…e4 and the upserts
		{events, []any{"e5"}}, {copied, []any{"k"}}, {events, []any{"e6"}},
	} {
		tx.queue(q.query, q.args...)
	}
	var got []string
	err := tx.drain(func(query string, rows [][]any) error {
		got = append(got, fmt.Sprintf("%s×%d %v", strings.Fields(query)[2], len(rows), rows))
		return nil
	}, func(q queued) error {
		verb, table := strings.Fields(q.query)[0], strings.Fields(q.query)[1]
		if verb == "INSERT" {
			table = strings.Fields(q.query)[2]
		}
		got = append(got, fmt.Sprintf("%s %s %v", verb, table, q.args))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"events×3 [[e1] [e2] [e3]]", "INSERT app_states [a1]", "INSERT app_states [a1]",
		"app_states×1 [[a2]]", "events×1 [[e4]]",
		"UPDATE deliveries [sent d1]",
		"events×1 [[e5]]", "INSERT meta [k]", "events×1 [[e6]]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(tx.queued) != 0 {
		t.Fatalf("%d writes left queued", len(tx.queued))
	}
}

// TestWriter_StatementJournalInMemory: a statement inside the writer's
// transaction that may fail half-way (a multi-row write with a unique
// index, as every merged INSERT is) keeps the pages it changes in a
// statement journal. SQLite spills that journal to a temporary file past
// 64 KiB unless temp_store is MEMORY; the writer's batches did, and its
// writes were a seventh of the writer's CPU under load.
func TestWriter_StatementJournalInMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/fd")
	}
	st := openWriterStore(t)
	var spilled []string
	err := st.write(context.Background(), func(tx *wtx) error {
		for _, q := range []string{
			`CREATE TABLE spill (k INTEGER PRIMARY KEY, v BLOB UNIQUE)`,
			`WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 200) INSERT INTO spill (k, v) SELECT k, randomblob(4000) FROM n`,
			`UPDATE spill SET v = randomblob(4000)`, // every page it had: ~800 KiB to journal
		} {
			if _, err := tx.execText(q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return err
		}
		for _, fd := range fds {
			// SQLite unlinks a temporary file as soon as it opens it.
			if to, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasSuffix(to, " (deleted)") {
				spilled = append(spilled, to)
			}
		}
		_, err = tx.execText(`DROP TABLE spill`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(spilled) > 0 {
		t.Fatalf("the writer's statement journal spilled to %q, want it in memory", spilled)
	}
}

// TestRetention_ChunksGiveBackTheirPages: a chunk of the purge gives the
// pages it freed back to the file system in its own transaction, so the
// free list never holds all a purge frees. Given back in one vacuum at
// the end, they were half of a large purge's CPU: SQLite looks up every
// page it moves in the free list.
func TestRetention_ChunksGiveBackTheirPages(t *testing.T) {
	st := openWriterStore(t)
	ctx := context.Background()
	at := time.Unix(1795688100, 0)
	payload := []byte(`{"blob":"` + strings.Repeat("x", 8<<10) + `"}`)
	for i := range 300 {
		e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate", Subject: fmt.Sprint("greenhouse:candidate:", i),
			DedupKey: fmt.Sprint(i), ReceivedAt: at, Payload: payload}
		if _, _, err := st.IngestEvent(ctx, e, nil, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
	}
	r := veil.PurgeResult{Expired: map[string]int64{}}
	n, _, err := st.purgeEvents(ctx, at.Add(time.Hour), 200, &r)
	if err != nil || n != 200 {
		t.Fatalf("one chunk: %d payloads, %v; want 200", n, err)
	}
	var free int64
	if err := st.rdb.QueryRow(`PRAGMA freelist_count`).Scan(&free); err != nil {
		t.Fatal(err)
	}
	// 200 payloads of 8 KiB took some 400 pages.
	if free != 0 || r.Pages < 400 {
		t.Fatalf("after one chunk: %d pages on the free list, %d given back; want none left, at least 400 given back", free, r.Pages)
	}
}
