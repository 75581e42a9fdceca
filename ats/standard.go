package ats

// Standard Webhooks v1 (standardwebhooks.com): HMAC-SHA256 of
// `id.timestamp.body`, keyed by the base64-decoded whsec_ secret, sent as
// `webhook-signature: v1,<base64>` (several, space-separated, while keys
// rotate). Veil signs its own outbound deliveries the same way.

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

func init() {
	register(&vendor{name: veil.VendorStandard, newScheme: newStandard, check: checkStandard,
		subjectKinds: []string{"candidate"}})
}

func checkStandard(src *veil.Source) error {
	for i, s := range src.SecretList() {
		if _, err := veil.DecodeStandardSecret(s); err != nil {
			return fmt.Errorf("secrets[%d]: %w", i, err)
		}
	}
	return nil
}

type standard struct {
	describer
	keys      [][]byte
	tolerance time.Duration
}

func newStandard(src *veil.Source) (Scheme, error) {
	s := &standard{tolerance: time.Duration(src.Tolerance),
		describer: newDescriber(src, "type", "candidate", "data.candidate.id", "data.candidate_id", "data.candidateId")}
	for _, secret := range src.SecretList() {
		key, err := veil.DecodeStandardSecret(secret)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, key)
	}
	return s, nil
}

func (s *standard) Verify(h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errBadSignature
	}
	if !StandardSigned(s.keys, h, body) {
		return errBadSignature
	}
	return checkTimestamp(time.Unix(sec, 0), now, s.tolerance)
}

func (s *standard) Sign(body []byte, now time.Time) (http.Header, []byte, error) {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"veil-send"}}
	StandardSign(h, s.keys[:1], veil.NewID("msg_"), now, body)
	return h, body, nil
}

func (s *standard) Describe(h http.Header, body []byte) Inbound {
	return Inbound{EventType: s.eventType(body), DedupKey: h.Get("webhook-id"), Subject: s.subject(body)}
}

// standardMAC is the Standard Webhooks v1 MAC: HMAC-SHA256 of id.timestamp.body.
func standardMAC(key []byte, id, ts string, body []byte) []byte {
	return hmacSHA256(key, []byte(id), []byte{'.'}, []byte(ts), []byte{'.'}, body)
}

// StandardSign sets webhook-id, webhook-timestamp and webhook-signature on
// h for body sent as message id at now: one v1 signature per key, so a
// receiver that knows any of them (new or old, while secrets rotate) verifies it.
func StandardSign(h http.Header, keys [][]byte, id string, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(standardMAC(k, id, ts, body))
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", strings.Join(sigs, " "))
}

// StandardSigned reports whether any v1 entry of h's webhook-signature is
// the MAC of body under one of keys with h's webhook-id and
// webhook-timestamp. It does not judge the timestamp's age.
func StandardSigned(keys [][]byte, h http.Header, body []byte) bool {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	return anyMatch(keys, parseStandardSignatures(h.Get("webhook-signature")),
		func(k []byte) []byte { return standardMAC(k, id, ts, body) })
}

// parseStandardSignatures returns the decoded v1 entries of a
// webhook-signature header; other versions (v1a, ed25519) are skipped. At
// most 16 entries are read.
func parseStandardSignatures(v string) [][]byte {
	var out [][]byte
	for i, f := range strings.Fields(v) {
		if i == 16 {
			break
		}
		b64, ok := strings.CutPrefix(f, "v1,")
		if !ok {
			continue
		}
		if sig, err := base64.StdEncoding.DecodeString(b64); err == nil && len(sig) == sha256.Size {
			out = append(out, sig)
		}
	}
	return out
}
