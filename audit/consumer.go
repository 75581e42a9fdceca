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
	"time"

	"github.com/veilhq/veil"
)

// Consumer is a downstream system allowed to ask for records.
type Consumer struct {
	Name      string
	Purposes  []string
	CreatedAt time.Time
	Revoked   bool
}

// ErrUnknownKey is returned for a key that matches no live consumer.
var ErrUnknownKey = veil.Errorf(veil.EUNAUTHORIZED, "Unknown or revoked consumer key.")

func keyHash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// AddConsumer creates a consumer and returns its key: 256 random bits,
// shown once; only its hash is stored.
func (s *Store) AddConsumer(ctx context.Context, name string, purposes []string) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	key := "vk_" + base64.RawURLEncoding.EncodeToString(b)
	ps, _ := json.Marshal(purposes)
	err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.exec(`INSERT INTO consumers (name, key_hash, purposes, created_at) VALUES (?, ?, ?, ?)`,
			name, keyHash(key), string(ps), s.Now().UnixNano())
		if err != nil {
			return veil.Errorf(veil.ECONFLICT, "A consumer named %q exists already.", name)
		}
		return nil
	})
	return key, err
}

// RevokeConsumer stops a consumer's key from working, at once.
func (s *Store) RevokeConsumer(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(`UPDATE consumers SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`, s.Now().UnixNano(), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return veil.Errorf(veil.ENOTFOUND, "No live consumer named %q.", name)
		}
		return nil
	})
}

// Consumers lists every consumer.
func (s *Store) Consumers(ctx context.Context) ([]Consumer, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, purposes, created_at, revoked_at IS NOT NULL FROM consumers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	defer rows.Close()
	var out []Consumer
	for rows.Next() {
		var c Consumer
		var ps string
		var created int64
		if err := rows.Scan(&c.Name, &ps, &created, &c.Revoked); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(ps), &c.Purposes)
		c.CreatedAt = time.Unix(0, created).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// Authenticate returns the live consumer holding key, or ErrUnknownKey.
// The stored hash is compared in constant time.
func (s *Store) Authenticate(ctx context.Context, key string) (*Consumer, error) {
	h := keyHash(key)
	var (
		c      Consumer
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
	json.Unmarshal([]byte(ps), &c.Purposes)
	return &c, nil
}
