package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// PauseDestination holds a destination's deliveries back: no replica claims
// them until ResumeDestination. Audited with actor and reason. ECONFLICT
// when it is paused already.
func (s *Store) PauseDestination(ctx context.Context, destination, actor, reason string) error {
	return s.write(ctx, func(tx *wtx) error {
		now := s.Now()
		res, err := tx.exec(`INSERT INTO paused_destinations (destination, paused_at, actor, reason) VALUES (?, ?, ?, ?)
			ON CONFLICT (destination) DO NOTHING`, destination, now.UnixNano(), actor, reason)
		if err != nil {
			return fmt.Errorf("pause destination: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return veil.Errorf(veil.ECONFLICT, "%s is paused already.", destination)
		}
		return s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionDestinationPaused, Actor: actor,
			Destination: destination, Outcome: "paused", Detail: reason})
	})
}

// ResumeDestination lets a paused destination's deliveries go again.
// ECONFLICT when it is not paused.
func (s *Store) ResumeDestination(ctx context.Context, destination, actor string) error {
	return s.write(ctx, func(tx *wtx) error {
		now := s.Now()
		var since int64
		err := tx.queryRow(`SELECT paused_at FROM paused_destinations WHERE destination = ?`, destination).Scan(&since)
		if errors.Is(err, sql.ErrNoRows) {
			return veil.Errorf(veil.ECONFLICT, "%s is not paused.", destination)
		} else if err != nil {
			return fmt.Errorf("resume destination: %w", err)
		}
		if _, err := tx.exec(`DELETE FROM paused_destinations WHERE destination = ?`, destination); err != nil {
			return fmt.Errorf("resume destination: %w", err)
		}
		return s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionDestinationResumed, Actor: actor,
			Destination: destination, Outcome: "resumed",
			Detail: "paused for " + now.Sub(time.Unix(0, since)).Round(time.Second).String()})
	})
}

// Paused lists the paused destinations, by name.
func (s *Store) Paused(ctx context.Context) ([]veil.Pause, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT destination, paused_at, actor, reason FROM paused_destinations ORDER BY destination`)
	if err != nil {
		return nil, fmt.Errorf("read paused destinations: %w", err)
	}
	defer rows.Close()
	var out []veil.Pause
	for rows.Next() {
		var p veil.Pause
		var at int64
		if err := rows.Scan(&p.Destination, &at, &p.Actor, &p.Reason); err != nil {
			return nil, fmt.Errorf("read paused destinations: %w", err)
		}
		p.Since = time.Unix(0, at).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// pausedIn reads the paused destinations inside a claim's transaction.
func pausedIn(tx *wtx) (map[string]bool, error) {
	rows, err := tx.query(`SELECT destination FROM paused_destinations`)
	if err != nil {
		return nil, fmt.Errorf("read paused destinations: %w", err)
	}
	names, err := readStrings(rows)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// sqlString quotes one of Veil's own constants as an SQL literal.
func sqlString(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// replayable is true for a delivery whose event can be decided again: its
// payload is held (or the ATS holds it) and its subject's key is not shred.
const replayable = `(e.upstream IS NOT NULL OR (EXISTS (SELECT 1 FROM payloads p WHERE p.event_id = e.id)
	AND EXISTS (SELECT 1 FROM data_keys k WHERE k.epoch = e.key_epoch AND k.subject = d.subject)))`

// DeadLetters returns a page of the dead-letter inbox and the counts of
// everything q matches. Keyset paging on (updated_at, id): a page costs
// the same deep in the inbox as at its start.
func (s *Store) DeadLetters(ctx context.Context, q veil.DeadQuery) (veil.DeadPage, error) {
	where := []string{"d.status = 'dead'"}
	var args []any
	if q.Destination != "" {
		where, args = append(where, "d.destination = ?"), append(args, q.Destination)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "d.updated_at >= ?"), append(args, q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "d.updated_at < ?"), append(args, q.Until.UnixNano())
	}
	if q.HTTPStatus != 0 {
		where, args = append(where, "d.http_status = ?"), append(args, q.HTTPStatus)
	}
	if q.Reason != "" {
		if !slices.Contains(veil.DeadReasons, q.Reason) {
			return veil.DeadPage{}, veil.Errorf(veil.EINVALID, "Unknown reason; reasons are %s.", strings.Join(veil.DeadReasons, ", "))
		}
		// The reasons' prefixes do not overlap: a reason is its own
		// prefixes, "other" none of anyone's.
		var own, all []string
		for _, r := range veil.DeadReasons {
			for _, p := range veil.DeadPrefixes(r) {
				all = append(all, "d.detail LIKE "+sqlString(p+"%"))
				if r == q.Reason {
					own = append(own, all[len(all)-1])
				}
			}
		}
		if q.Reason == "other" {
			where = append(where, "NOT ("+strings.Join(all, " OR ")+")")
		} else {
			where = append(where, "("+strings.Join(own, " OR ")+")")
		}
	}
	from := ` FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ` + strings.Join(where, " AND ")
	var page veil.DeadPage
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(CASE WHEN `+replayable+` THEN 1 ELSE 0 END), 0)`+from, args...).
		Scan(&page.Total, &page.Replayable); err != nil {
		return page, fmt.Errorf("count dead letters: %w", err)
	}
	order, cursor := "DESC", q.Before
	if q.After != "" {
		order, cursor = "ASC", q.After
	}
	if cursor != "" {
		at, id, ok := strings.Cut(cursor, ".")
		nanos, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil {
			return page, veil.Errorf(veil.EINVALID, "That page cursor is not one Veil made.")
		}
		op := map[string]string{"DESC": "<", "ASC": ">"}[order]
		from += fmt.Sprintf(" AND (d.updated_at %s ? OR (d.updated_at = ? AND d.id %s ?))", op, op)
		args = append(args, nanos, nanos, id)
	}
	query := `SELECT d.id, d.event_id, d.destination, d.detail, d.http_status, d.attempts, d.created_at, d.updated_at,
		e.source, e.event_type, d.subject, ` + replayable + from + ` ORDER BY d.updated_at ` + order + `, d.id ` + order
	limit := q.Limit
	if limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", limit+1) // one more: is there a further page?
	}
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return page, fmt.Errorf("read dead letters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d := &veil.Delivery{Status: veil.DeliveryDead}
		var created, updated int64
		var ok bool
		if err := rows.Scan(&d.ID, &d.EventID, &d.Destination, &d.Detail, &d.HTTPStatus, &d.Attempts, &created, &updated,
			&d.Source, &d.EventType, &d.Subject, &ok); err != nil {
			return page, fmt.Errorf("read dead letters: %w", err)
		}
		d.CreatedAt, d.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		page.Letters = append(page.Letters, veil.DeadLetter{Delivery: d, Reason: veil.DeadReason(d.Detail), Replayable: ok,
			Cursor: strconv.FormatInt(updated, 10) + "." + d.ID})
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("read dead letters: %w", err)
	}
	more := limit > 0 && len(page.Letters) > limit
	if more {
		page.Letters = page.Letters[:limit]
	}
	if order == "ASC" {
		slices.Reverse(page.Letters)
	}
	if n := len(page.Letters); n > 0 {
		first, last := page.Letters[0].Cursor, page.Letters[n-1].Cursor
		switch {
		case order == "DESC":
			if more {
				page.Older = last
			}
			if cursor != "" {
				page.Newer = first
			}
		default:
			page.Older = last
			if more {
				page.Newer = first
			}
		}
	}
	return page, nil
}
