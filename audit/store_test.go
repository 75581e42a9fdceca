package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

var (
	vaultKey     = bytes.Repeat([]byte{7}, 32)
	pseudonymKey = bytes.Repeat([]byte{9}, 32)
)

func event(n int, subject string) *veil.Event {
	return &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate",
		Subject: subject, DedupKey: fmt.Sprint("key-", n), ReceivedAt: time.Unix(1795688100, 0).UTC(),
		Payload: []byte(fmt.Sprintf(`{"action":"hire_candidate","n":%d,"name":"Plaintext-Canary-%d"}`, n, n))}
}

func TestStore_IngestReadDedup(t *testing.T) { eachDriver(t, testIngestReadDedup) }

func testIngestReadDedup(t *testing.T, d testDB) {
	st := d.open(t)
	ctx := context.Background()
	e := event(1, "greenhouse:candidate:1")
	id, dup, err := st.IngestEvent(ctx, e, nil, veil.Drift{})
	if err != nil || dup {
		t.Fatalf("ingest: got %v dup=%v", err, dup)
	}
	got, err := st.Event(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Payload, e.Payload) || got.EventType != "hire_candidate" || got.Subject != st.SubjectHash("greenhouse:candidate:1") {
		t.Fatalf("read back: got %+v", got)
	}
	again := event(1, "greenhouse:candidate:1")
	id2, dup, err := st.IngestEvent(ctx, again, nil, veil.Drift{})
	if err != nil || !dup || id2 != id {
		t.Fatalf("duplicate: got id %s dup %v err %v, want %s true nil", id2, dup, err, id)
	}
	if _, err := st.Event(ctx, "evt_nosuch"); veil.ErrorCode(err) != veil.ENOTFOUND {
		t.Fatalf("unknown event: got %v, want not_found", err)
	}
}

// TestStore_ConcurrentChain commits from many goroutines (group commit) and
// checks the audit chain is complete, ordered and correctly hashed, also
// across a reopen.
func TestStore_ConcurrentChain(t *testing.T) { eachDriver(t, testConcurrentChain) }

func testConcurrentChain(t *testing.T, d testDB) {
	st := d.store(vaultKey, pseudonymKey)
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, _, err := st.IngestEvent(ctx, event(i, fmt.Sprint("greenhouse:candidate:", i%7)), nil, veil.Drift{}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	st.Record(&veil.AuditEntry{Action: veil.ActionRejected, Detail: veil.EBADSIGNATURE})
	st.Close()
	st = d.open(t)
	if err := st.Append(ctx, &veil.AuditEntry{Action: veil.ActionPolicyLoaded, Detail: "digest"}); err != nil {
		t.Fatal(err)
	}
	var n int64
	prev := ""
	err := st.AuditEntries(ctx, func(e *veil.AuditEntry) error {
		n++
		if e.Seq != n || e.PrevHash != prev || e.Hash != e.ComputeHash(prev) {
			return fmt.Errorf("row %d: seq %d prev %q hash %q do not chain", n, e.Seq, e.PrevHash, e.Hash)
		}
		prev = e.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 202 {
		t.Fatalf("got %d audit rows, want 202", n)
	}
	// On PostgreSQL a batch that chains commits without waiting for the
	// flush; each must have been followed by its barrier write (at least
	// one per reopen, at most one per row).
	if d.driver == "postgres" {
		if b := d.queryInt(t, `SELECT coalesce(sum(n), 0) FROM commit_barrier`); b < 2 || b > n {
			t.Fatalf("commit barriers: %d for %d chained rows", b, n)
		}
	}
}

// TestStore_NoPlaintextAtRest: the database (every SQLite file; every
// row of every PostgreSQL table) holds no payload value, subject reference
// or dedup key in plain text. Positive control: the table dump does hold
// what is stored in clear (the event type).
func TestStore_NoPlaintextAtRest(t *testing.T) { eachDriver(t, testNoPlaintextAtRest) }

func testNoPlaintextAtRest(t *testing.T, d testDB) {
	st := d.open(t)
	for i := 0; i < 20; i++ {
		d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{"name":"Plaintext-Canary-Body"}`)}
		if _, _, err := st.IngestEvent(context.Background(), event(i, "greenhouse:candidate:42"), []*veil.Delivery{d}, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
	}
	b := d.contents(t)
	if !d.holds(b, "hire_candidate") {
		t.Fatalf("the database's contents lack the event type: the search would see nothing")
	}
	for _, needle := range []string{"Plaintext-Canary", "greenhouse:candidate:42", "key-1"} {
		if d.holds(b, needle) {
			t.Errorf("the %s database holds %q in plain text", d.driver, needle)
		}
	}
}
