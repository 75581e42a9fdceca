package ats

// Ashby. Signature: `Ashby-Signature: sha256=<hex>`, HMAC-SHA256 of the raw
// body with the webhook's secret token. The body's webhookActionId is shared
// by related webhooks, so only (action, webhookActionId) identifies one.

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
	register(&vendor{name: veil.VendorAshby, newScheme: newAshby, subjectKinds: []string{"candidate"}})
}

type ashby struct {
	describer
	keys [][]byte
}

func newAshby(src *veil.Source) (Scheme, error) {
	return &ashby{keys: rawKeys(src), describer: newDescriber(src, "action", "candidate",
		"data.application.candidate.id", "data.candidate.id", "data.surveySubmission.candidateId", "data.candidateId")}, nil
}

func (a *ashby) Verify(h http.Header, body []byte, _ time.Time) error {
	v := h.Get("Ashby-Signature")
	if v == "" {
		return errNoSignature
	}
	sig, err := parseAshbySignature(v)
	if err != nil || !anyMatch(a.keys, [][]byte{sig}, func(k []byte) []byte { return hmacSHA256(k, body) }) {
		return errBadSignature
	}
	return nil
}

func (a *ashby) Sign(body []byte, _ time.Time) (http.Header, []byte, error) {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"veil-send"}}
	h.Set("Ashby-Signature", "sha256="+hex.EncodeToString(hmacSHA256(a.keys[0], body)))
	return h, body, nil
}

func (a *ashby) Describe(_ http.Header, body []byte) Inbound {
	in := Inbound{EventType: a.eventType(body), Subject: a.subject(body)}
	r := gjson.GetManyBytes(body, "action", "webhookActionId")
	if r[1].String() != "" {
		in.DedupKey = r[0].String() + "\x00" + r[1].String()
	} else {
		in.BodyKey = true // no id in the body: the body is the key
	}
	return in
}

// parseAshbySignature parses "sha256=<hex>".
func parseAshbySignature(v string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(v), "sha256=")
	if !ok {
		return nil, errors.New(`want "sha256=<hex>"`)
	}
	return decodeHexSHA256(hexSig)
}
