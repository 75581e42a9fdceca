package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	pseudo, _ := json.Marshal(nonNil(d.Pseudonymized))
	cats, _ := json.Marshal(nonNil(d.Categories))
	now := e.ReceivedAt.UnixNano()
	tx.queue(`INSERT INTO deliveries (id, event_id, destination, subject, status, detail, attempts,
		next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
		d.ID, e.ID, d.Destination, subject, d.Status, d.Detail, now, now, now)
	// A delivery that sends nothing (filtered, or dead by a policy error)
	// has neither a body nor paths: readers join both with LEFT JOINs
	// (bodyColumns). Two of the three shipped destinations filter most
	// events, so that saves rows on most of an event's deliveries.
	if sealed != nil {
		tx.queue(`INSERT INTO outbound_bodies (delivery_id, sealed) VALUES (?, ?)`, d.ID, sealed)
	}
	if len(d.FieldsKept)+len(d.Pseudonymized)+len(d.Categories) > 0 {
		tx.queue(`INSERT INTO delivery_fields (id, fields_kept, pseudonymized, categories)
			VALUES (?, ?, ?, ?)`, d.ID, string(kept), string(pseudo), string(cats))
	}
	row := &veil.AuditEntry{Time: e.ReceivedAt, Actor: "veil", Source: e.Source, EventType: e.EventType,
		EventID: e.ID, Destination: d.Destination, Subject: subject, FieldsKept: d.FieldsKept,
		FieldsDropped: d.FieldsDropped, Detail: d.Detail}
	switch d.Status {
	case veil.DeliveryFiltered:
		row.Action, row.Outcome = veil.ActionFiltered, "not_allowed"
		switch d.Detail {
		case DetailReconciled:
			row.Outcome = "already_reconciled"
		case veil.DetailErasedSubject:
			row.Outcome = veil.DetailErasedSubject
		}
	case veil.DeliveryBlocked:
		if d.Detail == veil.DetailPolicyTimeout || d.Detail == veil.DetailPolicyTooLarge {
			// The policy did not decide in bounds: nothing was projected.
			row.Action, row.Outcome = veil.ActionBlockedPolicy, d.Detail
			break
		}
		// What the guard stopped: the categories the body would have released.
		row.Action, row.Outcome, row.Categories = veil.ActionBlockedLeak, "blocked", d.Categories
	case veil.DeliveryDead:
		row.Action, row.Outcome = veil.ActionDead, "policy_error"
	case veil.DeliveryHeld:
		// What would leave, for the person who decides.
		row.Action, row.Outcome, row.Categories = veil.ActionReviewHeld, "held", d.Categories
	default:
		return nil // pending: audited when it is delivered or given up
	}
	return s.appendTx(tx, row)
}

// padIDs repeats the last of ids up to a power of two and returns them
// with their "(?, ?, …)": claims of any size then share a few prepared
// statements instead of one per size (the claim runs on the writer up to
// two hundred times a second while deliveries flow). A repeated id
// changes nothing in an IN list.
func padIDs(ids []any) ([]any, string) {
	n := 1
	for n < len(ids) {
		n *= 2
	}
	for len(ids) < n {
		ids = append(ids, ids[len(ids)-1])
	}
	return ids, "(?" + strings.Repeat(", ?", n-1) + ")"
}

// pathColumns reads a delivery's paths and categories through
// pathJoin, bodyColumns also its sealed body through bodyJoin: a delivery
// that sends nothing has neither row (insertDelivery), and a purge or a
// rejected review deletes the body.
const (
	pathJoin    = ` LEFT JOIN delivery_fields f ON f.id = d.id `
	bodyJoin    = pathJoin + `LEFT JOIN outbound_bodies o ON o.delivery_id = d.id `
	pathColumns = `coalesce(f.fields_kept, '[]'), coalesce(f.pseudonymized, '[]'), coalesce(f.categories, '[]')`
	bodyColumns = `o.sealed, ` + pathColumns
)

// EventDeliveries returns the deliveries of an event with their outbound
// bodies decrypted (nil once the subject is erased).
func (s *Store) EventDeliveries(ctx context.Context, eventID string) ([]*veil.Delivery, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.id, d.destination, d.status, `+bodyColumns+`, d.detail,
		d.attempts, d.created_at, k.wrapped, d.subject
		FROM deliveries d`+bodyJoin+`JOIN events e ON e.id = d.event_id
		LEFT JOIN data_keys k ON k.epoch = e.key_epoch AND k.subject = d.subject
		WHERE d.event_id = ? ORDER BY d.destination`, eventID)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	var out []*veil.Delivery
	for rows.Next() {
		var (
			d                  = &veil.Delivery{EventID: eventID}
			sealed, wrapped    []byte
			kept, pseudo, cats string
			created            int64
			subject            string
		)
		if err := rows.Scan(&d.ID, &d.Destination, &d.Status, &sealed, &kept, &pseudo, &cats, &d.Detail,
			&d.Attempts, &created, &wrapped, &subject); err != nil {
			return nil, fmt.Errorf("read delivery: %w", err)
		}
		d.CreatedAt = time.Unix(0, created).UTC()
		if err := decodePaths(d.ID, kept, pseudo, cats, &d.FieldsKept, &d.Pseudonymized, &d.Categories); err != nil {
			return nil, err
		}
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

// ClaimDeliveries marks deliveries as sending under a lease that ends at
// now+lease, at most limits[destination] for each destination, and returns
// them with their decrypted bodies, for every destination not paused:
// pending ones that are due, and sending
// ones whose lease has ended (the process that claimed them died, or could
// not record the result), so a claim is never lost. Oldest due first. A
// delivery whose body is gone (retention, erasure) comes back with a nil
// Body and the reason in Detail, for the caller to give up and count.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, limits map[string]int, lease time.Duration) ([]*veil.Delivery, error) {
	var out []*veil.Delivery
	claim := veil.NewID("clm_")
	err := s.writeBackground(ctx, func(tx *wtx) error {
		out = out[:0]
		// Ids first, each query reading its index range in order; then the
		// details of just those.
		var ids []any
		paused, err := pausedIn(tx)
		if err != nil {
			return err
		}
		for dest, limit := range limits {
			if paused[dest] {
				continue // an operator holds it back; its deliveries wait
			}
			for _, status := range []string{veil.DeliveryPending, veil.DeliverySending} {
				if limit <= 0 {
					break
				}
				// PostgreSQL: rows another replica is claiming are skipped,
				// not waited for.
				rows, err := tx.query(`SELECT id FROM deliveries WHERE status = ? AND destination = ? AND next_attempt_at <= ?
					ORDER BY next_attempt_at LIMIT ?`+s.dialect.skipLocked, status, dest, now.UnixNano(), limit)
				if err != nil {
					return fmt.Errorf("claim deliveries: %w", err)
				}
				got, err := readStrings(rows)
				if err != nil {
					return err
				}
				ids = append(ids, anys(got)...)
				limit -= len(got)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		ids, in := padIDs(ids)
		rows, err := tx.query(`SELECT d.id, d.event_id, d.destination, d.subject, `+bodyColumns+`,
			d.attempts, d.created_at, e.source, e.event_type, k.wrapped
			FROM deliveries d JOIN events e ON e.id = d.event_id`+bodyJoin+`
			LEFT JOIN data_keys k ON k.epoch = e.key_epoch AND k.subject = d.subject
			WHERE d.id IN `+in+` ORDER BY d.next_attempt_at`, ids...)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		for rows.Next() {
			var (
				d                  = &veil.Delivery{Status: veil.DeliverySending, Claim: claim}
				sealed, wrapped    []byte
				kept, pseudo, cats string
				created            int64
			)
			if err := rows.Scan(&d.ID, &d.EventID, &d.Destination, &d.Subject, &sealed, &kept, &pseudo, &cats,
				&d.Attempts, &created, &d.Source, &d.EventType, &wrapped); err != nil {
				rows.Close()
				return err
			}
			if err := decodePaths(d.ID, kept, pseudo, cats, &d.FieldsKept, &d.Pseudonymized, &d.Categories); err != nil {
				rows.Close()
				return err
			}
			d.CreatedAt = time.Unix(0, created).UTC()
			switch {
			case sealed == nil:
				d.Detail = "expired: the payload passed retention before it could be delivered"
			case wrapped == nil:
				d.Detail = "erased: the subject was erased; the outbound body can no longer be decrypted"
			}
			if sealed != nil && wrapped != nil {
				key, err := open(s.vaultKey, wrapped, []byte(d.Subject))
				if err == nil {
					d.Body, err = open(key, sealed, []byte(d.ID))
				}
				if err != nil {
					rows.Close()
					return fmt.Errorf("decrypt delivery: %w", err)
				}
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// One statement for the whole claim.
		args := append([]any{now.Add(lease).UnixNano(), now.UnixNano(), claim}, ids...)
		tx.queue(`UPDATE deliveries SET status = 'sending', next_attempt_at = ?, updated_at = ?, claim = ? WHERE id IN `+in, args...)
		for _, d := range out {
			if _, ok := tx.claims[d.ID]; ok { // a finish of its last claim later in this batch is stale
				tx.claims[d.ID] = claimState{claim: claim, status: veil.DeliverySending}
			}
		}
		return nil
	})
	return out, err
}

// FinishDelivery records one attempt: the delivery's new status and the
// audit row (delivered, retry or dead) with the HTTP status, the attempt
// number and the latency.
//
// It records nothing, and returns veil.ErrStaleClaim, when the delivery is no
// longer held under d's claim: its lease ran out and another claim took
// it, or it was given up meanwhile. So each attempt's outcome is written
// at most once, by the one claim that made it.
func (s *Store) FinishDelivery(ctx context.Context, d *veil.Delivery, a *veil.Attempt) error {
	stale := false
	err := s.writeOp(ctx, true, &op{finish: d.ID, done: make(chan error, 1), fn: func(tx *wtx) error {
		var err error
		stale, err = s.finishTx(tx, d, a, s.Now())
		return err
	}})
	if err == nil && stale {
		return veil.ErrStaleClaim
	}
	return err
}

// ReleaseDelivery hands a delivery claimed under d's claim back to the
// queue, due now; nothing when it is no longer held under that claim.
func (s *Store) ReleaseDelivery(ctx context.Context, d *veil.Delivery) error {
	return s.writeBackground(ctx, func(tx *wtx) error {
		now := s.Now().UnixNano()
		if _, ok := tx.claims[d.ID]; ok {
			tx.claims[d.ID] = claimState{status: veil.DeliveryPending}
		}
		tx.queue(`UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?, claim = ''
			WHERE id = ? AND claim = ? AND status = 'sending'`, now, now, d.ID, d.Claim)
		return nil
	})
}

// claimState is where a delivery stands, as a batch read it.
type claimState struct{ claim, status string }

// prefetchClaims reads the claims of the deliveries the batch's finishes
// record, in one statement.
func (s *Store) prefetchClaims(q func(string, ...any) (*sql.Rows, error), ops []*op) (map[string]claimState, error) {
	var ids []any
	for _, o := range ops {
		if o.finish != "" {
			ids = append(ids, o.finish)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	ids, in := padIDs(ids)
	rows, err := q(`SELECT id, claim, status FROM deliveries WHERE id IN `+in, ids...)
	if err != nil {
		return nil, fmt.Errorf("read claims: %w", err)
	}
	defer rows.Close()
	out := map[string]claimState{}
	for rows.Next() {
		var id string
		var c claimState
		if err := rows.Scan(&id, &c.claim, &c.status); err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, rows.Err()
}

func (s *Store) finishTx(tx *wtx, d *veil.Delivery, a *veil.Attempt, now time.Time) (stale bool, err error) {
	if c, ok := tx.claims[d.ID]; !ok || c.status != veil.DeliverySending || c.claim != d.Claim {
		return true, nil
	}
	// Finished in this batch: any other finish of it in the batch is stale.
	tx.claims[d.ID] = claimState{status: a.Status}
	attempt := d.Attempts + 1
	next := a.NextAt.UnixNano()
	if a.Status != veil.DeliveryPending {
		next = 0
	}
	tx.queue(`UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, detail = ?, http_status = ?, updated_at = ?, claim = ''
		WHERE id = ? AND claim = ?`, a.Status, attempt, next, a.Detail, a.HTTPStatus, now.UnixNano(), d.ID, d.Claim)
	row := &veil.AuditEntry{Time: now, Actor: "veil", Source: d.Source, EventType: d.EventType, EventID: d.EventID,
		Destination: d.Destination, Subject: d.Subject, HTTPStatus: a.HTTPStatus, Attempt: attempt, Detail: a.Detail}
	switch a.Status {
	case veil.DeliveryDelivered:
		// What left: the fields (pseudonymised ones marked) and their categories.
		row.Action, row.Outcome = veil.ActionDelivered, "delivered"
		row.FieldsKept, row.Categories = released(d), d.Categories
	case veil.DeliveryPending:
		row.Action, row.Outcome = veil.ActionRetry, "retry"
	default:
		row.Action, row.Outcome = veil.ActionDead, "dead"
	}
	if a.Latency > 0 {
		row.Detail = strings.TrimSpace(fmt.Sprintf("latency_ms=%d %s", a.Latency.Milliseconds(), a.Detail))
	}
	return false, s.appendTx(tx, row)
}

// released lists the fields a delivery sends: kept paths, and
// pseudonymised ones marked as such.
func released(d *veil.Delivery) []string {
	out := append([]string(nil), d.FieldsKept...)
	for _, p := range d.Pseudonymized {
		out = append(out, p+" (pseudonymised)")
	}
	return out
}

// ResetSending returns deliveries claimed by a process that stopped before
// finishing them to pending, due at once rather than when their lease
// would have ended: at least once, never lost. Only for a store no other
// process delivers from (SQLite, whose data folder serve locks).
func (s *Store) ResetSending(ctx context.Context) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(`UPDATE deliveries SET status = 'pending', next_attempt_at = ? WHERE status = 'sending'`, s.Now().UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// Deliveries lists deliveries with the given status (all when ""), newest
// first, without bodies.
func (s *Store) Deliveries(ctx context.Context, status string, limit int) ([]*veil.Delivery, error) {
	if status == "" {
		return s.deliveriesWhere(ctx, `1 = 1 ORDER BY d.updated_at DESC LIMIT ?`, limit)
	}
	return s.deliveriesWhere(ctx, `d.status = ? ORDER BY d.updated_at DESC LIMIT ?`, status, limit)
}

// Delivery returns one delivery without its body, or ErrNotFound.
func (s *Store) Delivery(ctx context.Context, id string) (*veil.Delivery, error) {
	ds, err := s.deliveriesWhere(ctx, `d.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, ErrDeliveryNotFound
	}
	return ds[0], nil
}

func (s *Store) deliveriesWhere(ctx context.Context, where string, args ...any) ([]*veil.Delivery, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.id, d.event_id, d.destination, d.status, d.detail, d.attempts,
		d.created_at, d.updated_at, d.next_attempt_at, e.source, e.event_type, d.subject
		FROM deliveries d JOIN events e ON e.id = d.event_id WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read delivery: %w", err)
	}
	defer rows.Close()
	var out []*veil.Delivery
	for rows.Next() {
		d := &veil.Delivery{}
		var created, updated, next int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.Destination, &d.Status, &d.Detail, &d.Attempts, &created, &updated,
			&next, &d.Source, &d.EventType, &d.Subject); err != nil {
			return nil, err
		}
		d.CreatedAt, d.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		if next > 0 {
			d.NextAttemptAt = time.Unix(0, next).UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// decodePaths decodes a delivery's stored path and category lists; a
// corrupt row is an error naming what it belongs to, never silently an
// empty list.
func decodePaths(owner, kept, pseudo, cats string, k, p, c *[]string) error {
	for _, l := range []struct {
		name, raw string
		dst       *[]string
	}{{"fields_kept", kept, k}, {"pseudonymized", pseudo, p}, {"categories", cats, c}} {
		if err := json.Unmarshal([]byte(l.raw), l.dst); err != nil {
			return fmt.Errorf("delivery %s: %s: %w", owner, l.name, err)
		}
	}
	return nil
}

// ErrDeliveryNotFound is returned for an unknown delivery.
var ErrDeliveryNotFound = veil.Errorf(veil.ENOTFOUND, "No such delivery.")

// ReplayDelivery puts a dead delivery back in the queue with the decision
// the current policy made again (nd: status, body, fields), keeping its id
// so the consumer can still deduplicate, and audits it as replayed by actor.
func (s *Store) ReplayDelivery(ctx context.Context, old *veil.Delivery, nd *veil.Delivery, actor string) error {
	return s.write(ctx, func(tx *wtx) error {
		var subject, status string
		var wrapped []byte
		err := tx.queryRow(`SELECT d.subject, d.status, k.wrapped FROM deliveries d JOIN events e ON e.id = d.event_id
			LEFT JOIN data_keys k ON k.epoch = e.key_epoch AND k.subject = d.subject
			WHERE d.id = ?`, old.ID).Scan(&subject, &status, &wrapped)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrDeliveryNotFound
		case err != nil:
			return fmt.Errorf("read delivery: %w", err)
		case status != veil.DeliveryDead:
			// Another replay (or request) got there first.
			return veil.Errorf(veil.ECONFLICT, "Only a dead delivery can be replayed; this one is %s.", status)
		}
		if wrapped == nil {
			return ErrGone
		}
		var sealed []byte
		if nd.Body != nil {
			key, err := open(s.vaultKey, wrapped, []byte(subject))
			if err != nil {
				return fmt.Errorf("unwrap data key: %w", err)
			}
			if sealed, err = seal(key, nd.Body, []byte(old.ID)); err != nil {
				return err
			}
		}
		kept, _ := json.Marshal(nonNil(nd.FieldsKept))
		pseudo, _ := json.Marshal(nonNil(nd.Pseudonymized))
		cats, _ := json.Marshal(nonNil(nd.Categories))
		now := s.Now().UnixNano()
		if _, err := tx.exec(`UPDATE deliveries SET status = ?, detail = ?, attempts = 0, http_status = 0, next_attempt_at = ?, updated_at = ?
			WHERE id = ?`, nd.Status, nd.Detail, now, now, old.ID); err != nil {
			return fmt.Errorf("replay delivery: %w", err)
		}
		if _, err := tx.exec(`INSERT INTO delivery_fields (id, fields_kept, pseudonymized, categories)
			VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET fields_kept = excluded.fields_kept,
			pseudonymized = excluded.pseudonymized, categories = excluded.categories`,
			old.ID, string(kept), string(pseudo), string(cats)); err != nil {
			return fmt.Errorf("replay delivery: %w", err)
		}
		if sealed == nil {
			_, err = tx.exec(`DELETE FROM outbound_bodies WHERE delivery_id = ?`, old.ID)
		} else {
			_, err = tx.exec(`INSERT INTO outbound_bodies (delivery_id, sealed) VALUES (?, ?)
				ON CONFLICT (delivery_id) DO UPDATE SET sealed = excluded.sealed`, old.ID, sealed)
		}
		if err != nil {
			return fmt.Errorf("replay delivery: %w", err)
		}
		return s.appendTx(tx, &veil.AuditEntry{Actor: actor, Source: old.Source, EventType: old.EventType,
			EventID: old.EventID, Destination: old.Destination, Subject: subject, Action: veil.ActionReplayed,
			Outcome: nd.Status, FieldsKept: nd.FieldsKept, FieldsDropped: nd.FieldsDropped, Categories: nd.Categories, Detail: nd.Detail})
	})
}

// QueueStats returns, per destination with any, the number of deliveries
// waiting (pending or being sent) and when the oldest of them was created:
// its event's payload expires retention.payload after that, and the
// delivery with it.
func (s *Store) QueueStats(ctx context.Context) ([]veil.QueueStat, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT destination, count(*), min(created_at) FROM deliveries
		WHERE status IN ('pending', 'sending') GROUP BY destination ORDER BY destination`)
	if err != nil {
		return nil, fmt.Errorf("read the queue: %w", err)
	}
	defer rows.Close()
	var out []veil.QueueStat
	for rows.Next() {
		var q veil.QueueStat
		var oldest int64
		if err := rows.Scan(&q.Destination, &q.Waiting, &oldest); err != nil {
			return nil, fmt.Errorf("read the queue: %w", err)
		}
		q.Oldest = time.Unix(0, oldest)
		out = append(out, q)
	}
	return out, rows.Err()
}

// DeliveredFields calls fn for every delivery that was or will be sent
// (pending, sending, delivered or dead), with its event type and the paths
// it carries: what the records-of-processing report aggregates.
func (s *Store) DeliveredFields(ctx context.Context, fn func(destination, eventType string, kept, pseudonymized, categories []string) error) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.destination, e.event_type, `+pathColumns+`
		FROM deliveries d JOIN events e ON e.id = d.event_id`+pathJoin+`WHERE d.status IN ('pending', 'sending', 'delivered', 'dead')`)
	if err != nil {
		return fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dest, et, kept, pseudo, cats string
		if err := rows.Scan(&dest, &et, &kept, &pseudo, &cats); err != nil {
			return err
		}
		var k, p, c []string
		if err := decodePaths(dest, kept, pseudo, cats, &k, &p, &c); err != nil {
			return err
		}
		if err := fn(dest, et, k, p, c); err != nil {
			return err
		}
	}
	return rows.Err()
}
