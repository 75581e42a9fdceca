package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/veilhq/veil"
)

// insertDelivery stores d for event e inside the ingest transaction, with
// the audit row its status calls for.
func (s *Store) insertDelivery(tx *wtx, e *veil.Event, subject string, key []byte, d *veil.Delivery) error {
	if d.ID == "" {
		d.ID = veil.NewID("dlv_")
	}
	d.EventID = e.ID
	var sealed []byte
	if d.Body != nil {
		var err error
		if sealed, err = seal(key, d.Body, []byte(d.ID)); err != nil {
			return err
		}
	}
	kept, _ := json.Marshal(nonNil(d.FieldsKept))
	dropped, _ := json.Marshal(nonNil(d.FieldsDropped))
	pseudo, _ := json.Marshal(nonNil(d.Pseudonymized))
	now := e.ReceivedAt.UnixNano()
	if _, err := tx.exec(`INSERT INTO deliveries (id, event_id, destination, subject, status, body, fields_kept,
		fields_dropped, pseudonymized, detail, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`, d.ID, e.ID, d.Destination, subject, d.Status, sealed,
		string(kept), string(dropped), string(pseudo), d.Detail, now, now, now); err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	row := &veil.AuditEntry{Time: e.ReceivedAt, Actor: "veil", Source: e.Source, EventType: e.EventType,
		EventID: e.ID, Destination: d.Destination, Subject: subject, FieldsKept: d.FieldsKept,
		FieldsDropped: d.FieldsDropped, Detail: d.Detail}
	switch d.Status {
	case veil.DeliveryFiltered:
		row.Action, row.Outcome = veil.ActionFiltered, "not_allowed"
	case veil.DeliveryBlocked:
		row.Action, row.Outcome = veil.ActionBlockedLeak, "blocked"
	case veil.DeliveryDead:
		row.Action, row.Outcome = veil.ActionDead, "policy_error"
	default:
		return nil // pending: audited when it is delivered or given up
	}
	return s.appendTx(tx, row)
}

// EventDeliveries returns the deliveries of an event with their outbound
// bodies decrypted (nil once the subject is erased).
func (s *Store) EventDeliveries(ctx context.Context, eventID string) ([]*veil.Delivery, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.id, d.destination, d.status, d.body, d.fields_kept, d.fields_dropped,
		d.pseudonymized, d.detail, d.attempts, d.created_at, k.wrapped, d.subject
		FROM deliveries d LEFT JOIN data_keys k ON k.subject = d.subject WHERE d.event_id = ? ORDER BY d.destination`, eventID)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	var out []*veil.Delivery
	for rows.Next() {
		var (
			d                     = &veil.Delivery{EventID: eventID}
			sealed, wrapped       []byte
			kept, dropped, pseudo string
			created               int64
			subject               string
		)
		if err := rows.Scan(&d.ID, &d.Destination, &d.Status, &sealed, &kept, &dropped, &pseudo, &d.Detail,
			&d.Attempts, &created, &wrapped, &subject); err != nil {
			return nil, fmt.Errorf("read delivery: %w", err)
		}
		d.CreatedAt = time.Unix(0, created).UTC()
		json.Unmarshal([]byte(kept), &d.FieldsKept)
		json.Unmarshal([]byte(dropped), &d.FieldsDropped)
		json.Unmarshal([]byte(pseudo), &d.Pseudonymized)
		if sealed != nil && wrapped != nil {
			key, err := open(s.vaultKey, wrapped, []byte(subject))
			if err != nil {
				return nil, fmt.Errorf("unwrap data key: %w", err)
			}
			if d.Body, err = open(key, sealed, []byte(d.ID)); err != nil {
				return nil, fmt.Errorf("decrypt delivery: %w", err)
			}
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SchemaPaths returns the paths seen so far, keyed by source and event type
// joined with a NUL byte.
func (s *Store) SchemaPaths(ctx context.Context) (map[string]map[string]bool, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT source, event_type, path FROM schema_paths`)
	if err != nil {
		return nil, fmt.Errorf("read schema paths: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]bool{}
	for rows.Next() {
		var src, et, p string
		if err := rows.Scan(&src, &et, &p); err != nil {
			return nil, err
		}
		k := src + "\x00" + et
		if out[k] == nil {
			out[k] = map[string]bool{}
		}
		out[k][p] = true
	}
	return out, rows.Err()
}
