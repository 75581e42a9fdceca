// Package ats is the home of every ATS vendor Veil speaks to. Each vendor
// has one file holding all of its logic: its signature scheme with both
// halves (Verify for inbound requests, Sign for `veil send`), its
// deduplication key, where its events name their subject, and, as they are
// added, its event names, normaliser, payload categories and API client.
// Adding an ATS is one new file and its line in the vendors list (ats.go).
package ats

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

// Inbound is what a scheme reads from a verified request whose body is
// valid JSON.
type Inbound struct {
	EventType string // the vendor's event name, bounded (see Label)
	// DedupKey is the vendor's idempotency key for this request, "" when it
	// sends none. The store keeps only a keyed hash of it.
	DedupKey string
	// BodyKey says the scheme signs neither an id nor a timestamp: a
	// byte-identical body already accepted is a duplicate whatever the
	// (unsigned) headers say.
	BodyKey bool
	// Subject is the vendor's record reference (source:candidate:id), or
	// "" when the payload names none.
	Subject string
}

// Scheme is one configured source's vendor scheme.
type Scheme interface {
	// Verify checks the request's signature over the raw body at time now,
	// before anything parses the body. It returns a *veil.Error:
	// ENOSIGNATURE, EBADSIGNATURE or ESTALE, or EMALFORMED from a scheme
	// whose signature travels in the body (Lever) when the scan for it fails.
	Verify(h http.Header, body []byte, now time.Time) error
	// Sign returns the headers, and the body (Lever stamps its signature
	// into it), with which the vendor would send body at now, signed with
	// the source's first secret: what `veil send` posts.
	Sign(body []byte, now time.Time) (http.Header, []byte, error)
	// Describe reads the event type, dedup key and subject of a verified
	// request whose body passed redact.Validate.
	Describe(h http.Header, body []byte) Inbound
	// Normalize and Category: the event in the normal form, and the data
	// category of each path of the vendor's payloads.
	Normalizer
	Classifier
	// Classifier returns the classifier behind Category, one pointer for as
	// long as its answers hold (the vendor's map), so parsed documents can
	// remember its answers.
	Classifier() Classifier
	// Recognize reports whether a valid JSON body has the shape of this
	// vendor's webhooks (for previews of files whose source is not named).
	Recognize(body []byte) bool
}

// hasAll reports whether body has every one of the top-level keys.
func hasAll(body []byte, keys ...string) bool {
	for _, r := range gjson.GetManyBytes(body, keys...) {
		if !r.Exists() {
			return false
		}
	}
	return true
}

// Upstreamer is implemented by schemes whose source can run in upstream
// lookup mode: Veil keeps the record ids instead of the payload.
type Upstreamer interface {
	// UpstreamIDs returns the ids the ATS API needs to return the record.
	UpstreamIDs(body []byte) map[string]string
}

// vendor is one vendor: how its sources are checked and verified.
type vendor struct {
	name string
	// newScheme returns the scheme of a validated source.
	newScheme func(src *veil.Source) (Scheme, error)
	// check validates the vendor-specific settings of a source (see
	// veil.Vendors); nil means it has none.
	check func(src *veil.Source) error
	// subjectKinds are the record kinds the vendor's subjects name
	// (candidate, application…), for validating erasure requests.
	subjectKinds []string
}

// vendors are the vendors Veil implements, one file each.
var vendors = byName(greenhouseVendor, leverVendor, ashbyVendor, smartRecruitersVendor, standardVendor, hmacVendor)

func byName(vs ...*vendor) map[string]*vendor {
	out := make(map[string]*vendor, len(vs))
	for _, v := range vs {
		out[v.name] = v
	}
	return out
}

// Vendors returns the vendors a config may name, with their checks, for
// veil.ParseConfig and veil.LoadConfig.
func Vendors() veil.Vendors {
	out := make(veil.Vendors, len(vendors))
	for name, v := range vendors {
		check := v.check
		if check == nil {
			check = func(*veil.Source) error { return nil }
		}
		out[name] = check
	}
	return out
}

