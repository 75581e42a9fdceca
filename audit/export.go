package audit

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// ExportFilter selects audit rows; zero fields select everything.
type ExportFilter struct {
	Since, Until time.Time
	Destination  string
	Action       string
	Subject      string // a keyed subject hash (SubjectHash of the reference)
}

// Export calls fn for every audit row that matches f, in seq order,
// streaming: memory does not grow with the number of rows.
func (s *Store) Export(ctx context.Context, f ExportFilter, fn func(*veil.AuditEntry) error) error {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, f.Since.UTC().Format(veil.AuditTimeFormat))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, f.Until.UTC().Format(veil.AuditTimeFormat))
	}
	for _, c := range []struct{ col, v string }{{"destination", f.Destination}, {"action", f.Action}, {"subject", f.Subject}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	q := `SELECT seq, time, action, actor, source, event_type, event_id, destination, subject, outcome, http_status,
		attempt, fields_kept, fields_dropped, detail, prev_hash, hash FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.rdb.QueryContext(ctx, q+" ORDER BY seq", args...)
	if err != nil {
		return fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	var e veil.AuditEntry
	for rows.Next() {
		var t, kept, dropped string
		e.FieldsKept, e.FieldsDropped = nil, nil
		if err := rows.Scan(&e.Seq, &t, &e.Action, &e.Actor, &e.Source, &e.EventType, &e.EventID, &e.Destination,
			&e.Subject, &e.Outcome, &e.HTTPStatus, &e.Attempt, &kept, &dropped, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return fmt.Errorf("read audit row: %w", err)
		}
		if e.Time, err = time.Parse(veil.AuditTimeFormat, t); err != nil {
			return fmt.Errorf("audit row %d: bad time: %w", e.Seq, err)
		}
		if err := json.Unmarshal([]byte(kept), &e.FieldsKept); err != nil {
			return fmt.Errorf("audit row %d: fields_kept: %w", e.Seq, err)
		}
		if err := json.Unmarshal([]byte(dropped), &e.FieldsDropped); err != nil {
			return fmt.Errorf("audit row %d: fields_dropped: %w", e.Seq, err)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// WriteExport streams the rows that match f to w as csv or jsonl, with the
// columns of veil.AuditColumns in order.
func (s *Store) WriteExport(ctx context.Context, w io.Writer, format string, f ExportFilter) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var fn func(*veil.AuditEntry) error
	switch format {
	case "jsonl":
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		fn = func(e *veil.AuditEntry) error { return enc.Encode(e) }
	case "csv":
		cw := csv.NewWriter(bw)
		if err := cw.Write(veil.AuditColumns); err != nil {
			return err
		}
		rec := make([]string, len(veil.AuditColumns))
		n := 0
		fn = func(e *veil.AuditEntry) error {
			kept, _ := json.Marshal(nonNil(e.FieldsKept))
			dropped, _ := json.Marshal(nonNil(e.FieldsDropped))
			rec = append(rec[:0], strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(veil.AuditTimeFormat), e.Action,
				e.Actor, e.Source, e.EventType, e.EventID, e.Destination, e.Subject, e.Outcome, strconv.Itoa(e.HTTPStatus),
				strconv.Itoa(e.Attempt), string(kept), string(dropped), e.Detail, e.PrevHash, e.Hash)
			if n++; n%1024 == 0 {
				cw.Flush()
			}
			return cw.Write(rec)
		}
		defer cw.Flush()
	default:
		return veil.Errorf(veil.EINVALID, "Unknown export format %q; use csv or jsonl.", format)
	}
	if err := s.Export(ctx, f, fn); err != nil {
		return err
	}
	return bw.Flush()
}

// Verify checks the whole audit chain in the database, from its start or
// from the anchor retention left, and returns the rows checked or the
// *veil.ChainError of the first bad row.
func (s *Store) Verify(ctx context.Context) (int64, error) {
	var v veil.ChainVerifier
	var seq int64
	var hash string
	switch err := s.rdb.QueryRowContext(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&seq, &hash); {
	case err == nil:
		v.Anchor(seq, hash)
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("read anchor: %w", err)
	default:
		v.Anchor(0, "")
	}
	err := s.Export(ctx, ExportFilter{}, v.Next)
	return v.Rows, err
}

// VerifyJSONL checks an exported JSONL file: a complete export, from the
// first row or from an anchor.
func VerifyJSONL(r io.Reader) (int64, error) {
	var v veil.ChainVerifier
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var e veil.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return v.Rows, fmt.Errorf("line %d: not an audit row: %w", line, err)
		}
		if err := v.Next(&e); err != nil {
			return v.Rows, err
		}
	}
	return v.Rows, sc.Err()
}
