package audit_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/internal/storetest"
)

// TestMigrate_Legacy opens a database in the layout of the releases before
// numbered migrations (no schema_migrations; deliveries carrying their body
// and path lists in the row; no upstream column; an unkeyed body digest;
// consumers keyed by name; audit rows without categories; one data key per
// subject): the store brings
// it to version 1, applies the numbered migrations, reads the delivery
// back, verifies the chain, and a second open finds nothing to do.
func TestMigrate_Legacy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "veil.db")
	db := testDB{driver: "sqlite", path: path}
	st := storetest.MustOpenStore(t, path, vaultKey, pseudonymKey, nil)
	ctx := context.Background()
	d := &veil.Delivery{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{"name":"Migrated-Canary"}`),
		FieldsKept: []string{"name"}, FieldsDropped: []string{"email"}, Pseudonymized: []string{"id"}}
	id, _, err := st.IngestEvent(ctx, event(1, "greenhouse:candidate:1"), []*veil.Delivery{d}, veil.Drift{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddConsumer(ctx, "onboarding", []string{"onboarding"}, "admin"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Rebuild the old layout from the new tables.
	db.exec(t, `
		CREATE TABLE old_events AS SELECT id, source, vendor, event_type, subject, coalesce(dedup, body_dedup) AS dedup,
			received_at, 'digest' AS digest, (SELECT sealed FROM payloads p WHERE p.event_id = events.id) AS payload FROM events;
		DROP TABLE events; DROP TABLE payloads; ALTER TABLE old_events RENAME TO events;
		CREATE TABLE old AS SELECT d.id, d.event_id, d.destination, d.subject, d.status, o.sealed AS body, f.fields_kept,
			'["email"]' AS fields_dropped, f.pseudonymized, d.detail, d.attempts, d.next_attempt_at, d.created_at, d.updated_at
			FROM deliveries d JOIN delivery_fields f ON f.id = d.id JOIN outbound_bodies o ON o.delivery_id = d.id;
		DROP TABLE deliveries; DROP TABLE delivery_fields; DROP TABLE outbound_bodies; ALTER TABLE old RENAME TO deliveries;
		CREATE TABLE old_consumers AS SELECT name, key_hash, purposes, created_at, revoked_at FROM consumers;
		DROP TABLE consumers; ALTER TABLE old_consumers RENAME TO consumers;
		ALTER TABLE audit DROP COLUMN categories;
		CREATE TABLE old_keys AS SELECT subject, wrapped, created_at FROM data_keys;
		DROP TABLE data_keys; ALTER TABLE old_keys RENAME TO data_keys;
		DROP TABLE erasures; DROP TABLE meta; DROP TABLE schema_migrations; DROP TABLE app_states; DROP TABLE reconcile_state;
		DROP TABLE subject_links; DROP TABLE tombstones; DROP TABLE paused_destinations; DROP TABLE alerts;
		DROP TABLE users; DROP TABLE api_tokens; DROP TABLE sessions; DROP TABLE auth_pending; DROP TABLE approvals; DROP TABLE policy_changes;`)

	st = storetest.MustOpenStore(t, path, vaultKey, pseudonymKey, nil)
	if got := st.Migrated; len(got) == 0 || got[0].Version != 2 {
		t.Fatalf("migrations applied: %+v, want from version 2 on", got)
	}
	ds, err := st.EventDeliveries(ctx, id)
	if err != nil || len(ds) != 1 {
		t.Fatalf("read after migration: %v, %d deliveries", err, len(ds))
	}
	got := ds[0]
	if got.ID != d.ID || !bytes.Equal(got.Body, d.Body) || !slices.Equal(got.FieldsKept, d.FieldsKept) ||
		!slices.Equal(got.Pseudonymized, d.Pseudonymized) {
		t.Fatalf("after migration: got %+v, want %+v", got, d)
	}
	if e, err := st.Event(ctx, id); err != nil || !bytes.Contains(e.Payload, []byte("candidate")) {
		t.Fatalf("event after migration: %v", err)
	}
	cs, err := st.Consumers(ctx)
	if err != nil || len(cs) != 1 || cs[0].Name != "onboarding" {
		t.Fatalf("consumers after migration: %+v, %v", cs, err)
	}
	claimed, err := st.ClaimDeliveries(ctx, got.CreatedAt, map[string]int{"hris": 10}, time.Minute)
	if err != nil || len(claimed) != 1 || !bytes.Equal(claimed[0].Body, d.Body) {
		t.Fatalf("claim after migration: %v, %d", err, len(claimed))
	}
	st.Close()
	st = storetest.MustOpenStore(t, path, vaultKey, pseudonymKey, nil) // a second open finds nothing to migrate
	if len(st.Migrated) != 0 {
		t.Fatalf("second open applied %+v", st.Migrated)
	}
	if n, err := st.Verify(ctx, nil); err != nil || n == 0 {
		t.Fatalf("verify after migration: %d rows, %v", n, err)
	}
}

// TestVaultKeyCheck: a store opened with another vault key refuses to
// start, with a sentence saying so, before anything reads a payload.
func TestVaultKeyCheck(t *testing.T) { eachDriver(t, testVaultKeyCheck) }

func testVaultKeyCheck(t *testing.T, d testDB) {
	st := d.open(t)
	if _, _, err := st.IngestEvent(context.Background(), event(1, "greenhouse:candidate:1"), nil, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	other := bytes.Repeat([]byte{8}, 32)
	err := d.store(other, pseudonymKey).Open()
	if !errors.Is(err, audit.ErrVaultKey) {
		t.Fatalf("open with another key: got %v, want ErrVaultKey", err)
	}
	// A database from before the check value: the key is checked against a
	// stored data key, then the check value is written.
	d.exec(t, `DELETE FROM meta`)
	if err := d.store(other, pseudonymKey).Open(); !errors.Is(err, audit.ErrVaultKey) {
		t.Fatalf("open without check value, another key: got %v, want ErrVaultKey", err)
	}
	st = d.open(t)
	st.Close()
	if n := d.queryInt(t, `SELECT count(*) FROM meta WHERE key = 'vault_check'`); n != 1 {
		t.Fatalf("check value rows: %d, want 1", n)
	}
}

// TestMigrate_NewerDatabase: a release older than the database's schema (a
// rollback) refuses it with an error naming both versions; it panicked on
// a slice bound.
func TestMigrate_NewerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "veil.db")
	st := storetest.MustOpenStore(t, path, vaultKey, pseudonymKey, nil)
	st.Close()
	db := testDB{driver: "sqlite", path: path}
	db.exec(t, `INSERT INTO schema_migrations (version, applied_at) VALUES (1000, 0)`)
	st = audit.NewStore(path, vaultKey, pseudonymKey)
	err := st.Open()
	if err == nil {
		st.Close()
		t.Fatal("a database at schema version 1000 opened")
	}
	if !strings.Contains(err.Error(), "schema version 1000, newer than this release's") {
		t.Fatalf("error %q does not name the versions", err)
	}
}
