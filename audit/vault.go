package audit

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/veilhq/veil"
)

// ErrGone is returned for an event whose payload was purged by retention or
// whose subject was erased.
var ErrGone = veil.Errorf(veil.EGONE, "The event's payload is no longer held (purged by retention or erased).")

// ErrNotFound is returned for an unknown event.
var ErrNotFound = veil.Errorf(veil.ENOTFOUND, "No such event.")

// IngestEvent commits e and its received audit row in one transaction and
// returns the event's id. An event whose (source, dedup key) was seen before
// is not stored again: the first event's id comes back with duplicate true.
// The payload is sealed with the subject's data key (created on first use);
// the subject and dedup key are stored only as hashes.
//
// In the same transaction, for a new event only, it stores each delivery
// (its outbound body sealed like the payload) with a filtered or
// blocked_leak audit row where that is its status, and records the drift
// paths (new to this source and event type) with a schema_drift row each,
// and one more row counting those beyond drift.Paths.
func (s *Store) IngestEvent(ctx context.Context, e *veil.Event, deliveries []*veil.Delivery, drift veil.Drift) (id string, duplicate bool, err error) {
	if e.ID == "" {
		e.ID = veil.NewID("evt_")
	}
	if e.Subject == "" {
		// No candidate reference in the payload: the event is its own subject.
		e.Subject = e.Source + ":event:" + e.ID
	}
	refs := e.Refs
	if len(refs) == 0 {
		refs = []string{e.Subject}
	}
	var dedup, bodyDedup []byte // NULL when absent
	if e.DedupKey != "" {
		dedup = s.dedupHash(e.Source, "key", []byte(e.DedupKey))
	}
	if e.BodyKey || e.DedupKey == "" {
		bodyDedup = s.dedupHash(e.Source, "body", e.Payload)
	}
	sr := s.subjectRefs(refs)
	// The person the references name as far as the links say now: whose
	// data key to read ahead. The writer links them for good.
	hint := e.Person
	if hint == "" {
		hint, _, _ = s.pickPerson(sr, nil)
		if p, err := s.Resolve(ctx, refs); err == nil && p.Person != "" {
			hint = p.Person
		}
	}
	read := &ingestRead{dedup: dedup, bodyDedup: bodyDedup, key: keyID{epochOf(e.ReceivedAt), hint}, refs: sr}
	if e.App != nil && e.App.ID != "" {
		read.app = appKey{e.Source, s.appHash(e.Source, "app", e.App.ID)}
	}
	var cascade bool
	var person string
	err = s.writeOp(ctx, false, &op{ingest: read, done: make(chan error, 1), fn: func(tx *wtx) error {
		id, duplicate, cascade = e.ID, false, false
		// One read for both: is the event a duplicate, and the subject's
		// data key for the hour when it is not cached. It may miss what
		// this batch queued (PostgreSQL); the unique constraints catch a
		// duplicate within one batch, which is then retried write by write.
		epoch := epochOf(e.ReceivedAt)
		var first sql.NullString
		var wrapped []byte
		var err error
		switch {
		case tx.pre != nil:
			// PostgreSQL: read for the whole batch (prefetch).
			for _, h := range [][]byte{dedup, bodyDedup} {
				if id, ok := tx.pre.events[string(h)]; ok && h != nil {
					first = sql.NullString{String: id, Valid: true}
				}
			}
			wrapped = tx.pre.keys[keyID{epoch, hint}]
		default:
			// Each key through its own unique index (an OR of the two made
			// PostgreSQL scan the table).
			find, args := `(SELECT id FROM events WHERE dedup = ?)`, []any{dedup}
			switch {
			case dedup == nil:
				find, args = `(SELECT id FROM events WHERE body_dedup = ?)`, []any{bodyDedup}
			case bodyDedup != nil:
				find, args = `(SELECT id FROM events WHERE dedup = ? UNION ALL SELECT id FROM events WHERE body_dedup = ? LIMIT 1)`, []any{dedup, bodyDedup}
			}
			if s.keys.Contains(keyID{epoch, hint}) {
				err = tx.queryRowStale(`SELECT `+find, args...).Scan(&first)
			} else {
				err = tx.queryRowStale(`SELECT `+find+`, (SELECT wrapped FROM data_keys WHERE epoch = ? AND subject = ?)`,
					append(args, epoch, hint)...).Scan(&first, &wrapped)
			}
		}
		if err != nil {
			return fmt.Errorf("dedup lookup: %w", err)
		}
		if first.Valid {
			id, duplicate = first.String, true
			return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionReceived, Actor: e.Source, Source: e.Source,
				EventType: e.EventType, EventID: first.String, Subject: hint, Outcome: "duplicate"})
		}
		var erased bool
		if person, erased, cascade, err = s.linkTx(tx, sr, e.ReceivedAt.UnixNano()); err != nil {
			return err
		}
		if read.app.app != "" {
			fresh, err := s.ingestApp(tx, e, read.app, deliveries)
			if err != nil {
				return err
			}
			if !fresh { // reconciled, but a webhook brought the change meanwhile
				id, duplicate = "", true
				return nil
			}
		}
		if erased {
			return s.ingestErased(tx, e, person, deliveries, drift)
		}
		var key []byte
		if person == hint {
			key, err = s.dataKeyRead(tx, person, epoch, wrapped) // read with the dedup lookup
		} else {
			key, err = s.dataKey(tx, person, epoch) // a link this batch learned named another person: her key
		}
		if err != nil {
			return err
		}
		var sealed []byte
		var upstream any
		if e.Upstream != nil {
			b, _ := json.Marshal(e.Upstream) // ids only: the payload is not kept
			upstream = string(b)
		} else if sealed, err = seal(key, e.Payload, []byte(e.ID)); err != nil {
			return err
		}
		tx.queue(`INSERT INTO events (id, source, vendor, event_type, subject, dedup, body_dedup, received_at,
			key_epoch, upstream, normal_type, job) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Source, e.Vendor, e.EventType,
			person, dedup, bodyDedup, e.ReceivedAt.UnixNano(), epoch, upstream, e.NormalType, s.jobHash(e))
		if sealed != nil {
			tx.queue(`INSERT INTO payloads (event_id, sealed) VALUES (?, ?)`, e.ID, sealed)
		}
		if tx.pre != nil { // a second copy in the same batch is a duplicate
			for _, h := range [][]byte{dedup, bodyDedup} {
				if h != nil {
					tx.pre.events[string(h)] = e.ID
				}
			}
		}
		row := &veil.AuditEntry{Time: e.ReceivedAt, Action: veil.ActionReceived, Actor: e.Source,
			Source: e.Source, EventType: e.EventType, EventID: e.ID, Subject: person, Outcome: "accepted"}
		if e.Reconciled {
			// A change no webhook brought: the application's keyed hash says which.
			row.Action, row.Actor, row.Outcome, row.Detail = veil.ActionReconciled, "veil", "gap", "application "+read.app.app
		}
		if err := s.appendTx(tx, row); err != nil {
			return err
		}
		for _, d := range deliveries {
			if err := s.insertDelivery(tx, e, person, key, d); err != nil {
				return err
			}
		}
		return s.recordDrift(tx, e, drift)
	}})
	if err != nil {
		return "", false, fmt.Errorf("commit event: %w", err)
	}
	if cascade {
		// A person not erased turned out to be one who is: what was stored
		// under her goes too.
		if err := s.shred(ctx, person, "veil", &veil.Erasure{}, false); err != nil {
			s.Logger.Error("erase what a link added to an erased subject", "err", err)
		}
	}
	return id, duplicate, nil
}

// jobHash is the keyed hash of the event's job reference, "" for none.
func (s *Store) jobHash(e *veil.Event) string {
	if e.Job == "" {
		return ""
	}
	return s.SubjectHash(e.Job)
}

// ingestErased stores an event of an erased person: answered like any
// other (the ATS must not retry forever), but without its payload or dedup
// hashes (nothing derived from her requests is kept), with every delivery
// filtered as erased_subject and a received row saying so.
func (s *Store) ingestErased(tx *wtx, e *veil.Event, person string, deliveries []*veil.Delivery, drift veil.Drift) error {
	tx.queue(`INSERT INTO events (id, source, vendor, event_type, subject, dedup, body_dedup, received_at,
		key_epoch, upstream, normal_type, job) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Source, e.Vendor, e.EventType,
		person, nil, nil, e.ReceivedAt.UnixNano(), 0, nil, e.NormalType, s.jobHash(e))
	action, actor := veil.ActionReceived, e.Source
	if e.Reconciled {
		action, actor = veil.ActionReconciled, "veil"
	}
	if err := s.appendTx(tx, &veil.AuditEntry{Time: e.ReceivedAt, Action: action, Actor: actor, Source: e.Source,
		EventType: e.EventType, EventID: e.ID, Subject: person, Outcome: veil.DetailErasedSubject,
		Detail: "the subject is erased: the payload is not stored and no destination receives it"}); err != nil {
		return err
	}
	for _, d := range deliveries {
		nd := &veil.Delivery{ID: d.ID, Destination: d.Destination, Status: veil.DeliveryFiltered, Detail: veil.DetailErasedSubject}
		if err := s.insertDelivery(tx, e, person, nil, nd); err != nil {
			return err
		}
		*d = *nd
	}
	return s.recordDrift(tx, e, drift)
}

// recordDrift stores an event's new paths with a schema_drift row each,
// and one more row counting those beyond drift.Paths.
func (s *Store) recordDrift(tx *wtx, e *veil.Event, drift veil.Drift) error {
	for _, p := range drift.Paths {
		tx.queue(`INSERT INTO schema_paths (source, event_type, path, first_seen) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, e.Source, e.EventType, p, e.ReceivedAt.UnixNano())
		if err := s.appendTx(tx, &veil.AuditEntry{Time: e.ReceivedAt, Action: veil.ActionSchemaDrift, Actor: "veil",
			Source: e.Source, EventType: e.EventType, EventID: e.ID, Outcome: "new_path", Detail: p}); err != nil {
			return err
		}
	}
	if drift.More > 0 {
		return s.appendTx(tx, &veil.AuditEntry{Time: e.ReceivedAt, Action: veil.ActionSchemaDrift, Actor: "veil",
			Source: e.Source, EventType: e.EventType, EventID: e.ID, Outcome: "new_paths_not_recorded",
			Detail: fmt.Sprintf("%d more new paths in this event were not recorded", drift.More)})
	}
	return nil
}

// Event returns the stored event id with its decrypted payload. The Subject
// field holds the subject's keyed hash, not the reference. It returns
// ErrNotFound for an unknown id and ErrGone once the payload was purged or
// the subject erased.
func (s *Store) Event(ctx context.Context, id string) (*veil.Event, error) {
	var (
		e        = veil.Event{ID: id}
		nanos    int64
		sealed   []byte
		wrapped  []byte
		upstream sql.NullString
	)
	err := s.rdb.QueryRowContext(ctx, `SELECT e.source, e.vendor, e.event_type, e.subject, e.received_at, p.sealed, k.wrapped, e.upstream,
		coalesce(l.person, e.subject), t.salt
		FROM events e LEFT JOIN payloads p ON p.event_id = e.id
		LEFT JOIN data_keys k ON k.epoch = e.key_epoch AND k.subject = e.subject
		LEFT JOIN subject_links l ON l.ref = e.subject
		LEFT JOIN tombstones t ON t.person = coalesce(l.person, e.subject) AND t.restored_at IS NOT NULL WHERE e.id = ?`, id).
		Scan(&e.Source, &e.Vendor, &e.EventType, &e.Subject, &nanos, &sealed, &wrapped, &upstream, &e.Person, &e.Salt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	e.ReceivedAt = time.Unix(0, nanos).UTC()
	if upstream.Valid && wrapped != nil {
		// Upstream lookup mode: no payload here, the ids to fetch it.
		if err := json.Unmarshal([]byte(upstream.String), &e.Upstream); err != nil {
			return nil, fmt.Errorf("read upstream ids: %w", err)
		}
		return &e, nil
	}
	if sealed == nil || wrapped == nil {
		return &e, ErrGone
	}
	key, err := open(s.vaultKey, wrapped, []byte(e.Subject))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key: %w", err)
	}
	if e.Payload, err = open(key, sealed, []byte(id)); err != nil {
		return nil, fmt.Errorf("decrypt event: %w", err)
	}
	return &e, nil
}

// dedupHash is the stored form of a dedup key or a body: keyed, so the
// store holds nothing a guess can be checked against; 128 bits are plenty
// to tell events apart, and a short key keeps the index small.
func (s *Store) dedupHash(source, kind string, v []byte) []byte {
	h := hmac.New(sha256.New, s.dedupKey)
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(v)
	return h.Sum(nil)[:16]
}

// seal encrypts plaintext with AES-256-GCM under key, binding aad; the
// result is nonce || ciphertext.
func seal(key, plaintext, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	rand.Read(out)
	return gcm.Seal(out, out, plaintext, aad), nil
}

// open reverses seal.
func open(key, sealed, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], aad)
}

// payloadHeld is the condition that the event of the events row named t
// still has its payload, or its ids for an upstream lookup.
func payloadHeld(t string) string {
	return "(" + t + ".upstream IS NOT NULL OR EXISTS (SELECT 1 FROM payloads p WHERE p.event_id = " + t + ".id))"
}

// Events calls fn with every event whose payload is still held, oldest
// first, decrypted. Purged and erased events are skipped. tick, when set,
// is told how many of the events listed at the start are done.
func (s *Store) Events(ctx context.Context, fn func(*veil.Event) error, tick func(done, total int)) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT e.id FROM events e JOIN payloads p ON p.event_id = e.id ORDER BY e.received_at`)
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	ids, err := readStrings(rows)
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	for i, id := range ids {
		if tick != nil {
			tick(i, len(ids))
		}
		e, err := s.Event(ctx, id)
		if errors.Is(err, ErrGone) {
			continue
		} else if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if tick != nil {
		tick(len(ids), len(ids))
	}
	return nil
}

// OpenSealed decrypts a value sealed by the store (nonce || AES-256-GCM)
// with key and its associated data: for tests and tools that read raw rows.
func OpenSealed(key, sealed, aad []byte) ([]byte, error) { return open(key, sealed, aad) }
