package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/veilhq/veil"
)

// Erasure receipts are signed with an Ed25519 key of their own, so anyone
// holding the public key (GET /v1/receipts/key, veil receipt key) can check
// one without any secret of Veil's: the vault key decrypts payloads, and a
// checker must not need it. The key is keys.receipt when the config sets
// one; otherwise the store generates one on first start and keeps it in
// its meta table sealed under the vault key, so every replica signs with
// the same key and a backup of the database carries it.

// receiptKeyAAD binds the sealed receipt key to its use.
const receiptKeyAAD = "veil receipt key v1"

// openReceiptKey sets s.receiptKey: the configured one, or the store's own,
// made on first use.
func (s *Store) openReceiptKey(db dbh) error {
	if s.ReceiptKey != nil {
		s.receiptKey = s.ReceiptKey
		return nil
	}
	var text string // base64 of the sealed seed (meta holds text on PostgreSQL)
	err := db.QueryRow(`SELECT value FROM meta WHERE key = 'receipt_key'`).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		b, err := seal(s.vaultKey, priv.Seed(), []byte(receiptKeyAAD))
		if err != nil {
			return err
		}
		// Another replica may have made one first: keep whichever is there.
		if _, err := db.Exec(`INSERT INTO meta (key, value) VALUES ('receipt_key', ?) ON CONFLICT (key) DO NOTHING`,
			base64.StdEncoding.EncodeToString(b)); err != nil {
			return fmt.Errorf("store receipt key: %w", err)
		}
		err = db.QueryRow(`SELECT value FROM meta WHERE key = 'receipt_key'`).Scan(&text)
		if err != nil {
			return fmt.Errorf("read receipt key: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("read receipt key: %w", err)
	}
	sealed, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return fmt.Errorf("read receipt key: %w", err)
	}
	seed, err := open(s.vaultKey, sealed, []byte(receiptKeyAAD))
	if err != nil {
		return fmt.Errorf("unseal receipt key: %w", err)
	}
	s.receiptKey = ed25519.NewKeyFromSeed(seed)
	return nil
}

// ReceiptPublicKey returns the public key erasure receipts are signed with.
func (s *Store) ReceiptPublicKey() ed25519.PublicKey {
	return s.receiptKey.Public().(ed25519.PublicKey)
}

// receiptMessage is what a receipt's signature covers: its JSON, as
// encoding/json writes it, with the signature field empty.
func receiptMessage(r veil.ErasureReceipt) []byte {
	r.Signature = ""
	b, _ := json.Marshal(r)
	return b
}

// SignReceipt signs r with priv: its KeyID and Signature are filled in.
func SignReceipt(priv ed25519.PrivateKey, r *veil.ErasureReceipt) {
	r.KeyID = veil.KeyID(priv.Public().(ed25519.PublicKey))
	r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, receiptMessage(*r)))
}

// ErrBadReceipt is returned for a receipt that was altered or signed
// with another key.
var ErrBadReceipt = errors.New("the receipt's signature does not match: it was changed, or signed with another key")

// VerifyReceipt checks r's signature with the public key pub. It needs no
// secret.
func VerifyReceipt(pub ed25519.PublicKey, r veil.ErasureReceipt) error {
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, receiptMessage(r), sig) {
		return ErrBadReceipt
	}
	return nil
}

// ParsePublicKey reads a receipt public key as `veil receipt key` prints
// it: base64 of its 32 bytes.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("a receipt public key is base64 of 32 bytes (veil receipt key prints it)")
	}
	return ed25519.PublicKey(b), nil
}

// Receipt builds and signs the receipt of an erasure, from its result and
// the person's report (whom Art. 19 says to tell), and the notices queued
// to recipients.
func (s *Store) Receipt(res veil.Erasure, report veil.SubjectReport, notified []veil.Notice) veil.ErasureReceipt {
	r := veil.ErasureReceipt{Subject: res.Subject, Time: s.Now().UTC(), References: res.References, Events: res.Events,
		DataKeys: res.DataKeys, Cancelled: res.Cancelled, Recipients: report.RecipientNames(), Notified: notified,
		AuditSeq: res.AuditSeq, AuditHash: res.AuditHash}
	if r.Cancelled == nil {
		r.Cancelled = map[string]int64{}
	}
	if r.Notified == nil {
		r.Notified = []veil.Notice{}
	}
	SignReceipt(s.receiptKey, &r)
	return r
}
