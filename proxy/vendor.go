package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

// scheme verifies one vendor's signed requests and reads what Veil needs
// from them. Each scheme is exactly as ../shared/ats-samples/README.md (and
// testdata/samples/SAMPLES.md) documents it.
type scheme interface {
	// Verify checks the request's signature at time now. It returns a
	// *veil.Error: ENOSIGNATURE, EBADSIGNATURE, ESTALE, or EMALFORMED for a
	// scheme that must read the body to verify it.
	Verify(h http.Header, body []byte, now time.Time) error
	// Describe returns the event type, the idempotency key and the subject
	// reference of a verified request whose body is valid JSON.
	Describe(h http.Header, body []byte) inbound
}

// inbound is what a scheme reads from a verified request.
type inbound struct {
	eventType string
	dedupKey  string
	subject   string // source:kind:id, or "" when the payload names no record
}

var (
	errNoSignature  = veil.Errorf(veil.ENOSIGNATURE, "The request carries no signature.")
	errBadSignature = veil.Errorf(veil.EBADSIGNATURE, "The signature does not match the body.")
	errStale        = veil.Errorf(veil.ESTALE, "The signed timestamp is outside the tolerance.")
	errMalformed    = veil.Errorf(veil.EMALFORMED, "The body is not valid JSON.")
)

// newScheme returns the scheme of src; the config was validated.
func newScheme(src *veil.Source) (scheme, error) {
	base := vendorBase{source: src.Name, eventTypePath: src.EventTypePath, subjectPath: src.SubjectPath}
	tol := time.Duration(src.Tolerance)
	switch src.Vendor {
	case veil.VendorGreenhouse:
		base.fill("action", "candidate",
			"payload.application.candidate.id", "payload.candidate.id", "payload.person.id")
		return &greenhouse{vendorBase: base, secret: []byte(src.Secret)}, nil
	case veil.VendorLever:
		base.fill("event", "candidate", "data.candidateId", "data.opportunityId")
		return &lever{vendorBase: base, secret: []byte(src.Secret), tolerance: tol}, nil
	case veil.VendorAshby:
		base.fill("action", "candidate", "data.application.candidate.id", "data.candidate.id",
			"data.surveySubmission.candidateId", "data.candidateId")
		return &ashby{vendorBase: base, secret: []byte(src.Secret)}, nil
	case veil.VendorSmartRecruiters:
		base.fill("", "candidate", "candidate_id", "candidateId", "candidate.id")
		return &smartRecruiters{vendorBase: base, secret: []byte(src.Secret), tolerance: tol}, nil
	case veil.VendorStandard:
		key, err := veil.DecodeStandardSecret(src.Secret)
		if err != nil {
			return nil, err
		}
		base.fill("type", "candidate", "data.candidate.id", "data.candidate_id", "data.candidateId")
		return &standard{vendorBase: base, key: key, tolerance: tol}, nil
	case veil.VendorHMAC:
		base.fill("event", "candidate", "data.candidate.id", "candidate.id", "candidate_id", "data.candidate_id")
		if base.eventTypePath == "event" {
			base.eventTypePath = "event|type|action|event_type" // see vendorBase.eventType
		}
		return &genericHMAC{vendorBase: base, secret: []byte(src.Secret), cfg: *src.HMAC}, nil
	}
	return nil, fmt.Errorf("unknown vendor %q", src.Vendor)
}

// vendorBase reads event type and subject with gjson paths.
type vendorBase struct {
	source        string
	eventTypePath string   // "a|b" tries a then b
	subjectPath   string   // config override
	subjectPaths  []string // vendor defaults, first present wins
	subjectKind   string
}

func (b *vendorBase) fill(eventType, kind string, subjectPaths ...string) {
	if b.eventTypePath == "" {
		b.eventTypePath = eventType
	}
	b.subjectKind = kind
	if b.subjectPath != "" {
		subjectPaths = []string{b.subjectPath}
	}
	b.subjectPaths = subjectPaths
}

func (b *vendorBase) eventType(body []byte) string {
	for _, p := range strings.Split(b.eventTypePath, "|") {
		if r := gjson.GetBytes(body, p); r.Type == gjson.String && r.Str != "" {
			return boundLabel(r.Str)
		}
	}
	return "unknown"
}

func (b *vendorBase) subject(body []byte) string {
	for _, p := range b.subjectPaths {
		r := gjson.GetBytes(body, p)
		if (r.Type == gjson.String && r.Str != "") || r.Type == gjson.Number {
			return b.source + ":" + b.subjectKind + ":" + r.String()
		}
	}
	return ""
}

// boundLabel keeps an event type short and printable: it lands in the audit
// log and in metric-free log fields, so a hostile sender cannot stuff data into it.
func boundLabel(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '-' || r == ':' || r == '/' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return "invalid"
		}
	}
	return s
}

func bodyDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// checkTimestamp reports errStale when ts is further than tolerance from now
// in either direction.
func checkTimestamp(ts, now time.Time, tolerance time.Duration) error {
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return errStale
	}
	return nil
}

// greenhouse: Signature: sha256 <hex HMAC-SHA256 of the body>.
type greenhouse struct {
	vendorBase
	secret []byte
}

func (g *greenhouse) Verify(h http.Header, body []byte, _ time.Time) error {
	v := h.Get("Signature")
	if v == "" {
		return errNoSignature
	}
	sig, err := parseGreenhouseSignature(v)
	if err != nil {
		return errBadSignature
	}
	if !hmac.Equal(sig, hmacSHA256(g.secret, body)) {
		return errBadSignature
	}
	return nil
}

func (g *greenhouse) Describe(h http.Header, body []byte) inbound {
	key := h.Get("Greenhouse-Event-ID")
	if key == "" {
		key = bodyDigest(body)
	}
	return inbound{eventType: g.eventType(body), dedupKey: key, subject: g.subjectGreenhouse(body)}
}

func (g *greenhouse) subjectGreenhouse(body []byte) string {
	if s := g.subject(body); s != "" {
		return s
	}
	// Offer events name only the application.
	for _, p := range []string{"payload.application_id", "payload.offer.application_id"} {
		if r := gjson.GetBytes(body, p); r.Exists() && r.String() != "" {
			return g.source + ":application:" + r.String()
		}
	}
	return ""
}

// parseGreenhouseSignature parses "sha256 <hex>".
func parseGreenhouseSignature(v string) ([]byte, error) {
	alg, hexSig, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || alg != "sha256" {
		return nil, errors.New("want \"sha256 <hex>\"")
	}
	return decodeHexSHA256(strings.TrimSpace(hexSig))
}

func decodeHexSHA256(s string) ([]byte, error) {
	if len(s) != 2*sha256.Size {
		return nil, errors.New("want 64 hex digits")
	}
	return hex.DecodeString(s)
}

// ashby: Ashby-Signature: sha256=<hex HMAC-SHA256 of the body>.
type ashby struct {
	vendorBase
	secret []byte
}

func (a *ashby) Verify(h http.Header, body []byte, _ time.Time) error {
	v := h.Get("Ashby-Signature")
	if v == "" {
		return errNoSignature
	}
	sig, err := parseAshbySignature(v)
	if err != nil || !hmac.Equal(sig, hmacSHA256(a.secret, body)) {
		return errBadSignature
	}
	return nil
}

func (a *ashby) Describe(_ http.Header, body []byte) inbound {
	r := gjson.GetManyBytes(body, "action", "webhookActionId")
	key := bodyDigest(body)
	if r[1].String() != "" {
		// Related webhooks share webhookActionId; only (action, id) is unique.
		key = r[0].String() + "\x00" + r[1].String()
	}
	return inbound{eventType: a.eventType(body), dedupKey: key, subject: a.subject(body)}
}

// parseAshbySignature parses "sha256=<hex>".
func parseAshbySignature(v string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(v), "sha256=")
	if !ok {
		return nil, errors.New("want \"sha256=<hex>\"")
	}
	return decodeHexSHA256(hexSig)
}

// lever signs token+triggeredAt (not data) with the signature token; the
// signature travels in the body.
type lever struct {
	vendorBase
	secret    []byte
	tolerance time.Duration
}

func (l *lever) Verify(_ http.Header, body []byte, now time.Time) error {
	if !gjson.ValidBytes(body) {
		return errMalformed
	}
	token, triggeredAt, sig, err := parseLeverBody(body)
	if err != nil {
		return errNoSignature
	}
	want := hmacSHA256(l.secret, []byte(token), []byte(strconv.FormatInt(triggeredAt, 10)))
	got, err := decodeHexSHA256(sig)
	if err != nil || !hmac.Equal(got, want) {
		return errBadSignature
	}
	return checkTimestamp(time.UnixMilli(triggeredAt), now, l.tolerance)
}

func (l *lever) Describe(_ http.Header, body []byte) inbound {
	return inbound{eventType: l.eventType(body), dedupKey: gjson.GetBytes(body, "signature").String(), subject: l.subject(body)}
}

// parseLeverBody reads token, triggeredAt (integer milliseconds) and
// signature from a Lever body; all three must be present.
func parseLeverBody(body []byte) (token string, triggeredAt int64, signature string, err error) {
	r := gjson.GetManyBytes(body, "token", "triggeredAt", "signature")
	if r[0].Type != gjson.String || r[2].Type != gjson.String || r[1].Type != gjson.Number {
		return "", 0, "", errors.New("lever body needs token, triggeredAt and signature")
	}
	triggeredAt, err = strconv.ParseInt(r[1].Raw, 10, 64)
	if err != nil {
		return "", 0, "", errors.New("triggeredAt is not an integer")
	}
	return r[0].Str, triggeredAt, r[2].Str, nil
}

