package audit_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/veilhq/veil"
)

// TestMigrate_DeliveryBodies opens a database whose deliveries still carry
// their body and path lists in the row (the layout before delivery_bodies):
// the store moves body, kept and pseudonymised paths, drops the dropped
// paths, and reads the delivery back.
func TestMigrate_DeliveryBodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "veil.db")
	st := MustOpenStore(t, path)
	ctx := context.Background()
	d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{"name":"Migrated-Canary"}`),
		FieldsKept: []string{"name"}, FieldsDropped: []string{"email"}, Pseudonymized: []string{"id"}}
	id, _, err := st.IngestEvent(ctx, event(1, "greenhouse:candidate:1"), []*veil.Delivery{d}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Rebuild the old layout from the new tables.
	exec(t, path, `CREATE TABLE old AS SELECT d.id, d.event_id, d.destination, d.subject, d.status, b.body, b.fields_kept,
		'["email"]' AS fields_dropped, b.pseudonymized, d.detail, d.attempts, d.next_attempt_at, d.created_at, d.updated_at
		FROM deliveries d JOIN delivery_bodies b ON b.id = d.id;
		DROP TABLE deliveries; DROP TABLE delivery_bodies; ALTER TABLE old RENAME TO deliveries;`)

	st = MustOpenStore(t, path)
	ds, err := st.EventDeliveries(ctx, id)
	if err != nil || len(ds) != 1 {
		t.Fatalf("read after migration: %v, %d deliveries", err, len(ds))
	}
	got := ds[0]
	if got.ID != d.ID || !bytes.Equal(got.Body, d.Body) || !slices.Equal(got.FieldsKept, d.FieldsKept) ||
		!slices.Equal(got.Pseudonymized, d.Pseudonymized) {
		t.Fatalf("after migration: got %+v, want %+v", got, d)
	}
	claimed, err := st.ClaimDeliveries(ctx, got.CreatedAt, 10)
	if err != nil || len(claimed) != 1 || !bytes.Equal(claimed[0].Body, d.Body) {
		t.Fatalf("claim after migration: %v, %d", err, len(claimed))
	}
	st.Close()
	st = MustOpenStore(t, path) // a second open finds nothing to migrate
	if n, err := st.Verify(ctx); err != nil || n == 0 {
		t.Fatalf("verify after migration: %d rows, %v", n, err)
	}
}
