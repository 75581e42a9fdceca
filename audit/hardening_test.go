package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/veilhq/veil"
)

// TestDedup_KeyedAndErased: the store keeps no unkeyed digest of a body or
// a dedup key, and erasure deletes the keyed ones with the subject.
func TestDedup_KeyedAndErased(t *testing.T) { eachDriver(t, testDedupKeyedAndErased) }

func testDedupKeyedAndErased(t *testing.T, d testDB) {
	st := d.open(t)
	ctx := context.Background()
	e := event(1, "greenhouse:candidate:77")
	e.BodyKey = true
	if _, _, err := st.IngestEvent(ctx, e, nil, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	// The same body under another (unsigned) key is a duplicate.
	again := event(2, "greenhouse:candidate:77")
	again.Payload, again.BodyKey = e.Payload, true
	if _, dup, err := st.IngestEvent(ctx, again, nil, veil.Drift{}); err != nil || !dup {
		t.Fatalf("same body, new key: dup %v, %v; want a duplicate", dup, err)
	}
	st.Close()
	contents := d.contents(t)
	sum := sha256.Sum256(e.Payload)
	keySum := sha256.Sum256([]byte(e.DedupKey))
	for _, unkeyed := range [][]byte{sum[:16], []byte(hex.EncodeToString(sum[:])), keySum[:16]} {
		if bytes.Contains(contents, unkeyed) || d.holds(contents, string(unkeyed)) {
			t.Fatalf("the database holds an unkeyed digest %x", unkeyed)
		}
	}
	st = d.open(t)
	if _, err := st.Erase(ctx, "greenhouse:candidate:77", "admin"); err != nil {
		t.Fatal(err)
	}
	if left := d.queryInt(t, `SELECT count(*) FROM events WHERE dedup IS NOT NULL OR body_dedup IS NOT NULL`); left != 0 {
		t.Fatalf("%d events keep dedup hashes after erasure, want 0", left)
	}
}

// TestStore_CorruptRowsAreErrors: a delivery row whose path list does not
// decode is an error, not an empty list (which would shrink the Art. 30
// report without a word).
func TestStore_CorruptRowsAreErrors(t *testing.T) { eachDriver(t, testCorruptRowsAreErrors) }

func testCorruptRowsAreErrors(t *testing.T, db testDB) {
	st := db.open(t)
	ctx := context.Background()
	d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{}`), FieldsKept: []string{"a"}}
	id, _, err := st.IngestEvent(ctx, event(1, "greenhouse:candidate:1"), []*veil.Delivery{d}, veil.Drift{})
	if err != nil {
		t.Fatal(err)
	}
	db.exec(t, `UPDATE delivery_fields SET fields_kept = '["a",'`)
	if _, err := st.EventDeliveries(ctx, id); err == nil {
		t.Error("EventDeliveries: got no error for a corrupt row")
	}
	if err := st.DeliveredFields(ctx, func(string, string, []string, []string, []string) error { return nil }); err == nil {
		t.Error("DeliveredFields: got no error for a corrupt row")
	}
}

// TestReplay_Errors: an unknown delivery is not found, a live one is a
// conflict; neither is reported as the other.
func TestReplay_Errors(t *testing.T) { eachDriver(t, testReplayErrors) }

func testReplayErrors(t *testing.T, db testDB) {
	st := db.open(t)
	ctx := context.Background()
	d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{}`)}
	if _, _, err := st.IngestEvent(ctx, event(1, "greenhouse:candidate:1"), []*veil.Delivery{d}, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	nd := &veil.Delivery{Status: veil.DeliveryPending, Body: []byte(`{}`)}
	if err := st.ReplayDelivery(ctx, &veil.Delivery{ID: "dlv_nosuch"}, nd, "admin"); veil.ErrorCode(err) != veil.ENOTFOUND {
		t.Errorf("unknown: got %v (%s), want not_found", err, veil.ErrorCode(err))
	}
	if err := st.ReplayDelivery(ctx, d, nd, "admin"); veil.ErrorCode(err) != veil.ECONFLICT {
		t.Errorf("pending: got %v (%s), want conflict", err, veil.ErrorCode(err))
	}
}