// standard is Standard Webhooks v1: HMAC-SHA256 of id.timestamp.body, keyed
// by the base64-decoded whsec_ secret; several space-separated signatures.
type standard struct {
	vendorBase
	key       []byte
	tolerance time.Duration
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
	if !StandardSigned(s.key, h, body) {
		return errBadSignature
	}
	return checkTimestamp(time.Unix(sec, 0), now, s.tolerance)
}

// standardMAC is the Standard Webhooks v1 MAC: HMAC-SHA256 of id.timestamp.body.
func standardMAC(key []byte, id, ts string, body []byte) []byte {
	return hmacSHA256(key, []byte(id), []byte{'.'}, []byte(ts), []byte{'.'}, body)
}

// StandardSignature returns the webhook-signature value (v1,<base64>) for
// body sent as message id at timestamp ts.
func StandardSignature(key []byte, id, ts string, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(standardMAC(key, id, ts, body))
}

// StandardSigned reports whether any v1 entry of h's webhook-signature is
// the MAC of body under key with h's webhook-id and webhook-timestamp. It
// does not judge the timestamp's age.
func StandardSigned(key []byte, h http.Header, body []byte) bool {
	want := standardMAC(key, h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	ok := false
	for _, sig := range parseStandardSignatures(h.Get("webhook-signature")) {
		ok = ok || hmac.Equal(sig, want)
	}
	return ok
}

func (s *standard) Describe(h http.Header, body []byte) inbound {
	return inbound{eventType: s.eventType(body), dedupKey: h.Get("webhook-id"), subject: s.subject(body)}
}

// parseStandardSignatures returns the decoded v1 entries of a
// webhook-signature header; other versions (v1a, ed25519) are skipped.
func parseStandardSignatures(v string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(v) {
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

// smartRecruiters: smartrecruiters-signature: v1=<hex>[;v1=<hex>…] over
// timestamp.body.event-id.event-name.event-version.link.
type smartRecruiters struct {
	vendorBase
	secret    []byte
	tolerance time.Duration
}

func (s *smartRecruiters) Verify(h http.Header, body []byte, now time.Time) error {
	sigs, ts := h.Get("smartrecruiters-signature"), h.Get("smartrecruiters-timestamp")
	if sigs == "" || ts == "" {
		return errNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errBadSignature
	}
	want := hmacSHA256(s.secret, smartRecruitersMessage(h, body)...)
	ok := false
	for _, sig := range parseSmartRecruitersSignatures(sigs) {
		ok = ok || hmac.Equal(sig, want)
	}
	if !ok {
		return errBadSignature
	}
	return checkTimestamp(time.Unix(sec, 0), now, s.tolerance)
}

// smartRecruitersMessage is the signed content; absent headers count as "".
func smartRecruitersMessage(h http.Header, body []byte) [][]byte {
	dot := []byte{'.'}
	return [][]byte{[]byte(h.Get("smartrecruiters-timestamp")), dot, body, dot, []byte(h.Get("event-id")), dot,
		[]byte(h.Get("event-name")), dot, []byte(h.Get("event-version")), dot, []byte(h.Get("link"))}
}

func (s *smartRecruiters) Describe(h http.Header, body []byte) inbound {
	key := h.Get("event-id")
	if key == "" {
		key = bodyDigest(body)
	}
	et := boundLabel(h.Get("event-name"))
	if et == "" {
		et = "unknown"
	}
	return inbound{eventType: et, dedupKey: key, subject: s.subject(body)}
}

// parseSmartRecruitersSignatures returns the decoded v1 entries of
// "v1=<hex>;v1=<hex>" (up to 16 during key rotation).
func parseSmartRecruitersSignatures(v string) [][]byte {
	var out [][]byte
	for i, f := range strings.Split(v, ";") {
		if i == 16 {
			break
		}
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(f), "v1=")
		if !ok {
			continue
		}
		if sig, err := decodeHexSHA256(hexSig); err == nil {
			out = append(out, sig)
		}
	}
	return out
}

// genericHMAC is an HMAC-SHA256 of the raw body in a configured header.
type genericHMAC struct {
	vendorBase
	secret []byte
	cfg    veil.HMACConfig
}

func (g *genericHMAC) Verify(h http.Header, body []byte, _ time.Time) error {
	v := h.Get(g.cfg.Header)
	if v == "" {
		return errNoSignature
	}
	sig, err := parseHMACSignature(v, g.cfg.Prefix, g.cfg.Encoding)
	if err != nil || !hmac.Equal(sig, hmacSHA256(g.secret, body)) {
		return errBadSignature
	}
	return nil
}

func (g *genericHMAC) Describe(_ http.Header, body []byte) inbound {
	return inbound{eventType: g.eventType(body), dedupKey: bodyDigest(body), subject: g.subject(body)}
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
