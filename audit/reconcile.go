package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/veilhq/veil"
)

// appKey names an application's stored state: its source and the keyed
// hash of its id.
type appKey struct{ source, app string }

// appHash is the stored form of an application id or a stage: keyed, like
// every other identifier in the store.
func (s *Store) appHash(source, kind, v string) string {
	if v == "" {
		return ""
	}
	h := hmac.New(sha256.New, s.dedupKey)
	for _, p := range []string{source, kind, v} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// hashedApp is st as the store keeps it: the stage hashed.
func (s *Store) hashedApp(source string, st veil.AppState) veil.AppState {
	st.Stage = s.appHash(source, "stage", st.Stage)
	return st
}

// readApp returns the stored state of an application, nil if none: as the
// batch left it when it wrote it (its write may still be queued), else
// from the batch's prefetch on PostgreSQL, else read (nothing queued
// could change it).
func (s *Store) readApp(tx *wtx, k appKey) (*veil.AppState, error) {
	if st, ok := tx.apps[k]; ok {
		return st, nil
	}
	if tx.pre != nil {
		return tx.pre.apps[k], nil
	}
	st := &veil.AppState{}
	err := tx.queryRowStale(`SELECT coalesce(stage, ''), coalesce(outcome, ''), seen_by FROM app_states
		WHERE source = ? AND app = ?`, k.source, k.app).Scan(&st.Stage, &st.Outcome, &st.SeenBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read application state: %w", err)
	}
	return st, nil
}

// writeApp stores what st knows of an application (an unknown field keeps
// the stored one, prev as readApp returned it), as seen by by.
func (s *Store) writeApp(tx *wtx, k appKey, prev *veil.AppState, st veil.AppState, by string, now time.Time) error {
	null := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	tx.queue(`INSERT INTO app_states (source, app, stage, outcome, seen_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, app) DO UPDATE SET stage = coalesce(excluded.stage, app_states.stage),
		outcome = coalesce(excluded.outcome, app_states.outcome), seen_by = excluded.seen_by, updated_at = excluded.updated_at`,
		k.source, k.app, null(st.Stage), null(st.Outcome), by, now.UnixNano())
	merged := &veil.AppState{Stage: st.Stage, Outcome: st.Outcome, SeenBy: by}
	if prev != nil {
		merged.Stage, merged.Outcome = cmp(st.Stage, prev.Stage), cmp(st.Outcome, prev.Outcome)
	}
	if tx.apps == nil {
		tx.apps = map[appKey]*veil.AppState{}
	}
	tx.apps[k] = merged
	return nil
}

// cmp returns the first non-empty string.
func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Transitions returns, for each listed application state, the normal type
// of the change no webhook brought ("" for none), comparing with what the
// store keeps. It also returns which stored states lack a field the
// listing knows (to be noted with NoteApps, so a later change is seen).
func (s *Store) Transitions(ctx context.Context, source string, cur []veil.AppState) (types []string, stale []bool, err error) {
	types, stale = make([]string, len(cur)), make([]bool, len(cur))
	for i, c := range cur {
		st := &veil.AppState{}
		err := s.rdb.QueryRowContext(ctx, `SELECT coalesce(stage, ''), coalesce(outcome, ''), seen_by FROM app_states
			WHERE source = ? AND app = ?`, source, s.appHash(source, "app", c.ID)).Scan(&st.Stage, &st.Outcome, &st.SeenBy)
		if errors.Is(err, sql.ErrNoRows) {
			st = nil
		} else if err != nil {
			return nil, nil, fmt.Errorf("read application states: %w", err)
		}
		h := s.hashedApp(source, c)
		types[i] = veil.Transition(st, h)
		stale[i] = st != nil && types[i] == "" && ((st.Stage == "" && h.Stage != "") || (st.Outcome == "" && h.Outcome != ""))
	}
	return types, stale, nil
}

// NoteApps stores listed states that report no change but know more than
// the store did (a stage a hire webhook did not name).
func (s *Store) NoteApps(ctx context.Context, source string, cur []veil.AppState) error {
	if len(cur) == 0 {
		return nil
	}
	return s.writeOp(ctx, true, &op{done: make(chan error, 1), fn: func(tx *wtx) error {
		for _, c := range cur {
			k := appKey{source, s.appHash(source, "app", c.ID)}
			prev, err := s.readApp(tx, k)
			if err != nil {
				return err
			}
			by := "reconcile"
			if prev != nil {
				by = prev.SeenBy
			}
			if err := s.writeApp(tx, k, prev, s.hashedApp(source, c), by, s.Now()); err != nil {
				return err
			}
		}
		return nil
	}})
}

// ReconcileState returns where source's reconciliation stands.
func (s *Store) ReconcileState(ctx context.Context, source string) (veil.ReconcileState, error) {
	var nanos int64
	var st veil.ReconcileState
	err := s.rdb.QueryRowContext(ctx, `SELECT watermark, token FROM reconcile_state WHERE source = ?`, source).Scan(&nanos, &st.Token)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	} else if err != nil {
		return st, fmt.Errorf("read reconcile state: %w", err)
	}
	st.Watermark, st.Known = time.Unix(0, nanos).UTC(), true
	return st, nil
}

