package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/veilhq/veil"
)

// receiptKey is the key erasure receipts are signed with: derived from the
// vault key, so only whoever holds the vault key can sign or check one.
func receiptKey(vaultKey []byte) []byte { return derive(vaultKey, "veil erasure receipt v1") }

// receiptMAC is the signature of r: HMAC-SHA256 over its JSON with an
// empty signature field.
func receiptMAC(vaultKey []byte, r veil.ErasureReceipt) []byte {
	r.Signature = ""
	b, _ := json.Marshal(r)
	m := hmac.New(sha256.New, receiptKey(vaultKey))
	m.Write(b)
	return m.Sum(nil)
}

// SignReceipt fills in r's signature.
func SignReceipt(vaultKey []byte, r *veil.ErasureReceipt) {
	r.Signature = hex.EncodeToString(receiptMAC(vaultKey, *r))
}

// ErrBadReceipt is returned for a receipt that was altered or signed
// under another vault key.
var ErrBadReceipt = errors.New("the receipt's signature does not match: it was changed, or signed under another vault key")

// VerifyReceipt checks r's signature.
func VerifyReceipt(vaultKey []byte, r veil.ErasureReceipt) error {
	sig, err := hex.DecodeString(r.Signature)
	if err != nil || !hmac.Equal(sig, receiptMAC(vaultKey, r)) {
		return ErrBadReceipt
	}
	return nil
}

// Receipt builds and signs the receipt of an erasure, from its result and
// the subject's report (whom to tell).
func (s *Store) Receipt(res veil.Erasure, report veil.SubjectReport) veil.ErasureReceipt {
	r := veil.ErasureReceipt{Subject: res.Subject, Time: s.Now().UTC(), Events: res.Events, DataKeys: res.DataKeys,
		Cancelled: res.Cancelled, Recipients: report.Recipients()}
	if r.Cancelled == nil {
		r.Cancelled = map[string]int64{}
	}
	SignReceipt(s.vaultKey, &r)
	return r
}

// SubjectRows returns the audit rows of a subject (by reference), oldest
// first.
func (s *Store) SubjectRows(ctx context.Context, ref string) ([]veil.AuditEntry, error) {
	var out []veil.AuditEntry
	err := s.Export(ctx, veil.AuditFilter{Subject: s.SubjectHash(ref)}, func(e *veil.AuditEntry) error {
		out = append(out, *e)
		return nil
	})
	return out, err
}
