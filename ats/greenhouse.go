package ats

// Greenhouse (Recruiting web hooks). Signature: `Signature: sha256 <hex>`,
// HMAC-SHA256 of the raw body with the web hook's secret key. Greenhouse
// signs neither a timestamp nor its Greenhouse-Event-ID header, so a
// byte-identical body is a duplicate whatever that header says.

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

func init() {
	register(&vendor{name: veil.VendorGreenhouse, newScheme: newGreenhouse,
		subjectKinds: []string{"candidate", "application"}})
}

type greenhouse struct {
	describer
	keys [][]byte
}

func newGreenhouse(src *veil.Source) (Scheme, error) {
	return &greenhouse{keys: rawKeys(src), describer: newDescriber(src, "action", "candidate",
		"payload.application.candidate.id", "payload.candidate.id", "payload.person.id")}, nil
}

func (g *greenhouse) Verify(h http.Header, body []byte, _ time.Time) error {
	v := h.Get("Signature")
	if v == "" {
		return errNoSignature
	}
	sig, err := parseGreenhouseSignature(v)
	if err != nil || !anyMatch(g.keys, [][]byte{sig}, func(k []byte) []byte { return hmacSHA256(k, body) }) {
		return errBadSignature
	}
	return nil
}

func (g *greenhouse) Sign(body []byte, _ time.Time) (http.Header, []byte, error) {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"veil-send"}}
	h.Set("Greenhouse-Event-ID", veil.NewID(""))
	h.Set("Signature", "sha256 "+hex.EncodeToString(hmacSHA256(g.keys[0], body)))
	return h, body, nil
}

func (g *greenhouse) Describe(h http.Header, body []byte) Inbound {
	in := Inbound{EventType: g.eventType(body), DedupKey: h.Get("Greenhouse-Event-ID"), BodyKey: true, Subject: g.subject(body)}
	if in.Subject == "" {
		// Offer events name only the application.
		for _, p := range []string{"payload.application_id", "payload.offer.application_id"} {
			if id := idAt(body, p); id != "" {
				in.Subject = g.source + ":application:" + id
				break
			}
		}
	}
	return in
}

// UpstreamIDs keeps what Harvest needs to return the application and its
// candidate.
func (g *greenhouse) UpstreamIDs(body []byte) map[string]string {
	r := gjson.GetManyBytes(body, "payload.application.id", "payload.application.candidate.id")
	return map[string]string{"application": r[0].String(), "candidate": r[1].String()}
}

// parseGreenhouseSignature parses "sha256 <hex>".
func parseGreenhouseSignature(v string) ([]byte, error) {
	alg, hexSig, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || alg != "sha256" {
		return nil, errors.New(`want "sha256 <hex>"`)
	}
	return decodeHexSHA256(strings.TrimSpace(hexSig))
}