// SetReconcileState records a good pass: everything changed since
// watermark was listed, and the vendor's new sync token.
func (s *Store) SetReconcileState(ctx context.Context, source string, st veil.ReconcileState) error {
	return s.writeOp(ctx, true, &op{done: make(chan error, 1), fn: func(tx *wtx) error {
		tx.queue(`INSERT INTO reconcile_state (source, watermark, token, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (source) DO UPDATE SET watermark = excluded.watermark, token = excluded.token, updated_at = excluded.updated_at`,
			source, st.Watermark.UnixNano(), st.Token, s.Now().UnixNano())
		return nil
	}})
}

// DetailReconciled is the detail of a webhook's delivery that was not made
// because reconciliation had reported the same change already.
const DetailReconciled = "already delivered: reconciliation reported this change before its webhook arrived"

// ingestApp applies an event's application state inside its ingest
// transaction. A reconciled event whose change is no longer new (a webhook
// brought it meanwhile) is skipped: it returns false. A webhook for a
// change reconciliation reported already keeps its deliveries from leaving
// a second time.
func (s *Store) ingestApp(tx *wtx, e *veil.Event, k appKey, deliveries []*veil.Delivery) (bool, error) {
	prev, err := s.readApp(tx, k)
	if err != nil {
		return false, err
	}
	cur := s.hashedApp(e.Source, *e.App)
	if e.Reconciled {
		if veil.Transition(prev, cur) == "" {
			return false, nil
		}
		return true, s.writeApp(tx, k, prev, cur, "reconcile", e.ReceivedAt)
	}
	if prev != nil && prev.SeenBy == "reconcile" && (cur.Stage != "" || cur.Outcome != "") && veil.Transition(prev, cur) == "" {
		for _, d := range deliveries {
			if d.Status == veil.DeliveryPending {
				d.Status, d.Detail, d.Body = veil.DeliveryFiltered, DetailReconciled, nil
			}
		}
	}
	return true, s.writeApp(tx, k, prev, cur, "webhook", e.ReceivedAt)
}

// Exclusive runs fn while no other replica runs source's reconciliation
// (a PostgreSQL advisory lock; SQLite has one serve per file, and a
// concurrent `veil reconcile run` is safe: each report is re-checked in the
// writer). It reports false without running fn when another holds it.
func (s *Store) Exclusive(ctx context.Context, source string, fn func() error) (bool, error) {
	h := fnv.New32a()
	h.Write([]byte(source))
	return s.drv.exclusive(ctx, s, lockReconcile<<16|int64(h.Sum32()&0xffff), fn)
}
