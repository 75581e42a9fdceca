package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/veilhq/veil"
)

// DeadSince counts, per destination, the deliveries that went dead at or
// after since (not those an erasure cancelled: nothing failed there).
func (s *Store) DeadSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	return s.countBy(ctx, `SELECT destination, count(*) FROM audit WHERE time >= ? AND action = 'dead'
		AND outcome <> 'erased' AND destination <> '' GROUP BY destination`, since)
}

// ReviewsExpiredSince counts, per destination, the held deliveries that
// waited past review_ttl at or after since.
func (s *Store) ReviewsExpiredSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	return s.countBy(ctx, `SELECT destination, count(*) FROM audit WHERE time >= ? AND action = 'review_expired'
		GROUP BY destination`, since)
}

// SignatureFailuresSince counts, per source, the webhooks refused for
// their signature at or after since (the per-minute rejected rows carry
// their count in attempt).
func (s *Store) SignatureFailuresSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	return s.countBy(ctx, `SELECT source, coalesce(sum(attempt), 0) FROM audit WHERE time >= ? AND action = 'rejected'
		AND detail LIKE 'reason=invalid_signature%' GROUP BY source`, since)
}

func (s *Store) countBy(ctx context.Context, query string, since time.Time) (map[string]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, query, since.UTC().Format(veil.AuditTimeFormat))
	if err != nil {
		return nil, fmt.Errorf("count audit rows: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count audit rows: %w", err)
		}
		out[k] = n
	}
	return out, rows.Err()
}

// OpenAlert records an alert as open unless it is already: true when this
// call opened it (then its caller sends the message), with an
// alert_opened row naming what it concerns.
func (s *Store) OpenAlert(ctx context.Context, a veil.Alert) (bool, error) {
	opened := false
	err := s.write(ctx, func(tx *wtx) error {
		now := s.Now()
		res, err := tx.exec(`INSERT INTO alerts (key, opened_at, sent_at, summary) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			a.Key(), now.UnixNano(), now.UnixNano(), a.Summary)
		if err != nil {
			return fmt.Errorf("open alert: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		opened = true
		return s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionAlertOpened, Actor: "veil", Source: a.Source,
			Destination: a.Destination, Outcome: a.Condition, Detail: a.Summary})
	})
	return opened, err
}

// RemindAlert marks an open alert as sent again when its last message is
// older than before: true when this call did (its caller sends the
// reminder).
func (s *Store) RemindAlert(ctx context.Context, key string, before time.Time) (bool, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(`UPDATE alerts SET sent_at = ? WHERE key = ? AND sent_at < ?`, s.Now().UnixNano(), key, before.UnixNano())
		if err != nil {
			return fmt.Errorf("remind alert: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

// ResolveAlert ends an open alert: true when this call did (its caller
// sends the resolve message), with an alert_resolved row.
func (s *Store) ResolveAlert(ctx context.Context, a veil.Alert) (bool, error) {
	resolved := false
	err := s.write(ctx, func(tx *wtx) error {
		now := s.Now()
		var opened int64
		err := tx.queryRow(`SELECT opened_at FROM alerts WHERE key = ?`, a.Key()).Scan(&opened)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // not open (or resolved by another replica)
		} else if err != nil {
			return fmt.Errorf("resolve alert: %w", err)
		}
		res, err := tx.exec(`DELETE FROM alerts WHERE key = ?`, a.Key())
		if err != nil {
			return fmt.Errorf("resolve alert: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		resolved = true
		return s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionAlertResolved, Actor: "veil", Source: a.Source,
			Destination: a.Destination, Outcome: a.Condition,
			Detail: fmt.Sprintf("%s (open for %s)", a.Summary, now.Sub(time.Unix(0, opened)).Round(time.Second))})
	})
	return resolved, err
}

// OpenAlerts lists the alerts open now.
func (s *Store) OpenAlerts(ctx context.Context) ([]veil.Alert, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT key, opened_at, summary FROM alerts ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer rows.Close()
	var out []veil.Alert
	for rows.Next() {
		var key string
		var at int64
		var a veil.Alert
		if err := rows.Scan(&key, &at, &a.Summary); err != nil {
			return nil, fmt.Errorf("read alerts: %w", err)
		}
		a = veil.ParseAlertKey(key, a.Summary)
		a.Since = time.Unix(0, at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
