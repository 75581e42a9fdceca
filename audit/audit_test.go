package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

// seed fills the database with events for three subjects, a delivery
// each, and their audit rows, and closes it.
func seed(t *testing.T, d testDB, now time.Time) testDB {
	t.Helper()
	st := d.store(vaultKey, pseudonymKey)
	st.Now = func() time.Time { return now }
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		e := event(i, fmt.Sprint("greenhouse:candidate:", i%3))
		e.ReceivedAt = now
		d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{"name":"Plaintext-Canary"}`)}
		if _, _, err := st.IngestEvent(context.Background(), e, []*veil.Delivery{d}, veil.Drift{Paths: []string{"action"}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	return d
}

func verifyDB(t *testing.T, d testDB) (int64, error) {
	t.Helper()
	st := d.open(t)
	defer st.Close()
	return st.Verify(context.Background(), nil)
}

// TestVerify_TamperedDatabase edits, deletes, swaps and inserts rows in
// seeded databases; each is caught at the first bad seq.
func TestVerify_TamperedDatabase(t *testing.T) { eachDriver(t, testTamperedDatabase) }

func testTamperedDatabase(t *testing.T, d testDB) {
	now := time.Now()
	if n, err := verifyDB(t, seed(t, d, now)); err != nil || n < 60 {
		t.Fatalf("untouched: %d rows, %v; want 60+ rows, no error", n, err)
	}
	for _, c := range []struct {
		name    string
		tamper  string
		wantSeq int64
	}{
		{"edit a field", `UPDATE audit SET destination = 'elsewhere' WHERE seq = 7`, 7},
		{"delete a row", `DELETE FROM audit WHERE seq = 12`, 13},
		{"swap two rows", `UPDATE audit SET seq = CASE seq WHEN 20 THEN 21 ELSE 20 END WHERE seq IN (20, 21)`, 20},
		{"insert a row", `INSERT INTO audit (seq, time, action, actor, source, event_type, event_id, destination, subject, outcome, http_status, attempt, fields_kept, fields_dropped, detail, prev_hash, hash) SELECT 1000, time, action, actor, source, event_type, event_id, destination,
			subject, outcome, http_status, attempt, fields_kept, fields_dropped, detail, hash, hash FROM audit WHERE seq = 5`, 1000},
		{"insert in the middle", `UPDATE audit SET seq = seq + 1000 WHERE seq > 30; INSERT INTO audit (seq, time, action, actor, source, event_type, event_id, destination, subject, outcome, http_status, attempt, fields_kept, fields_dropped, detail, prev_hash, hash) SELECT 31, time, action, actor, source,
			event_type, event_id, destination, subject, outcome, http_status, attempt, fields_kept, fields_dropped, detail, hash, hash
			FROM audit WHERE seq = 30`, 31},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := seed(t, newTestDB(t, d.driver), now)
			// swap needs a free seq to pass through the primary key
			if strings.HasPrefix(c.name, "swap") {
				d.exec(t, `UPDATE audit SET seq = -1 WHERE seq = 20`)
				d.exec(t, `UPDATE audit SET seq = 20 WHERE seq = 21`)
				d.exec(t, `UPDATE audit SET seq = 21 WHERE seq = -1`)
			} else {
				d.exec(t, c.tamper)
			}
			_, err := verifyDB(t, d)
			var ce *veil.ChainError
			if !errors.As(err, &ce) || ce.Seq != c.wantSeq {
				t.Fatalf("got %v, want a chain error at seq %d", err, c.wantSeq)
			}
		})
	}
}

// TestVerify_TamperedExport does the same to an exported JSONL file.
func TestVerify_TamperedExport(t *testing.T) { eachDriver(t, testTamperedExport) }

func testTamperedExport(t *testing.T, d testDB) {
	st := seed(t, d, time.Now()).open(t)
	var buf bytes.Buffer
	if err := st.WriteExport(context.Background(), &buf, "jsonl", veil.AuditFilter{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if chk, err := audit.VerifyExport(strings.NewReader(buf.String()), false); err != nil || chk.Rows != int64(len(lines)) {
		t.Fatalf("untouched export: %d rows, %v; want %d, no error", chk.Rows, err, len(lines))
	}
	edit := func(i int, f func(string) string) string {
		c := append([]string(nil), lines...)
		c[i] = f(c[i])
		return strings.Join(c, "")
	}
	for _, c := range []struct {
		name    string
		file    string
		wantSeq int64
	}{
		{"edit", edit(9, func(l string) string { return strings.Replace(l, `"actor":"`, `"actor":"x`, 1) }), 10},
		{"delete", strings.Join(append(append([]string(nil), lines[:14]...), lines[15:]...), ""), 16},
		{"swap", strings.Join(append(append(append([]string(nil), lines[:20]...), lines[21], lines[20]), lines[22:]...), ""), 22},
		{"insert", strings.Join(append(append(append([]string(nil), lines[:5]...), lines[3]), lines[5:]...), ""), 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := audit.VerifyExport(strings.NewReader(c.file), false)
			var ce *veil.ChainError
			if !errors.As(err, &ce) || ce.Seq != c.wantSeq {
				t.Fatalf("got %v, want a chain error at seq %d", err, c.wantSeq)
			}
		})
	}
}

// TestRetention: with a controllable clock, payloads past retention.payload
// are gone (reads answer gone, waiting deliveries end expired); then,
// past retention.audit, old audit rows are gone behind an anchor, and so
// are the rows of old events and their deliveries (reads answer not
// found) but for an event with a delivery still held; the chain still
// verifies, in the database and in a fresh export.
func TestRetention(t *testing.T) { eachDriver(t, testRetention) }

func testRetention(t *testing.T, d testDB) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	seed(t, d, start)
	now := start.Add(30 * 24 * time.Hour)
	st := d.openAt(t, func() time.Time { return now })
	ctx := context.Background()
	// A young event that must survive.
	young := event(99, "greenhouse:candidate:young")
	young.ReceivedAt = now
	youngID, _, err := st.IngestEvent(ctx, young, nil, veil.Drift{})
	if err != nil {
		t.Fatal(err)
	}
	old := eventIDs(t, d, "")
	const keepLog = 60 * 24 * time.Hour // longer than the events are old
	dry, err := st.Purge(ctx, now, 72*time.Hour, keepLog, true)
	if err != nil || dry.Payloads != 30 || dry.Events != 0 {
		t.Fatalf("dry run: %+v %v; want 30 payloads, no events", dry, err)
	}
	if _, err := st.Event(ctx, youngID); err != nil {
		t.Fatalf("young event after a dry run: %v", err)
	}
	r, err := st.Purge(ctx, now, 72*time.Hour, keepLog, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Payloads != 30 || r.DeliveryBodies != 30 || r.DataKeys != 3 || r.AuditRows != 0 || r.Events != 0 {
		t.Fatalf("purge: %+v; want 30 payloads, 30 bodies, 3 keys, no audit rows or events", r)
	}
	ds, _ := st.Deliveries(ctx, veil.DeliveryDead, 100)
	if len(ds) != 30 || !strings.Contains(ds[0].Detail, "expired") {
		t.Fatalf("waiting deliveries of purged payloads: %d dead, want 30 'expired'", len(ds))
	}
	if _, err := st.Event(ctx, youngID); err != nil {
		t.Fatalf("young event purged: %v", err)
	}
	// Old payloads are gone: reads (and so lookups and replays) answer gone.
	for _, id := range old {
		if id == youngID {
			continue
		}
		if _, err := st.Event(ctx, id); veil.ErrorCode(err) != veil.EGONE {
			t.Fatalf("purged event %s: got %v, want gone", id, err)
		}
	}

	// Past retention.audit. An old event whose delivery is being sent (an
	// attempt in flight, its lease live) stays until that delivery ends.
	inFlight := event(100, "greenhouse:candidate:in-flight")
	inFlight.ReceivedAt = start
	flightID, _, err := st.IngestEvent(ctx, inFlight, []*veil.Delivery{{Destination: "hris", Status: veil.DeliveryPending,
		Body: []byte(`{}`)}}, veil.Drift{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := st.ClaimDeliveries(ctx, now, map[string]int{"hris": 10}, time.Hour); err != nil || len(c) != 1 {
		t.Fatalf("claim: %d, %v; want the one pending delivery", len(c), err)
	}
	dry, err = st.Purge(ctx, now, 72*time.Hour, 7*24*time.Hour, true)
	if err != nil || dry.Events != 30 || dry.Deliveries != 30 || dry.AuditRows < 60 {
		t.Fatalf("dry run: %+v %v; want 30 events, 30 deliveries, 60+ audit rows", dry, err)
	}
	r, err = st.Purge(ctx, now, 72*time.Hour, 7*24*time.Hour, false)
	if err != nil || r.Events != 30 || r.Deliveries != 30 || r.AuditRows < 60 || r.Payloads != 1 || len(r.Expired) != 0 {
		t.Fatalf("purge: %+v %v; want 30 events, 30 deliveries, 60+ audit rows, the payload of the event in flight", r, err)
	}
	var oldRow string
	st.Export(ctx, veil.AuditFilter{Actions: []string{veil.ActionSchemaDrift}}, func(e *veil.AuditEntry) error { oldRow = e.EventID; return nil })
	if oldRow != "" {
		t.Fatalf("an audit row older than retention survived (%s)", oldRow)
	}
	for _, id := range old {
		if _, err := st.Event(ctx, id); id != youngID && veil.ErrorCode(err) != veil.ENOTFOUND {
			t.Fatalf("event %s past retention.audit: got %v, want not found", id, err)
		}
	}
	if _, err := st.Event(ctx, youngID); err != nil {
		t.Fatalf("young event purged: %v", err)
	}
	if _, err := st.Event(ctx, flightID); veil.ErrorCode(err) != veil.EGONE {
		t.Fatalf("old event with a delivery in flight: %v, want its row kept, its payload gone", err)
	}
	if ds, _ := st.Deliveries(ctx, veil.DeliveryDead, 100); len(ds) != 0 {
		t.Fatalf("%d dead deliveries past retention.audit, want none", len(ds))
	}
	// Left: the young event's payload and the delivery in flight, whose
	// body went with its event's payload.
	for table, want := range map[string]int64{"events": 2, "payloads": 1, "deliveries": 1, "delivery_fields": 0, "outbound_bodies": 0} {
		if n := d.queryInt(t, `SELECT count(*) FROM `+table); n != want {
			t.Fatalf("%d rows left in %s, want %d", n, table, want)
		}
	}
	var purgedDetail string
	st.AuditEntries(ctx, func(e *veil.AuditEntry) error {
		if e.Action == veil.ActionPurged {
			purgedDetail = e.Detail
		}
		return nil
	})
	if !strings.Contains(purgedDetail, "events=30 deliveries=30") {
		t.Fatalf("purged row: %q", purgedDetail)
	}
	if n, err := st.Verify(ctx, nil); err != nil || n < 2 {
		t.Fatalf("verify after purge: %d rows, %v", n, err)
	}
	var buf bytes.Buffer
	st.WriteExport(ctx, &buf, "jsonl", veil.AuditFilter{})
	if _, err := audit.VerifyExport(&buf, false); err != nil {
		t.Fatalf("verify export after purge: %v", err)
	}
	// Appending after the purge continues the chain.
	if err := st.Append(ctx, &veil.AuditEntry{Action: veil.ActionPolicyLoaded}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Verify(ctx, nil); err != nil {
		t.Fatalf("verify after append: %v", err)
	}
}

// TestErase: after erasure no payload or outbound body of the subject can
// be decrypted (read raw and tried), other subjects are untouched, waiting
// deliveries are cancelled, and the audit rows keep only the keyed hash.
func TestErase(t *testing.T) { eachDriver(t, testErase) }

func testErase(t *testing.T, d testDB) {
	st := seed(t, d, time.Now()).open(t)
	ctx := context.Background()
	res, err := st.Erase(ctx, "greenhouse:candidate:1", "admin")
	if err != nil || res.Events != 10 || res.Cancelled["hris"] != 10 {
		t.Fatalf("erase: %+v %v; want 10 events, 10 cancelled", res, err)
	}
	dead := 0
	st.AuditEntries(ctx, func(e *veil.AuditEntry) error {
		if e.Action == veil.ActionDead && e.Outcome == "erased" {
			dead++
		}
		return nil
	})
	if dead != 10 {
		t.Fatalf("%d dead rows with outcome erased, want one per cancelled delivery (10)", dead)
	}
	if _, err := st.Erase(ctx, "greenhouse:candidate:1", "admin"); err != nil {
		t.Fatalf("second erase: %v", err)
	}
	gone, readable := 0, 0
	st.Events(ctx, func(e *veil.Event) error { readable++; return nil }, nil)
	ids := eventIDs(t, d, st.SubjectHash("greenhouse:candidate:1"))
	for _, id := range ids {
		if _, err := st.Event(ctx, id); veil.ErrorCode(err) == veil.EGONE {
			gone++
		}
	}
	if gone != 10 || readable != 20 {
		t.Fatalf("after erasure: %d of the subject's events gone, %d others readable; want 10, 20", gone, readable)
	}
	// Raw rows: the ciphertext is still there, and no key in the database opens it.
	if n := rawDecryptable(t, d, st.SubjectHash("greenhouse:candidate:1")); n != 0 {
		t.Fatalf("%d raw payloads of the erased subject still decrypt", n)
	}
	var rows bytes.Buffer
	st.WriteExport(ctx, &rows, "csv", veil.AuditFilter{})
	if strings.Contains(rows.String(), "greenhouse:candidate:1") || strings.Contains(rows.String(), "Plaintext-Canary") {
		t.Fatal("the audit export holds the subject reference or a payload value")
	}
	if !strings.Contains(rows.String(), st.SubjectHash("greenhouse:candidate:1")) {
		t.Fatal("the erased row does not name the subject's keyed hash")
	}
}

// eventIDs lists the events of a subject's keyed hash (all when "").
func eventIDs(t *testing.T, d testDB, subject string) []string {
	q, args := `SELECT id FROM events`, []any{}
	if subject != "" {
		q, args = `SELECT id FROM events WHERE subject = ?`, []any{subject}
		if d.driver == "postgres" {
			q = rebindTest(q)
		}
	}
	rows, err := d.sql(t).Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

// rawDecryptable tries every data key left in the database on every raw
// payload and delivery body of subject, and counts the ones that open.
func rawDecryptable(t *testing.T, d testDB, subject string) int {
	db := d.sql(t)
	var keys [][]byte
	rows, _ := db.Query(`SELECT subject, wrapped FROM data_keys`)
	for rows.Next() {
		var s string
		var w []byte
		rows.Scan(&s, &w)
		if k, err := audit.OpenSealed(vaultKey, w, []byte(s)); err == nil {
			keys = append(keys, k)
		}
	}
	rows.Close()
	n := 0
	q := `SELECT e.id, p.sealed FROM events e JOIN payloads p ON p.event_id = e.id WHERE e.subject = ? UNION ALL SELECT d.id, o.sealed FROM deliveries d JOIN outbound_bodies o ON o.delivery_id = d.id WHERE d.subject = ?`
	if d.driver == "postgres" {
		q = rebindTest(q)
	}
	rows, _ = db.Query(q, subject, subject)
	defer rows.Close()
	for rows.Next() {
		var id string
		var sealed []byte
		rows.Scan(&id, &sealed)
		if len(sealed) == 0 {
			t.Fatalf("%s: no ciphertext left to try", id)
		}
		for _, k := range keys {
			if _, err := audit.OpenSealed(k, sealed, []byte(id)); err == nil {
				n++
			}
		}
	}
	return n
}

// TestVerify_FilteredAndCSV: a filtered export is not one chain, but each
// row matches its own hash (checked with filtered), and a gap is told apart
// from an edit; a CSV export verifies like a JSONL one.
func TestVerify_FilteredAndCSV(t *testing.T) { eachDriver(t, testFilteredAndCSV) }

func testFilteredAndCSV(t *testing.T, d testDB) {
	st := seed(t, d, time.Now()).open(t)
	ctx := context.Background()
	var csvOut, filtered bytes.Buffer
	if err := st.WriteExport(ctx, &csvOut, "csv", veil.AuditFilter{}); err != nil {
		t.Fatal(err)
	}
	if chk, err := audit.VerifyExport(bytes.NewReader(csvOut.Bytes()), false); err != nil || chk.Rows < 30 || chk.Gaps != 0 {
		t.Fatalf("csv export: %+v, %v; want every row, no gap", chk, err)
	}
	if err := st.WriteExport(ctx, &filtered, "jsonl", veil.AuditFilter{Actions: []string{veil.ActionReceived}}); err != nil {
		t.Fatal(err)
	}
	chk, err := audit.VerifyExport(bytes.NewReader(filtered.Bytes()), false)
	var ce *veil.ChainError
	if !errors.As(err, &ce) || chk.Gaps != 1 {
		t.Fatalf("filtered export as complete: %+v, %v; want a chain error at a gap", chk, err)
	}
	chk, err = audit.VerifyExport(bytes.NewReader(filtered.Bytes()), true)
	if err != nil || chk.Rows != 30 || chk.Gaps == 0 {
		t.Fatalf("filtered export as filtered: %+v, %v; want 30 rows with gaps", chk, err)
	}
	edited := strings.Replace(filtered.String(), `"outcome":"accepted"`, `"outcome":"rejected"`, 1)
	if _, err := audit.VerifyExport(strings.NewReader(edited), true); !errors.As(err, &ce) {
		t.Fatalf("edited filtered export: got %v, want a chain error", err)
	}
	editedCSV := strings.Replace(csvOut.String(), ",accepted,", ",rejected,", 1)
	if _, err := audit.VerifyExport(strings.NewReader(editedCSV), false); !errors.As(err, &ce) {
		t.Fatalf("edited csv: got %v, want a chain error", err)
	}
}
