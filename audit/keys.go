package audit

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Data keys. Each subject has one data key per hour in which it had events
// (its epoch); the key is wrapped by the vault key. Retention deletes the
// keys of whole hours past the payload period by range; erasure deletes
// every key of a subject, so each of its payloads, wherever a copy of the
// file went, becomes unreadable at once.

// keyEpochSeconds is the span of events one data key seals.
const keyEpochSeconds = 3600

// epochOf is the key epoch of an event received at t.
func epochOf(t time.Time) int64 { return t.Unix() / keyEpochSeconds }

// keyID names one data key.
type keyID struct {
	epoch   int64
	subject string
}

// DefaultKeyCacheSize is how many unwrapped data keys a store keeps in
// memory when KeyCacheSize is 0: about 1 MB.
const DefaultKeyCacheSize = 10_000

// dataKey returns the data key of subject for epoch: cached, else read
// and unwrapped, else created. The read does not send the batch's queued
// writes first: a key created in this batch is in the cache, and the
// primary key catches a second one. Writer goroutine only.
func (s *Store) dataKey(tx *wtx, subject string, epoch int64) ([]byte, error) {
	var wrapped []byte
	if !s.keys.Contains(keyID{epoch, subject}) {
		err := tx.queryRowStale(`SELECT wrapped FROM data_keys WHERE epoch = ? AND subject = ?`, epoch, subject).Scan(&wrapped)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read data key: %w", err)
		}
	}
	return s.dataKeyRead(tx, subject, epoch, wrapped)
}

// dataKeyRead returns the data key of subject for epoch, given the wrapped
// key the batch read for it (nil: none stored), creating and storing a
// wrapped one on first use. Writer goroutine only (it may insert).
func (s *Store) dataKeyRead(tx *wtx, subject string, epoch int64, wrapped []byte) ([]byte, error) {
	id := keyID{epoch, subject}
	if tx.keysUsed == nil {
		tx.keysUsed = map[string]bool{}
	}
	tx.keysUsed[subject] = true
	if k, ok := s.keys.Get(id); ok {
		return k, nil
	}
	if wrapped != nil {
		k, err := open(s.vaultKey, wrapped, []byte(subject))
		if err != nil {
			return nil, fmt.Errorf("unwrap data key: %w", err)
		}
		s.keys.Add(id, k)
		return k, nil
	}
	k := make([]byte, 32)
	rand.Read(k)
	wrapped, err := seal(s.vaultKey, k, []byte(subject))
	if err != nil {
		return nil, err
	}
	tx.queue(`INSERT INTO data_keys (epoch, subject, wrapped, created_at) VALUES (?, ?, ?, ?)`,
		epoch, subject, wrapped, s.Now().UnixNano())
	s.keys.Add(id, k)
	s.newKeys = append(s.newKeys, id)
	return k, nil
}

// forgetNewKeys drops from the cache the data keys created in a batch that
// was rolled back. Writer goroutine only.
func (s *Store) forgetNewKeys() {
	for _, id := range s.newKeys {
		s.keys.Remove(id)
	}
	s.newKeys = s.newKeys[:0]
}

// evictErased drops from the cache the keys of subjects erased since the
// last batch, by this process or another (veil erase, another replica).
// It runs at the start of every batch, inside its transaction, so no
// payload is ever sealed with a key that was deleted.
func (s *Store) evictErased(tx *wtx) error {
	var last int64
	if err := tx.queryRow(`SELECT coalesce(max(seq), 0) FROM erasures`).Scan(&last); err != nil {
		return fmt.Errorf("read erasures: %w", err)
	}
	return s.evictErasedUpTo(tx, last)
}

// evictErasedUpTo is evictErased once the last erasure's seq is read.
func (s *Store) evictErasedUpTo(tx *wtx, last int64) error {
	if last <= s.erasureSeen {
		return nil
	}
	rows, err := tx.queryText(`SELECT subject FROM erasures WHERE seq > ?`, s.erasureSeen)
	if err != nil {
		return fmt.Errorf("read erasures: %w", err)
	}
	erased := map[string]bool{}
	for rows.Next() {
		var sub string
		if err := rows.Scan(&sub); err != nil {
			rows.Close()
			return err
		}
		erased[sub] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	s.evictSubjects(erased)
	s.erasureSeen = last
	// The batch decides by the log as it stands in its transaction.
	return s.refreshErased(func(q string, args ...any) (*sql.Rows, error) { return tx.queryText(q, args...) })
}

// evictSubjects drops every cached key of the subjects.
func (s *Store) evictSubjects(subjects map[string]bool) {
	for _, id := range s.keys.Keys() {
		if subjects[id.subject] {
			s.keys.Remove(id)
		}
	}
}

// CachedKeys returns the number of data keys held in memory.
func (s *Store) CachedKeys() int { return s.keys.Len() }
