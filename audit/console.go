package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// ListEvents returns stored events, newest first, without their payloads,
// each with its deliveries' outcomes: keyset pages on the id (ids sort by
// time), so a page costs the same at the millionth event as at the first.
func (s *Store) ListEvents(ctx context.Context, q veil.EventQuery) ([]veil.EventSummary, error) {
	var where []string
	var args []any
	for _, c := range []struct{ cond, v string }{{"e.id = ?", q.ID}, {"e.source = ?", q.Source},
		{"e.id < ?", q.Before}, {"e.id > ?", q.After}} {
		if c.v != "" {
			where, args = append(where, c.cond), append(args, c.v)
		}
	}
	if q.EventType != "" {
		where, args = append(where, "(e.normal_type = ? OR lower(e.event_type) = lower(?))"), append(args, q.EventType, q.EventType)
	}
	if q.ByRefs {
		var any []string
		if len(q.Subjects) > 0 {
			in, a := inList(q.Subjects)
			any, args = append(any, "e.subject IN "+in), append(args, a...)
		}
		if len(q.Jobs) > 0 {
			in, a := inList(q.Jobs)
			any, args = append(any, "(e.job IN "+in+" AND e.job <> '')"), append(args, a...)
		}
		if len(any) == 0 {
			return nil, nil
		}
		where = append(where, "("+strings.Join(any, " OR ")+")")
	}
	if !q.Since.IsZero() {
		where, args = append(where, "e.received_at >= ?"), append(args, q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "e.received_at < ?"), append(args, q.Until.UnixNano())
	}
	if q.Outcome != "" {
		// By the event's deliveries (deliveries_event), not by every
		// delivery in that status: "|| ''" keeps SQLite's planner off the
		// status index, which would read them all for each event.
		cond := "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status || '' = ?"
		args = append(args, q.Outcome)
		if q.Destination != "" {
			cond, args = cond+" AND d.destination || '' = ?", append(args, q.Destination)
		}
		where = append(where, cond+")")
	}
	query := `SELECT e.id, e.source, e.vendor, e.event_type, e.normal_type, e.subject, e.received_at, ` + payloadHeld("e") + ` FROM events e`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	limit := q.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	order := "DESC"
	if q.After != "" && q.Before == "" {
		order = "ASC" // the page just newer, read upwards, then turned
	}
	rows, err := s.rdb.QueryContext(ctx, query+fmt.Sprintf(" ORDER BY e.id %s LIMIT %d", order, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []veil.EventSummary
	for rows.Next() {
		var e veil.EventSummary
		var nanos int64
		if err := rows.Scan(&e.ID, &e.Source, &e.Vendor, &e.EventType, &e.NormalType, &e.Subject, &nanos, &e.Held); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.ReceivedAt = time.Unix(0, nanos).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if order == "ASC" {
		slices.Reverse(out)
	}
	return out, s.outcomes(ctx, out)
}

// outcomes fills in each event's deliveries' states, in one statement.
func (s *Store) outcomes(ctx context.Context, evs []veil.EventSummary) error {
	if len(evs) == 0 {
		return nil
	}
	ids := make([]string, len(evs))
	at := map[string]int{}
	for i, e := range evs {
		ids[i], at[e.ID] = e.ID, i
	}
	in, args := inList(ids)
	rows, err := s.rdb.QueryContext(ctx, `SELECT event_id, destination, status FROM deliveries WHERE event_id IN `+in+
		` ORDER BY event_id, destination`, args...)
	if err != nil {
		return fmt.Errorf("list events' outcomes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var o veil.Outcome
		if err := rows.Scan(&id, &o.Destination, &o.Status); err != nil {
			return fmt.Errorf("list events' outcomes: %w", err)
		}
		if i, ok := at[id]; ok {
			evs[i].Outcomes = append(evs[i].Outcomes, o)
		}
	}
	return rows.Err()
}

// FindRefs returns the keyed hashes of every reference of the person ref
// belongs to, for finding her events: through the subject links, or the
// reference itself when an event was stored under it; nil when neither.
// Unlike Person it never scans the audit log (a search tries several
// references that do not exist for each id typed).
func (s *Store) FindRefs(ctx context.Context, ref string) ([]string, error) {
	person, err := s.personOfRef(ctx, ref, false)
	if errors.Is(err, ErrUnknownSubject) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return s.aliases(ctx, s.rdb, person)
}

// JobHashes are the keyed hashes a job id would be stored under, for each
// source named.
func (s *Store) JobHashes(sources []string, id string) []string {
	out := make([]string, len(sources))
	for i, src := range sources {
		out[i] = s.SubjectHash(src + ":job:" + id)
	}
	return out
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

// Chart steps: the width of DeliveryCounts' buckets.
const (
	Step10m = 10 * time.Minute
	Step1h  = time.Hour
	Step1d  = 24 * time.Hour
)

// stepPrefix is how many characters of an audit time name a bucket, and
// their layout.
var stepPrefix = map[time.Duration]struct {
	n              int
	suffix, layout string // the bucket with suffix parses with layout
}{Step10m: {15, "0", "2006-01-02T15:04"}, Step1h: {13, "", "2006-01-02T15"}, Step1d: {10, "", "2006-01-02"}}

// DeliveryCounts counts the final delivery rows (delivered, dead, filtered,
// blocked_leak) per destination, step (Step10m, Step1h or Step1d) and
// action since since. Hour holds each bucket's start.
func (s *Store) DeliveryCounts(ctx context.Context, since time.Time, step time.Duration) ([]veil.DeliveryCount, error) {
	p, ok := stepPrefix[step]
	if !ok {
		return nil, fmt.Errorf("count deliveries: no step %s", step)
	}
	rows, err := s.rdb.QueryContext(ctx, fmt.Sprintf(`SELECT destination, substr(time, 1, %d), action, count(*) FROM audit
		WHERE time >= ? AND action IN ('delivered', 'dead', 'filtered', 'blocked_leak') AND destination <> ''
		GROUP BY destination, substr(time, 1, %d), action`, p.n, p.n), since.UTC().Format(veil.AuditTimeFormat))
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	var out []veil.DeliveryCount
	for rows.Next() {
		var c veil.DeliveryCount
		var bucket string
		if err := rows.Scan(&c.Destination, &bucket, &c.Action, &c.Count); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", err)
		}
		if c.Hour, err = time.Parse(p.layout, bucket+p.suffix); err != nil {
			return nil, fmt.Errorf("count deliveries: bad bucket %q", bucket)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// InboundCounts counts, per source since since, the events accepted
// (received and reconciled rows) and the webhooks refused, by reason (the
// per-minute rejected rows carry their count in attempt).
func (s *Store) InboundCounts(ctx context.Context, since time.Time) ([]veil.InboundCount, error) {
	at := since.UTC().Format(veil.AuditTimeFormat)
	rows, err := s.rdb.QueryContext(ctx, `SELECT source, action, count(*) FROM audit WHERE time >= ?
		AND action IN ('received', 'reconciled') GROUP BY source, action`, at)
	if err != nil {
		return nil, fmt.Errorf("count inbound: %w", err)
	}
	var out []veil.InboundCount
	for rows.Next() {
		var c veil.InboundCount
		if err := rows.Scan(&c.Source, &c.Action, &c.Count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("count inbound: %w", err)
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count inbound: %w", err)
	}
	rows, err = s.rdb.QueryContext(ctx, `SELECT source, detail, attempt FROM audit WHERE time >= ? AND action = 'rejected'`, at)
	if err != nil {
		return nil, fmt.Errorf("count rejections: %w", err)
	}
	defer rows.Close()
	byKey := map[[2]string]int64{}
	for rows.Next() {
		var src, detail string
		var n int64
		if err := rows.Scan(&src, &detail, &n); err != nil {
			return nil, fmt.Errorf("count rejections: %w", err)
		}
		reason, _, _ := strings.Cut(strings.TrimPrefix(detail, "reason="), " ")
		byKey[[2]string{src, reason}] += max(n, 1)
	}
	for k, n := range byKey {
		out = append(out, veil.InboundCount{Source: k[0], Action: veil.ActionRejected, Reason: k[1], Count: n})
	}
	slices.SortFunc(out, func(a, b veil.InboundCount) int {
		return strings.Compare(a.Source+a.Action+a.Reason, b.Source+b.Action+b.Reason)
	})
	return out, rows.Err()
}

// LastErrors returns, per destination, its latest failed attempt (a retry
// or dead row) since since.
func (s *Store) LastErrors(ctx context.Context, since time.Time) (map[string]veil.AuditEntry, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT max(seq) FROM audit WHERE time >= ? AND action IN ('retry', 'dead')
		AND outcome <> 'erased' AND destination <> '' GROUP BY destination`, since.UTC().Format(veil.AuditTimeFormat))
	if err != nil {
		return nil, fmt.Errorf("read last errors: %w", err)
	}
	var seqs []int64
	for rows.Next() {
		var q int64
		if err := rows.Scan(&q); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read last errors: %w", err)
		}
		seqs = append(seqs, q)
	}
	rows.Close()
	out := map[string]veil.AuditEntry{}
	for _, q := range seqs {
		err := s.Export(ctx, veil.AuditFilter{BeforeSeq: q + 1, Limit: 1}, func(e *veil.AuditEntry) error {
			out[e.Destination] = *e
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
