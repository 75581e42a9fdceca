package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/veilhq/veil"
)

// PurgeResult counts what a retention run removed (or would remove).
type PurgeResult struct {
	Payloads       int64 // event payloads past retention.payload
	DeliveryBodies int64 // outbound bodies of those events
	DataKeys       int64 // data keys no live payload needs
	AuditRows      int64 // audit rows past retention.audit
}

// errDryRun rolls a dry run's changes back.
var errDryRun = errors.New("dry run")

// Purge applies retention at now: payloads (and the outbound bodies of their
// deliveries) received before now-payloadTTL are deleted, and the data keys
// no remaining payload needs; audit rows older than now-auditTTL are deleted
// from the start of the chain, behind an anchor so verification still
// passes. A delivery still waiting when its payload expires is given up.
// One purged row records the counts. With dryRun nothing changes.
func (s *Store) Purge(ctx context.Context, now time.Time, payloadTTL, auditTTL time.Duration, dryRun bool) (PurgeResult, error) {
	var r PurgeResult
	payloadCut := now.Add(-payloadTTL).UnixNano()
	auditCut := now.Add(-auditTTL).UTC().Format(veil.AuditTimeFormat)
	err := s.write(ctx, func(tx *wtx) error {
		r = PurgeResult{}
		expiring := `SELECT id FROM events WHERE received_at < ? AND payload IS NOT NULL`
		if _, err := tx.Exec(`UPDATE deliveries SET status = 'dead', detail = 'expired: the payload is past retention'
			WHERE status IN ('pending', 'sending') AND event_id IN (`+expiring+`)`, payloadCut); err != nil {
			return fmt.Errorf("expire waiting deliveries: %w", err)
		}
		res, err := tx.Exec(`UPDATE delivery_bodies SET body = NULL WHERE body IS NOT NULL
			AND id IN (SELECT id FROM deliveries WHERE event_id IN (`+expiring+`))`, payloadCut)
		if err != nil {
			return fmt.Errorf("purge delivery bodies: %w", err)
		}
		r.DeliveryBodies, _ = res.RowsAffected()
		if res, err = tx.Exec(`UPDATE events SET payload = NULL, upstream = NULL WHERE received_at < ? AND (payload IS NOT NULL OR upstream IS NOT NULL)`, payloadCut); err != nil {
			return fmt.Errorf("purge payloads: %w", err)
		}
		r.Payloads, _ = res.RowsAffected()
		if res, err = tx.Exec(`DELETE FROM data_keys WHERE subject NOT IN (
			SELECT subject FROM events WHERE payload IS NOT NULL OR upstream IS NOT NULL
			UNION SELECT d.subject FROM deliveries d JOIN delivery_bodies b ON b.id = d.id WHERE b.body IS NOT NULL)`); err != nil {
			return fmt.Errorf("purge data keys: %w", err)
		}
		r.DataKeys, _ = res.RowsAffected()

		// Audit rows go from the start of the chain: up to the row before the
		// first one that is still young.
		var last int64
		err = tx.QueryRow(`SELECT seq FROM audit WHERE time >= ? ORDER BY seq LIMIT 1`, auditCut).Scan(&last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			err = tx.QueryRow(`SELECT coalesce(max(seq), 0) FROM audit`).Scan(&last)
		case err == nil:
			last--
		}
		if err != nil {
			return fmt.Errorf("find purgeable audit rows: %w", err)
		}
		if last > 0 {
			var hash string
			if err := tx.QueryRow(`SELECT hash FROM audit WHERE seq = ?`, last).Scan(&hash); err == nil {
				if res, err = tx.Exec(`DELETE FROM audit WHERE seq <= ?`, last); err != nil {
					return fmt.Errorf("purge audit rows: %w", err)
				}
				r.AuditRows, _ = res.RowsAffected()
				if _, err := tx.Exec(`INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?, ?)
					ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, last, hash); err != nil {
					return fmt.Errorf("write audit anchor: %w", err)
				}
			}
		}
		if dryRun {
			return errDryRun
		}
		clear(s.dataKeys)
		return s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionPurged, Actor: "veil", Outcome: "purged",
			Detail: fmt.Sprintf("payloads=%d delivery_bodies=%d data_keys=%d audit_rows=%d", r.Payloads, r.DeliveryBodies, r.DataKeys, r.AuditRows)})
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	return r, err
}

// Erase crypto-shreds one data subject: its data key is deleted, so every
// stored payload and outbound body of that subject can no longer be
// decrypted; its waiting deliveries are given up; one erased row records
// the counts. Erasing again changes nothing more.
func (s *Store) Erase(ctx context.Context, ref string) (events, cancelled int64, err error) {
	subject := s.SubjectHash(ref)
	err = s.write(ctx, func(tx *wtx) error {
		if err := tx.QueryRow(`SELECT count(*) FROM events WHERE subject = ?`, subject).Scan(&events); err != nil {
			return err
		}
		res, err := tx.Exec(`UPDATE deliveries SET status = 'dead', detail = 'erased: the subject was erased'
			WHERE subject = ? AND status IN ('pending', 'sending')`, subject)
		if err != nil {
			return fmt.Errorf("cancel deliveries: %w", err)
		}
		cancelled, _ = res.RowsAffected()
		// The dedup hashes are derived from the subject's requests: they go too.
		if _, err := tx.Exec(`UPDATE events SET dedup = NULL, body_dedup = NULL WHERE subject = ?`, subject); err != nil {
			return fmt.Errorf("delete dedup hashes: %w", err)
		}
		res, err = tx.Exec(`DELETE FROM data_keys WHERE subject = ?`, subject)
		if err != nil {
			return fmt.Errorf("delete data key: %w", err)
		}
		deleted, _ := res.RowsAffected()
		delete(s.dataKeys, subject)
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionErased, Actor: "admin", Subject: subject, Outcome: "erased",
			Detail: fmt.Sprintf("events=%d deliveries_cancelled=%d data_key_deleted=%v", events, cancelled, deleted > 0)})
	})
	return events, cancelled, err
}
