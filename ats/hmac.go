package ats

// A generic HMAC sender (Workable and the like): an HMAC-SHA256 of the raw
// body in a configured header, after an optional prefix, hex or base64.
// Nothing else is signed, so the body itself is the dedup key.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

func init() {
	register(&vendor{name: veil.VendorHMAC, newScheme: newHMAC, check: checkHMAC, subjectKinds: []string{"candidate"}})
}

func checkHMAC(src *veil.Source) error {
	if src.HMAC == nil || src.HMAC.Header == "" {
		return errors.New("hmac.header: required for vendor hmac")
	}
	if e := src.HMAC.Encoding; e != "hex" && e != "base64" {
		return fmt.Errorf("hmac.encoding: %q is not hex or base64", e)
	}
	return nil
}

type genericHMAC struct {
	describer
	keys [][]byte
	cfg  veil.HMACConfig
}

func newHMAC(src *veil.Source) (Scheme, error) {
	d := newDescriber(src, "event|type|action|event_type", "candidate", "data.candidate.id", "candidate.id", "candidate_id", "data.candidate_id")
	return &genericHMAC{keys: rawKeys(src), cfg: *src.HMAC, describer: d}, nil
}

func (g *genericHMAC) Verify(h http.Header, body []byte, _ time.Time) error {
	v := h.Get(g.cfg.Header)
	if v == "" {
		return errNoSignature
	}
	sig, err := parseHMACSignature(v, g.cfg.Prefix, g.cfg.Encoding)
	if err != nil || !anyMatch(g.keys, [][]byte{sig}, func(k []byte) []byte { return hmacSHA256(k, body) }) {
		return errBadSignature
	}
	return nil
}

func (g *genericHMAC) Sign(body []byte, _ time.Time) (http.Header, []byte, error) {
	sig := hmacSHA256(g.keys[0], body)
	enc := hex.EncodeToString(sig)
	if g.cfg.Encoding == "base64" {
		enc = base64.StdEncoding.EncodeToString(sig)
	}
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"veil-send"}}
	h.Set(g.cfg.Header, g.cfg.Prefix+enc)
	return h, body, nil
}

func (g *genericHMAC) Describe(_ http.Header, body []byte) Inbound {
	return Inbound{EventType: g.eventType(body), BodyKey: true, Subject: g.subject(body)}
}

// parseHMACSignature strips prefix and decodes hex or base64.
func parseHMACSignature(v, prefix, encoding string) ([]byte, error) {
	s, ok := strings.CutPrefix(strings.TrimSpace(v), prefix)
	if !ok {
		return nil, errors.New("signature prefix missing")
	}
	if encoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != sha256.Size {
			return nil, errors.New("want base64 of 32 bytes")
		}
		return b, nil
	}
	return decodeHexSHA256(strings.ToLower(s))
}
