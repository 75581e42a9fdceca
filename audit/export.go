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

// Export calls fn for every audit row that matches f, in seq order,
// streaming: memory does not grow with the number of rows.
func (s *Store) Export(ctx context.Context, f veil.AuditFilter, fn func(*veil.AuditEntry) error) error {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, f.Since.UTC().Format(veil.AuditTimeFormat))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, f.Until.UTC().Format(veil.AuditTimeFormat))
	}
	for _, c := range []struct {
		col string
		vs  []string
	}{{"destination", f.Destinations}, {"action", f.Actions}, {"actor", f.Actors}, {"subject", append([]string{f.Subject}, f.Subjects...)}, {"event_id", []string{f.EventID}}} {
		if c.col == "subject" && c.vs[0] == "" {
			c.vs = c.vs[1:]
		}
		if len(c.vs) == 0 || (len(c.vs) == 1 && c.vs[0] == "") {
			continue
		}
		where = append(where, c.col+" IN (?"+strings.Repeat(", ?", len(c.vs)-1)+")")
		for _, v := range c.vs {
			args = append(args, v)
		}
	}
	q := `SELECT seq, time, action, actor, source, event_type, event_id, destination, subject, outcome, http_status,
		attempt, fields_kept, fields_dropped, categories, detail, prev_hash, hash FROM audit`
	if f.BeforeSeq > 0 {
		where, args = append(where, "seq < ?"), append(args, f.BeforeSeq)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(" ORDER BY seq DESC LIMIT %d", f.Limit) // a page, newest first (keyset on seq)
	} else {
		q += " ORDER BY seq"
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	var e veil.AuditEntry
	for rows.Next() {
		var t, kept, dropped, cats string
		e.FieldsKept, e.FieldsDropped, e.Categories = nil, nil, nil
		if err := rows.Scan(&e.Seq, &t, &e.Action, &e.Actor, &e.Source, &e.EventType, &e.EventID, &e.Destination,
			&e.Subject, &e.Outcome, &e.HTTPStatus, &e.Attempt, &kept, &dropped, &cats, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
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
		if err := json.Unmarshal([]byte(cats), &e.Categories); err != nil {
			return fmt.Errorf("audit row %d: categories: %w", e.Seq, err)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// WriteExport streams the rows that match f to w as csv or jsonl, with the
// columns of veil.AuditColumns in order.
func (s *Store) WriteExport(ctx context.Context, w io.Writer, format string, f veil.AuditFilter) error {
	enc, err := NewExportEncoder(w, format)
	if err != nil {
		return err
	}
	if err := s.Export(ctx, f, enc.Write); err != nil {
		return err
	}
	return enc.Flush()
}

// ExportEncoder writes audit rows as csv or jsonl, with the columns of
// veil.AuditColumns in order; Flush when done.
type ExportEncoder struct {
	bw   *bufio.Writer
	json *json.Encoder
	csv  *csv.Writer
	rec  []string
	n    int
}

// NewExportEncoder returns an encoder of format (csv or jsonl) writing to
// w; a CSV starts with its header.
func NewExportEncoder(w io.Writer, format string) (*ExportEncoder, error) {
	e := &ExportEncoder{bw: bufio.NewWriterSize(w, 64<<10)}
	switch format {
	case "jsonl":
		e.json = json.NewEncoder(e.bw)
		e.json.SetEscapeHTML(false)
	case "csv":
		e.csv = csv.NewWriter(e.bw)
		e.rec = make([]string, len(veil.AuditColumns))
		if err := e.csv.Write(veil.AuditColumns); err != nil {
			return nil, err
		}
	default:
		return nil, veil.Errorf(veil.EINVALID, "Unknown export format %q; use csv or jsonl.", format)
	}
	return e, nil
}

// Write writes one row.
func (e *ExportEncoder) Write(r *veil.AuditEntry) error {
	if e.json != nil {
		r.Categories = nonNil(r.Categories)
		return e.json.Encode(r)
	}
	kept, _ := json.Marshal(nonNil(r.FieldsKept))
	dropped, _ := json.Marshal(nonNil(r.FieldsDropped))
	cats, _ := json.Marshal(nonNil(r.Categories))
	e.rec = append(e.rec[:0], strconv.FormatInt(r.Seq, 10), r.Time.UTC().Format(veil.AuditTimeFormat), r.Action,
		r.Actor, r.Source, r.EventType, r.EventID, r.Destination, r.Subject, r.Outcome, strconv.Itoa(r.HTTPStatus),
		strconv.Itoa(r.Attempt), string(kept), string(dropped), string(cats), r.Detail, r.PrevHash, r.Hash)
	if e.n++; e.n%1024 == 0 {
		e.csv.Flush()
	}
	return e.csv.Write(e.rec)
}

// Flush writes what is buffered.
func (e *ExportEncoder) Flush() error {
	if e.csv != nil {
		e.csv.Flush()
		if err := e.csv.Error(); err != nil {
			return err
		}
	}
	return e.bw.Flush()
}

// SeqRange returns the first and last sequence numbers in the audit log
// (0, 0 when it is empty): how far an export or a verification has come.
func (s *Store) SeqRange(ctx context.Context) (first, last int64, err error) {
	err = s.rdb.QueryRowContext(ctx, `SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM audit`).Scan(&first, &last)
	if err != nil {
		return 0, 0, fmt.Errorf("read the audit log's range: %w", err)
	}
	return first, last, nil
}

// Verify checks the whole audit chain in the database, from its start or
// from the anchor retention left, and returns the rows checked or the
// *veil.ChainError of the first bad row. tick, when set, is told each
// row's seq as it is checked.
func (s *Store) Verify(ctx context.Context, tick func(seq int64)) (int64, error) {
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
	next := v.Next
	if tick != nil {
		next = func(e *veil.AuditEntry) error {
			tick(e.Seq)
			return v.Next(e)
		}
	}
	err := s.Export(ctx, veil.AuditFilter{}, next)
	return v.Rows, err
}

// ReadExport calls fn with every row of an exported file, JSONL or CSV
// (told apart by the first byte), in file order. A line that is not an
// audit row is an error naming the line.
func ReadExport(r io.Reader, fn func(*veil.AuditEntry) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := br.Peek(1)
	if err == io.EOF {
		return nil
	} else if err != nil {
		return err
	}
	if first[0] == '{' {
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for line := 1; sc.Scan(); line++ {
			var e veil.AuditEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return fmt.Errorf("line %d is not an audit row: %w", line, err)
			}
			if err := fn(&e); err != nil {
				return err
			}
		}
		return sc.Err()
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("the file is neither JSONL nor CSV with a header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, c := range veil.AuditColumns {
		if _, ok := col[c]; !ok && c != "categories" {
			return fmt.Errorf("the CSV has no %q column: not an audit export", c)
		}
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		e, err := entryFromCSV(rec, col)
		if err != nil {
			return fmt.Errorf("line %d is not an audit row: %w", line, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

func entryFromCSV(rec []string, col map[string]int) (*veil.AuditEntry, error) {
	get := func(c string) string {
		if i, ok := col[c]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	e := &veil.AuditEntry{Action: get("action"), Actor: get("actor"), Source: get("source"), EventType: get("event_type"),
		EventID: get("event_id"), Destination: get("destination"), Subject: get("subject"), Outcome: get("outcome"),
		Detail: get("detail"), PrevHash: get("prev_hash"), Hash: get("hash")}
	var err error
	if e.Seq, err = strconv.ParseInt(get("seq"), 10, 64); err != nil {
		return nil, fmt.Errorf("seq: %w", err)
	}
	if e.Time, err = time.Parse(veil.AuditTimeFormat, get("time")); err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	if e.HTTPStatus, err = strconv.Atoi(get("http_status")); err != nil {
		return nil, fmt.Errorf("http_status: %w", err)
	}
	if e.Attempt, err = strconv.Atoi(get("attempt")); err != nil {
		return nil, fmt.Errorf("attempt: %w", err)
	}
	for _, l := range []struct {
		col string
		dst *[]string
	}{{"fields_kept", &e.FieldsKept}, {"fields_dropped", &e.FieldsDropped}, {"categories", &e.Categories}} {
		if v := get(l.col); v != "" {
			if err := json.Unmarshal([]byte(v), l.dst); err != nil {
				return nil, fmt.Errorf("%s: %w", l.col, err)
			}
		}
	}
	return e, nil
}

// ExportCheck is the outcome of VerifyExport.
type ExportCheck struct {
	Rows int64 // rows read
	// Gaps counts places where a row's seq is not the one after the row
	// before it: rows missing, or a filtered export.
	Gaps     int64
	FirstGap int64 // the seq after the first gap
}

// VerifyExport checks an exported file (JSONL or CSV). Unless filtered, it
// must be one chain, from its first row or from an anchor: an edited,
// missing, inserted or reordered row is a *veil.ChainError. With filtered,
// rows may be missing between others (an export with --action, --since…):
// each row must match its own hash and seqs must rise, and the gaps are
// counted. A complete check stops at the first bad row, with Gaps > 0 when
// that row is one whose predecessors are missing, so a caller can say
// "filtered or incomplete" rather than "edited".
func VerifyExport(r io.Reader, filtered bool) (ExportCheck, error) {
	var (
		chk   ExportCheck
		chain veil.ChainVerifier
		last  int64
	)
	err := ReadExport(r, func(e *veil.AuditEntry) error {
		if chk.Rows > 0 && e.Seq != last+1 {
			if e.Seq <= last {
				return &veil.ChainError{Seq: e.Seq, Reason: fmt.Sprintf("seq %d does not follow seq %d (reordered or inserted)", e.Seq, last)}
			}
			if chk.Gaps++; chk.Gaps == 1 {
				chk.FirstGap = e.Seq
			}
		}
		if e.Hash != e.ComputeHash(e.PrevHash) {
			return &veil.ChainError{Seq: e.Seq, Reason: "hash does not match the row's contents (edited)"}
		}
		if !filtered {
			if err := chain.Next(e); err != nil {
				return err
			}
		}
		last = e.Seq
		chk.Rows++
		return nil
	})
	return chk, err
}