// New returns the scheme of src, whose config was validated.
func New(src *veil.Source) (Scheme, error) {
	v := vendors[src.Vendor]
	if v == nil {
		return nil, fmt.Errorf("unknown vendor %q", src.Vendor)
	}
	return v.newScheme(src)
}

// SubjectKinds returns the record kinds a vendor's subject references name
// (greenhouse:candidate:123 has kind candidate). Every vendor has
// "candidate".
func SubjectKinds(vendorName string) []string {
	if v := vendors[vendorName]; v != nil {
		return v.subjectKinds
	}
	return nil
}

var (
	errNoSignature  = veil.Errorf(veil.ENOSIGNATURE, "The request carries no signature.")
	errBadSignature = veil.Errorf(veil.EBADSIGNATURE, "The signature does not match the body.")
	errStale        = veil.Errorf(veil.ESTALE, "The signed timestamp is outside the tolerance.")
)

// describer reads the event type and the subject with gjson paths. Its
// users call it only on bodies that passed redact.Validate (bounded depth).
type describer struct {
	source        string
	eventTypePath string   // "a|b" tries a then b
	subjectPaths  []string // first present wins
	subjectKind   string
}

// newDescriber uses the source's event_type_path and subject_path when set,
// the vendor's defaults otherwise.
func newDescriber(src *veil.Source, eventType, kind string, subjectPaths ...string) describer {
	d := describer{source: src.Name, eventTypePath: eventType, subjectKind: kind, subjectPaths: subjectPaths}
	if src.EventTypePath != "" {
		d.eventTypePath = src.EventTypePath
	}
	if src.SubjectPath != "" {
		d.subjectPaths = []string{src.SubjectPath}
	}
	return d
}

func (d *describer) eventType(body []byte) string {
	for _, p := range strings.Split(d.eventTypePath, "|") {
		if r := gjson.GetBytes(body, p); r.Type == gjson.String && r.Str != "" {
			return Label(r.Str)
		}
	}
	return "unknown"
}

func (d *describer) subject(body []byte) string {
	for _, p := range d.subjectPaths {
		if id := idAt(body, p); id != "" {
			return d.source + ":" + d.subjectKind + ":" + id
		}
	}
	return ""
}

// idAt returns the string or number at path as text, "" otherwise.
func idAt(body []byte, path string) string {
	r := gjson.GetBytes(body, path)
	if (r.Type == gjson.String && r.Str != "") || r.Type == gjson.Number {
		return r.String()
	}
	return ""
}

// Label keeps a vendor-chosen name (an event type) short and printable: it
// lands in the audit log and in logs, so a sender cannot stuff data into
// it. Anything else becomes "invalid".
func Label(s string) string {
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

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// anyMatch reports whether one of sigs is the MAC of one of keys; mac
// computes the MAC for a key. Every comparison is constant-time.
func anyMatch(keys [][]byte, sigs [][]byte, mac func(key []byte) []byte) bool {
	ok := false
	for _, k := range keys {
		want := mac(k)
		for _, s := range sigs {
			ok = hmac.Equal(s, want) || ok
		}
	}
	return ok
}

// rawKeys returns the source's secrets as raw bytes.
func rawKeys(src *veil.Source) [][]byte {
	var out [][]byte
	for _, s := range src.SecretList() {
		out = append(out, []byte(s))
	}
	return out
}

// checkTimestamp reports errStale when ts is further than tolerance from now
// in either direction.
func checkTimestamp(ts, now time.Time, tolerance time.Duration) error {
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return errStale
	}
	return nil
}

func decodeHexSHA256(s string) ([]byte, error) {
	if len(s) != 2*sha256.Size {
		return nil, errors.New("want 64 hex digits")
	}
	return hex.DecodeString(s)
}
