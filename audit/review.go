package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/veilhq/veil"
)

// ReviewDecide approves a held delivery (it joins the queue and is sent
// once rule.Approvers different people have approved it) or rejects it
// (it never is: its body is dropped; one rejection is enough), with an
// audit row naming who decided and why. rule.Barred (who last changed the
// destination's policy) may not approve when two or more must. A second
// approval by the same actor is ECONFLICT, as is a delivery that is not
// held; an unknown one is ENOTFOUND.
func (s *Store) ReviewDecide(ctx context.Context, id string, approve bool, actor, reason string, rule veil.ReviewRule) (*veil.Delivery, error) {
	if len(reason) > 500 {
		reason = reason[:500]
	}
	d := &veil.Delivery{ID: id}
	err := s.write(ctx, func(tx *wtx) error {
		err := tx.queryRowText(`SELECT d.destination, d.status, d.subject, d.event_id, e.source, e.event_type
			FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?`, id).
			Scan(&d.Destination, &d.Status, &d.Subject, &d.EventID, &d.Source, &d.EventType)
		if errors.Is(err, sql.ErrNoRows) {
			return veil.Errorf(veil.ENOTFOUND, "No such delivery.")
		} else if err != nil {
			return fmt.Errorf("read delivery: %w", err)
		}
		if d.Status != veil.DeliveryHeld {
			return veil.Errorf(veil.ECONFLICT, "This delivery is not waiting for review; it is %s.", d.Status)
		}
		now := s.Now()
		row := &veil.AuditEntry{Time: now, Actor: actor, Source: d.Source, EventType: d.EventType, EventID: d.EventID,
			Destination: d.Destination, Subject: d.Subject, Detail: reason}
		need := max(rule.Approvers, 1)
		if approve {
			if need > 1 && rule.Barred != "" && actor == rule.Barred {
				return veil.Errorf(veil.EFORBIDDEN, "You changed %s's policy in its last reload: two other people must approve what it releases.", d.Destination)
			}
			var n int
			if err := tx.queryRowText(`SELECT count(*) FROM approvals WHERE delivery_id = ? AND actor = ?`, id, actor).Scan(&n); err != nil {
				return fmt.Errorf("read approvals: %w", err)
			}
			if n > 0 {
				return veil.Errorf(veil.ECONFLICT, "You have approved this delivery already; it needs another person's approval.")
			}
			if _, err := tx.execText(`INSERT INTO approvals (delivery_id, actor, at) VALUES (?, ?, ?)`, id, actor, now.UnixNano()); err != nil {
				return fmt.Errorf("note approval: %w", err)
			}
			var got int
			if err := tx.queryRowText(`SELECT count(*) FROM approvals WHERE delivery_id = ?`, id).Scan(&got); err != nil {
				return fmt.Errorf("count approvals: %w", err)
			}
			row.Action = veil.ActionReviewApproved
			if got < need {
				row.Outcome = fmt.Sprintf("approved %d of %d", got, need)
				d.Detail = fmt.Sprintf("approved by %d of %d; waits for another person", got, need)
				if _, err := tx.execText(`UPDATE deliveries SET detail = ?, updated_at = ? WHERE id = ?`, d.Detail, now.UnixNano(), id); err != nil {
					return fmt.Errorf("note approval: %w", err)
				}
				return s.appendTx(tx, row)
			}
			d.Status, d.Detail, row.Outcome = veil.DeliveryPending, "approved by "+actor, "approved"
			if need > 1 {
				row.Outcome = fmt.Sprintf("approved %d of %d", got, need)
				d.Detail = fmt.Sprintf("approved by %d people, the last %s", got, actor)
			}
		} else {
			d.Status, d.Detail = veil.DeliveryRejected, "rejected by "+actor
			row.Action, row.Outcome = veil.ActionReviewRejected, "rejected"
			if _, err := tx.execText(`DELETE FROM outbound_bodies WHERE delivery_id = ?`, id); err != nil {
				return fmt.Errorf("drop rejected body: %w", err)
			}
		}
		if _, err := tx.execText(`DELETE FROM approvals WHERE delivery_id = ?`, id); err != nil {
			return fmt.Errorf("clear approvals: %w", err)
		}
		if _, err := tx.execText(`UPDATE deliveries SET status = ?, detail = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?`,
			d.Status, d.Detail, now.UnixNano(), now.UnixNano(), id); err != nil {
			return fmt.Errorf("decide review: %w", err)
		}
		return s.appendTx(tx, row)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ExpireReviews rejects the deliveries held longer than their
// destination's ttl (by the store's clock), each with a review_expired
// row; their bodies are dropped. It returns how many per destination.
func (s *Store) ExpireReviews(ctx context.Context, ttl map[string]time.Duration) (map[string]int64, error) {
	out := map[string]int64{}
	for dest, d := range ttl {
		err := s.writeBackground(ctx, func(tx *wtx) error {
			now := s.Now()
			rows, err := tx.queryText(`SELECT d.id, d.subject, d.event_id, e.source, e.event_type FROM deliveries d
				JOIN events e ON e.id = d.event_id WHERE d.status = 'held' AND d.destination = ? AND d.created_at < ?`,
				dest, now.Add(-d).UnixNano())
			if err != nil {
				return fmt.Errorf("find expired reviews: %w", err)
			}
			var held []*veil.Delivery
			for rows.Next() {
				h := &veil.Delivery{Destination: dest}
				if err := rows.Scan(&h.ID, &h.Subject, &h.EventID, &h.Source, &h.EventType); err != nil {
					rows.Close()
					return err
				}
				held = append(held, h)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, h := range held {
				if _, err := tx.execText(`UPDATE deliveries SET status = 'rejected', detail = ?, updated_at = ? WHERE id = ?`,
					fmt.Sprintf("expired: no decision within review_ttl (%s)", d), now.UnixNano(), h.ID); err != nil {
					return err
				}
				if _, err := tx.execText(`DELETE FROM outbound_bodies WHERE delivery_id = ?`, h.ID); err != nil {
					return err
				}
				if _, err := tx.execText(`DELETE FROM approvals WHERE delivery_id = ?`, h.ID); err != nil {
					return err
				}
				if err := s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionReviewExpired, Actor: "veil",
					Source: h.Source, EventType: h.EventType, EventID: h.EventID, Destination: dest, Subject: h.Subject,
					Outcome: "expired", Detail: "no decision within " + d.String()}); err != nil {
					return err
				}
			}
			out[dest] = int64(len(held))
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// Held returns the deliveries waiting for review, oldest (the first to
// expire) first, at most limit, with the categories each would release
// but not their bodies (nothing is decrypted), and how many wait in all.
func (s *Store) Held(ctx context.Context, limit int) ([]*veil.Delivery, int64, error) {
	var n int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE status = 'held'`).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("count held deliveries: %w", err)
	}
	ds, err := s.deliveriesWhere(ctx, `d.status = 'held' ORDER BY d.created_at, d.id LIMIT ?`, limit)
	if err != nil || len(ds) == 0 {
		return ds, n, err
	}
	ids := make([]string, len(ds))
	byID := map[string]*veil.Delivery{}
	for i, d := range ds {
		ids[i], byID[d.ID] = d.ID, d
	}
	in, args := inList(ids)
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, categories FROM delivery_fields WHERE id IN `+in, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("read held deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, cats string
		if err := rows.Scan(&id, &cats); err != nil {
			return nil, 0, fmt.Errorf("read held deliveries: %w", err)
		}
		if err := json.Unmarshal([]byte(cats), &byID[id].Categories); err != nil {
			return nil, 0, fmt.Errorf("delivery %s: categories: %w", id, err)
		}
	}
	return ds, n, rows.Err()
}
