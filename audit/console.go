package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// ListEvents returns stored events, newest first, without their payloads:
// keyset pages on the id (ids sort by time), so a page costs the same at
// the millionth event as at the first.
func (s *Store) ListEvents(ctx context.Context, q veil.EventQuery) ([]veil.EventSummary, error) {
	var where []string
	var args []any
	for _, c := range []struct{ cond, v string }{{"id = ?", q.ID}, {"source = ?", q.Source},
		{"event_type = ?", q.EventType}, {"id < ?", q.Before}} {
		if c.v != "" {
			where, args = append(where, c.cond), append(args, c.v)
		}
	}
	query := `SELECT id, source, vendor, event_type, subject, received_at, ` + payloadHeld("events") + ` FROM events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	limit := q.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.rdb.QueryContext(ctx, query+fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []veil.EventSummary
	for rows.Next() {
		var e veil.EventSummary
		var nanos int64
		if err := rows.Scan(&e.ID, &e.Source, &e.Vendor, &e.EventType, &e.Subject, &nanos, &e.Held); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.ReceivedAt = time.Unix(0, nanos).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditPage returns one page of audit rows, newest first (f.Limit rows
// before f.BeforeSeq).
func (s *Store) AuditPage(ctx context.Context, f veil.AuditFilter) ([]veil.AuditEntry, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	var out []veil.AuditEntry
	err := s.Export(ctx, f, func(e *veil.AuditEntry) error {
		out = append(out, *e)
		return nil
	})
	return out, err
}

// DeliveryCounts counts the final delivery rows (delivered, dead, filtered,
// blocked_leak) per destination, hour and action since since.
func (s *Store) DeliveryCounts(ctx context.Context, since time.Time) ([]veil.DeliveryCount, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT destination, substr(time, 1, 13), action, count(*) FROM audit
		WHERE time >= ? AND action IN ('delivered', 'dead', 'filtered', 'blocked_leak') AND destination <> ''
		GROUP BY destination, substr(time, 1, 13), action`, since.UTC().Format(veil.AuditTimeFormat))
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	var out []veil.DeliveryCount
	for rows.Next() {
		var c veil.DeliveryCount
		var hour string
		if err := rows.Scan(&c.Destination, &hour, &c.Action, &c.Count); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", err)
		}
		if c.Hour, err = time.Parse("2006-01-02T15", hour); err != nil {
			return nil, fmt.Errorf("count deliveries: bad hour %q", hour)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
