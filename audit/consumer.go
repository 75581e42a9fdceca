package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// ErrUnknownKey is returned for a key that matches no live consumer.
var ErrUnknownKey = veil.Errorf(veil.EUNAUTHORIZED, "Unknown or revoked consumer key.")

// consumerName is what a consumer may be called: it appears in audit rows
// and in the lookup policy's input.
var consumerName = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

func keyHash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// AddConsumer creates a consumer and returns its key: 256 random bits,
// shown once; only its hash is stored. A name in use by a live consumer is
// ECONFLICT; a revoked consumer's name can be granted again, with a new
// key. The grant is audited (consumer_added, by actor) in the same
// transaction.
func (s *Store) AddConsumer(ctx context.Context, name string, purposes []string, actor string) (string, error) {
	if !consumerName.MatchString(name) {
		return "", veil.Errorf(veil.EINVALID, "A consumer name is 1 to 64 lower-case letters, digits or hyphens.")
	}
	for _, p := range purposes {
		if p == "" || len(p) > 64 || strings.ContainsAny(p, ", \t\n") {
			return "", veil.Errorf(veil.EINVALID, "Each purpose is a word of up to 64 characters, comma-separated.")
		}
	}
	if len(purposes) == 0 {
		return "", veil.Errorf(veil.EINVALID, "Grant the consumer at least one purpose.")
	}
	b := make([]byte, 32)
	rand.Read(b)
	key := "vk_" + base64.RawURLEncoding.EncodeToString(b)
	ps, err := json.Marshal(purposes)
	if err != nil {
		return "", err
	}
	err = s.write(ctx, func(tx *wtx) error {
		var live int
		if err := tx.queryRow(`SELECT count(*) FROM consumers WHERE name = ? AND revoked_at IS NULL`, name).Scan(&live); err != nil {
			return fmt.Errorf("read consumers: %w", err)
		}
		if live > 0 {
			return veil.Errorf(veil.ECONFLICT, "A consumer named %s exists already; revoke it first to issue a new key.", name)
		}
		if _, err := tx.exec(`INSERT INTO consumers (name, key_hash, purposes, created_at) VALUES (?, ?, ?, ?)`,
			name, keyHash(key), string(ps), s.Now().UnixNano()); err != nil {
			return fmt.Errorf("insert consumer: %w", err)
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionConsumerAdded, Actor: actor,
			Outcome: "added", Detail: "consumer=" + name + " purposes=" + strings.Join(purposes, ",")})
	})
	return key, err
}

// RevokeConsumer stops a consumer's key from working, at once, and audits
// it (consumer_revoked, by actor). An unknown or already revoked name is
// ENOTFOUND.
func (s *Store) RevokeConsumer(ctx context.Context, name, actor string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(`UPDATE consumers SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`, s.Now().UnixNano(), name)
		if err != nil {
			return fmt.Errorf("revoke consumer: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("revoke consumer: %w", err)
		} else if n == 0 {
			return veil.Errorf(veil.ENOTFOUND, "No live consumer is named %s.", name)
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionConsumerRevoked, Actor: actor,
			Outcome: "revoked", Detail: "consumer=" + name})
	})
}

// Consumers lists every consumer, live and revoked, by name.
func (s *Store) Consumers(ctx context.Context) ([]veil.Consumer, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, purposes, created_at, revoked_at IS NOT NULL FROM consumers ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	defer rows.Close()
	var out []veil.Consumer
	for rows.Next() {
		var c veil.Consumer
		var ps string
		var created int64
		if err := rows.Scan(&c.Name, &ps, &created, &c.Revoked); err != nil {
			return nil, fmt.Errorf("read consumer: %w", err)
		}
		if err := json.Unmarshal([]byte(ps), &c.Purposes); err != nil {
			return nil, fmt.Errorf("consumer %s: purposes: %w", c.Name, err)
		}
		c.CreatedAt = time.Unix(0, created).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// Authenticate returns the live consumer holding key, or ErrUnknownKey.
// The stored hash is compared in constant time.
func (s *Store) Authenticate(ctx context.Context, key string) (*veil.Consumer, error) {
	h := keyHash(key)
	var (
		c      veil.Consumer
		stored []byte
		ps     string
	)
	err := s.rdb.QueryRowContext(ctx, `SELECT name, key_hash, purposes FROM consumers WHERE key_hash = ? AND revoked_at IS NULL`, h).
		Scan(&c.Name, &stored, &ps)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(stored, h) != 1) {
		return nil, ErrUnknownKey
	} else if err != nil {
		return nil, fmt.Errorf("authenticate consumer: %w", err)
	}
	if err := json.Unmarshal([]byte(ps), &c.Purposes); err != nil {
		return nil, fmt.Errorf("consumer %s: purposes: %w", c.Name, err)
	}
	return &c, nil
}
