package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/internal/storetest"
	"github.com/veilhq/veil/internal/testenv"
)

// TestClaimLease: a claim whose process died (it never finished the
// delivery) is claimed again once its lease ends, not before, and without
// a restart.
func TestClaimLease(t *testing.T) { eachDriver(t, testClaimLease) }

func testClaimLease(t *testing.T, db testDB) {
	st := db.open(t)
	ctx := context.Background()
	d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{"a":1}`)}
	e := event(1, "greenhouse:candidate:1")
	if _, _, err := st.IngestEvent(ctx, e, []*veil.Delivery{d}, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	t0 := e.ReceivedAt.Add(time.Second)
	first, err := st.ClaimDeliveries(ctx, t0, map[string]int{"hris": 10}, time.Minute)
	if err != nil || len(first) != 1 {
		t.Fatalf("first claim: %d, %v", len(first), err)
	}
	if again, _ := st.ClaimDeliveries(ctx, t0.Add(59*time.Second), map[string]int{"hris": 10}, time.Minute); len(again) != 0 {
		t.Fatalf("claimed again within the lease: %d", len(again))
	}
	again, err := st.ClaimDeliveries(ctx, t0.Add(61*time.Second), map[string]int{"hris": 10}, time.Minute)
	if err != nil || len(again) != 1 || again[0].ID != d.ID || !bytes.Equal(again[0].Body, d.Body) {
		t.Fatalf("after the lease: %d, %v; want the same delivery back with its body", len(again), err)
	}
}

// TestPurge_ExpiredDeliveriesEndLoudly: a delivery still waiting when its
// payload passes retention ends dead with reason expired, has its audit
// row, is counted, shows in the dead-letter inbox, and cannot be replayed.
func TestPurge_ExpiredDeliveriesEndLoudly(t *testing.T) {
	eachDriver(t, testExpiredDeliveriesEndLoudly)
}

func testExpiredDeliveriesEndLoudly(t *testing.T, db testDB) {
	st := db.open(t)
	ctx := context.Background()
	for i := 0; i < 450; i++ { // more than one chunk
		e := event(i, fmt.Sprint("greenhouse:candidate:", i))
		ds := []*veil.Delivery{{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{}`)},
			{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{}`)}}
		if _, _, err := st.IngestEvent(ctx, e, ds, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Unix(1795688100, 0).Add(73 * time.Hour)
	dry, err := st.Purge(ctx, now, 72*time.Hour, 8760*time.Hour, true)
	if err != nil || dry.Payloads != 450 || dry.Expired["hris"] != 450 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	r, err := st.Purge(ctx, now, 72*time.Hour, 8760*time.Hour, false)
	if err != nil || r.Payloads != 450 || r.Expired["hris"] != 450 || r.Expired["bi"] != 450 || r.DataKeys != 450 {
		t.Fatalf("purge: %+v %v", r, err)
	}
	dead, _ := st.Deliveries(ctx, veil.DeliveryDead, 2000)
	if len(dead) != 900 || !strings.HasPrefix(dead[0].Detail, "expired") {
		t.Fatalf("dead-letter inbox: %d rows, want 900 with reason expired", len(dead))
	}
	rows := 0
	st.AuditEntries(ctx, func(e *veil.AuditEntry) error {
		if e.Action == veil.ActionDead && e.Outcome == "expired" {
			rows++
		}
		return nil
	})
	if rows != 900 {
		t.Fatalf("%d dead rows with outcome expired, want 900", rows)
	}
	if err := st.ReplayDelivery(ctx, dead[0], &veil.Delivery{Status: veil.DeliveryPending, Body: []byte(`{}`)}, "admin"); veil.ErrorCode(err) != veil.EGONE {
		t.Fatalf("replay of an expired delivery: %v, want gone", err)
	}
	if n, err := st.Verify(ctx, nil); err != nil || n == 0 {
		t.Fatalf("verify: %d %v", n, err)
	}
	// A second run finds nothing left to do.
	if r, err := st.Purge(ctx, now, 72*time.Hour, 8760*time.Hour, false); err != nil || r.Payloads != 0 || len(r.Expired) != 0 {
		t.Fatalf("second purge: %+v %v", r, err)
	}
}

// TestPurge_GivesSpaceBack: once payloads are purged the database file
// shrinks to about what retention keeps, without a full VACUUM — in the
// process that created the database, before any restart (a new database
// once missed the incremental mode until a restart rewrote it), and after
// a restart.
func TestPurge_GivesSpaceBack(t *testing.T) {
	testenv.Slow(t, "fills and purges a large file")
	const events = 600
	big := bytes.Repeat([]byte("x"), 16<<10)
	// What the events' payloads and outbound bodies take at the least.
	const full = events * 2 * 16 << 10
	ingest := func(t *testing.T, st *audit.Store, from int) {
		for i := from; i < from+events; i++ {
			e := event(i, fmt.Sprint("greenhouse:candidate:", i))
			e.Payload = append([]byte(`{"blob":"`), append(big, `"}`...)...)
			d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryDelivered, Body: big}
			if _, _, err := st.IngestEvent(context.Background(), e, []*veil.Delivery{d}, veil.Drift{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	purge := func(t *testing.T, st *audit.Store, path string) {
		r, err := st.Purge(context.Background(), time.Unix(1795688100, 0).Add(73*time.Hour), 72*time.Hour, 8760*time.Hour, false)
		if err != nil || r.Payloads != events || r.Pages == 0 {
			t.Fatalf("purge: %+v %v; want %d payloads purged and pages given back", r, err, events)
		}
		st.Close()
		if after := fileSize(t, path); after > full/5 {
			t.Fatalf("database %d KB after the purge; its %d events' payloads and bodies took at least %d KB: want under a fifth", after>>10, events, full>>10)
		}
	}
	path := filepath.Join(t.TempDir(), "veil.db")
	t.Run("new database", func(t *testing.T) {
		st := storetest.MustOpenStore(t, path, vaultKey, pseudonymKey, nil)
		ingest(t, st, 0)
		purge(t, st, path)
	})
	t.Run("after a restart", func(t *testing.T) {
		st := storetest.MustOpenStore(t, path, vaultKey, pseudonymKey, nil)
		ingest(t, st, events)
		purge(t, st, path)
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestKeyCacheCap: 100,000 subjects later the data-key cache holds no more
// than its cap.
func TestKeyCacheCap(t *testing.T) {
	testenv.Slow(t, "tens of thousands of data keys")
	if testing.Short() {
		t.Skip("ingests 100,000 events")
	}
	st := audit.NewStore(filepath.Join(t.TempDir(), "veil.db"), vaultKey, pseudonymKey)
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// SQLite only: the cache is the same code on PostgreSQL, and 100,000
	// ingests there take minutes on this machine.
	ctx := context.Background()
	var wg sync.WaitGroup
	const workers, n = 64, 100_000
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "x", Subject: fmt.Sprint("greenhouse:candidate:", i),
					DedupKey: fmt.Sprint(i), ReceivedAt: time.Unix(1795688100, 0), Payload: []byte(`{}`)}
				if _, _, err := st.IngestEvent(ctx, e, nil, veil.Drift{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if got := st.CachedKeys(); got > audit.DefaultKeyCacheSize || got == 0 {
		t.Fatalf("%d keys cached after %d subjects, want between 1 and %d", got, n, audit.DefaultKeyCacheSize)
	}
}

// TestPurge_LeavesNoHalfEmptyPages: once payloads are purged, the file is
// about the size of a fresh copy of what it still holds. Set to NULL in
// place, each purged payload left its events row in a page the inline
// ciphertext had filled; in their own table, purged payloads go with
// their pages.
func TestPurge_LeavesNoHalfEmptyPages(t *testing.T) {
	testenv.Slow(t, "fills and purges a large file")
	path := filepath.Join(t.TempDir(), "veil.db")
	st := storetest.MustOpenStore(t, path, vaultKey, pseudonymKey, nil)
	ctx := context.Background()
	payload := []byte(`{"blob":"` + strings.Repeat("x", 6500) + `"}`) // a Greenhouse hire's size
	body := []byte(`{"text":"` + strings.Repeat("y", 600) + `"}`)     // a formatted message
	var wg sync.WaitGroup
	for w := range 16 { // the writer commits them in batches, as under load
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 2000; i += 16 {
				e := event(i, fmt.Sprint("greenhouse:candidate:", i))
				e.Payload = payload
				d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: body,
					FieldsKept: []string{"candidate.id", "candidate.first_name"}, Categories: []string{"identity"}}
				if _, _, err := st.IngestEvent(ctx, e, []*veil.Delivery{d}, veil.Drift{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	r, err := st.Purge(ctx, time.Unix(1795688100, 0).Add(73*time.Hour), 72*time.Hour, 8760*time.Hour, false)
	if err != nil || r.Payloads != 2000 || r.DeliveryBodies != 2000 {
		t.Fatalf("purge: %+v %v; want 2000 payloads and outbound bodies", r, err)
	}
	st.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	if _, err := db.Exec(`VACUUM INTO ?`, fresh); err != nil {
		t.Fatal(err)
	}
	if size, want := fileSize(t, path), fileSize(t, fresh); size > want*5/4 {
		t.Fatalf("database %d KB after the purge, a fresh copy of its rows %d KB: want at most 1.25 times", size>>10, want>>10)
	}
}

// TestPurge_NothingWritesNoRow: a retention run that removes nothing
// leaves no purged row (serve runs one every five minutes).
func TestPurge_NothingWritesNoRow(t *testing.T) {
	st := storetest.MustOpenStore(t, "", vaultKey, pseudonymKey, nil)
	ctx := context.Background()
	if _, err := st.Purge(ctx, time.Now(), time.Hour, 2*time.Hour, false); err != nil {
		t.Fatal(err)
	}
	st.AuditEntries(ctx, func(e *veil.AuditEntry) error {
		if e.Action == veil.ActionPurged {
			t.Errorf("a purge that removed nothing wrote %+v", e)
		}
		return nil
	})
}
