package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/veilhq/veil"
)

// Append adds entries to the audit log and returns once they are committed.
// Seq, PrevHash and Hash are assigned here; a zero Time means now.
func (s *Store) Append(ctx context.Context, entries ...*veil.AuditEntry) error {
	return s.write(ctx, func(tx *wtx) error {
		for _, e := range entries {
			if err := s.appendTx(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Record queues entries for the audit log without waiting for the commit;
// a failure is logged. For rows on paths that answer before a commit (a
// rejected request), where waiting would only slow the answer down.
func (s *Store) Record(entries ...*veil.AuditEntry) {
	o := &op{fn: func(tx *wtx) error {
		for _, e := range entries {
			if err := s.appendTx(tx, e); err != nil {
				return err
			}
		}
		return nil
	}}
	if err := s.enqueue(context.Background(), o, false); err != nil {
		s.Logger.Warn("audit row not recorded", "action", entries[0].Action, "err", err)
	}
}

// appendTx extends the chain by e inside tx. Writer goroutine only.
func (s *Store) appendTx(tx *wtx, e *veil.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = s.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.FieldsKept, e.FieldsDropped = capPaths(e.FieldsKept), capPaths(e.FieldsDropped)
	return s.drv.appendAudit(tx, e)
}

// insertAudit chains e to the tail and inserts it.
func (s *Store) insertAudit(tx *wtx, e *veil.AuditEntry) error {
	e.Seq = s.chain.seq + 1
	e.PrevHash = s.chain.hash
	e.Hash = e.ComputeHash(e.PrevHash)
	kept, _ := json.Marshal(nonNil(e.FieldsKept))
	dropped, _ := json.Marshal(nonNil(e.FieldsDropped))
	cats, _ := json.Marshal(nonNil(e.Categories))
	tx.queue(`INSERT INTO audit (seq, time, action, actor, source, event_type, event_id, destination,
		subject, outcome, http_status, attempt, fields_kept, fields_dropped, categories, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Time.Format(veil.AuditTimeFormat), e.Action, e.Actor, e.Source, e.EventType, e.EventID,
		e.Destination, e.Subject, e.Outcome, e.HTTPStatus, e.Attempt, string(kept), string(dropped), string(cats),
		e.Detail, e.PrevHash, e.Hash)
	s.chain = chainState{seq: e.Seq, hash: e.Hash}
	return nil
}

// AuditEntries calls fn for each audit row in seq order, streaming.
func (s *Store) AuditEntries(ctx context.Context, fn func(*veil.AuditEntry) error) error {
	return s.Export(ctx, veil.AuditFilter{}, func(e *veil.AuditEntry) error {
		c := *e // Export reuses its entry
		return fn(&c)
	})
}

// MaxRowPaths bounds the paths one audit row lists in fields_kept or
// fields_dropped: a payload with 90,000 keys is recorded with the first
// MaxRowPaths-1 and an entry saying how many more there were, so one row
// stays small.
const MaxRowPaths = 256

func capPaths(ps []string) []string {
	if len(ps) <= MaxRowPaths {
		return ps
	}
	out := append([]string(nil), ps[:MaxRowPaths-1]...)
	return append(out, fmt.Sprintf("…(%d more paths)", len(ps)-(MaxRowPaths-1)))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Flush waits until every write queued before it (the rows Record
// queued among them) is committed.
func (s *Store) Flush(ctx context.Context) error {
	return s.write(ctx, func(*wtx) error { return nil })
}
