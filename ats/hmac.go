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
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policies"
	"github.com/veilhq/veil/redact"
)

var hmacVendor = &vendor{name: veil.VendorHMAC, newScheme: newHMAC, check: checkHMAC, subjectKinds: []string{"candidate"}}

func checkHMAC(src *veil.Source) error {
	if err := checkNormalize(src.Normalize); err != nil {
		return err
	}
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
	keys      [][]byte
	cfg       veil.HMACConfig
	normalize *veil.NormalizeConfig
}

func newHMAC(src *veil.Source) (Scheme, error) {
	d := newDescriber(src, "event|type|action|event_type", "candidate", "data.candidate.id", "candidate.id", "candidate_id", "data.candidate_id")
	if n := src.Normalize; n != nil && n.Type != nil {
		d.eventTypePath = n.Type.Path
	}
	return &genericHMAC{keys: rawKeys(src), cfg: *src.HMAC, describer: d, normalize: src.Normalize}, nil
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

// normalizeFields are the normal-form fields a normalize block may map:
// the scalar leaves, and the lists of strings.
var normalizeFields = []string{"occurred_at",
	"candidate.id", "candidate.first_name", "candidate.last_name", "candidate.name", "candidate.emails", "candidate.phones",
	"candidate.address.street", "candidate.address.city", "candidate.address.region", "candidate.address.postal_code",
	"candidate.address.country", "candidate.title", "candidate.company", "candidate.date_of_birth", "candidate.links",
	"application.id", "application.status", "application.applied_at", "application.stage.id", "application.stage.name",
	"application.previous_stage.id", "application.previous_stage.name", "application.source.id", "application.source.name",
	"application.rejection.reason", "application.rejection.note",
	"job.id", "job.title", "job.requisition_id",
	"offer.id", "offer.status", "offer.sent_at", "offer.resolved_at", "offer.starts_at"}

// checkNormalize validates a source's normalize block: known fields,
// paths gjson can follow, types that exist.
func checkNormalize(n *veil.NormalizeConfig) error {
	if n == nil {
		return nil
	}
	for _, f := range sortedKeys(n.Fields) {
		if !slices.Contains(normalizeFields, f) {
			return fmt.Errorf("normalize.%s: not a field of the normal form; the fields are %s", f, strings.Join(normalizeFields, ", "))
		}
		if err := checkPath(n.Fields[f]); err != nil {
			return fmt.Errorf("normalize.%s: %q is not a gjson path: %v", f, n.Fields[f], err)
		}
	}
	if t := n.Type; t != nil {
		if err := checkPath(t.Path); err != nil {
			return fmt.Errorf("normalize.type.path: %q is not a gjson path: %v", t.Path, err)
		}
		for _, k := range sortedKeys(t.Map) {
			if !slices.Contains(veil.NormalTypes, t.Map[k]) {
				return fmt.Errorf("normalize.type.map.%s: %q is not a normal type; the types are %s", k, t.Map[k], strings.Join(veil.NormalTypes, ", "))
			}
		}
	}
	return nil
}

// checkPath accepts the gjson paths a normalize block needs: keys joined
// by dots, with # for every element or an index, and \ escaping a
// character. Queries, modifiers and multipaths are refused.
func checkPath(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	for i, seg := range splitPattern(p) {
		if seg == "" {
			return fmt.Errorf("segment %d is empty", i+1)
		}
		for j := 0; j < len(seg); j++ {
			switch {
			case seg[j] == '\\':
				j++ // the next character is literal
			case strings.IndexByte("*?|@()[]{}!=<>,", seg[j]) >= 0:
				return fmt.Errorf("segment %q uses gjson syntax other than keys, indices and # (escape a literal %q with \\)", seg, seg[j])
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Normalize maps the body with the source's normalize block; a source
// without one gets the envelope only (type unknown, every field null).
func (g *genericHMAC) Normalize(eventType string, doc *redact.Doc) *veil.NormalEvent {
	e := &veil.NormalEvent{Schema: veil.NormalSchema, Type: veil.TypeUnknown, VendorType: eventType, Source: g.source, Vendor: veil.VendorHMAC}
	n := g.normalize
	if n == nil {
		return e
	}
	body := doc.Raw()
	get := func(f string) *string {
		if p, ok := n.Fields[f]; ok {
			if r := gjson.Get(body, p); r.Exists() && r.Type != gjson.Null && r.String() != "" {
				return veil.Str(r.String())
			}
		}
		return nil
	}
	list := func(f string) []string {
		p, ok := n.Fields[f]
		if !ok {
			return nil
		}
		r := gjson.Get(body, p)
		if !r.IsArray() {
			if s := get(f); s != nil {
				return []string{*s}
			}
			return nil
		}
		var out []string
		for _, x := range r.Array() {
			if x.String() != "" {
				out = append(out, x.String())
			}
		}
		return out
	}
	if t := n.Type; t != nil {
		vt := gjson.Get(body, t.Path).String()
		e.VendorType = Label(vt)
		if nt, ok := t.Map[vt]; ok {
			e.Type = nt
		}
	}
	e.OccurredAt = get("occurred_at")
	c := &e.Candidate
	c.ID, c.FirstName, c.LastName, c.Name = get("candidate.id"), get("candidate.first_name"), get("candidate.last_name"), get("candidate.name")
	if c.Name == nil {
		c.Name = joinName(c.FirstName, c.LastName)
	}
	c.Emails, c.Phones, c.Links = list("candidate.emails"), list("candidate.phones"), list("candidate.links")
	c.Address = veil.NormalAddress{Street: get("candidate.address.street"), City: get("candidate.address.city"),
		Region: get("candidate.address.region"), PostalCode: get("candidate.address.postal_code"), Country: get("candidate.address.country")}
	c.Title, c.Company, c.DateOfBirth = get("candidate.title"), get("candidate.company"), get("candidate.date_of_birth")
	a := &e.Application
	a.ID, a.Status, a.AppliedAt = get("application.id"), get("application.status"), get("application.applied_at")
	a.Stage = veil.NormalRef{ID: get("application.stage.id"), Name: get("application.stage.name")}
	a.PreviousStage = veil.NormalRef{ID: get("application.previous_stage.id"), Name: get("application.previous_stage.name")}
	a.Source = veil.NormalRef{ID: get("application.source.id"), Name: get("application.source.name")}
	a.Rejection = veil.NormalRejection{Reason: get("application.rejection.reason"), Note: get("application.rejection.note")}
	e.Job = veil.NormalJob{ID: get("job.id"), Title: get("job.title"), RequisitionID: get("job.requisition_id")}
	e.Offer = veil.NormalOffer{ID: get("offer.id"), Status: get("offer.status"), SentAt: get("offer.sent_at"),
		ResolvedAt: get("offer.resolved_at"), StartsAt: get("offer.starts_at")}
	return e
}

// Classifier is the scheme itself: its map is its source's normalize block.
func (g *genericHMAC) Classifier() Classifier { return g }

// Category gives a path the normalize block maps the category of the
// normal-form field it feeds; every other path is unclassified.
func (g *genericHMAC) Category(pattern string) string {
	if g.normalize == nil {
		return ""
	}
	if g.normalize.Type != nil && pattern == g.normalize.Type.Path {
		return ops
	}
	cats := policies.EventCategories()
	for f, p := range g.normalize.Fields {
		if p == pattern || p+".#" == pattern || strings.ReplaceAll(p, ".#.", ".") == pattern {
			if c, ok := cats[f]; ok {
				return c
			}
			return cats[f+".#"]
		}
	}
	return ""
}

// Recognize knows a generic sender's body only by its normalize block's
// event name path.
func (g *genericHMAC) Recognize(body []byte) bool {
	return g.normalize != nil && g.normalize.Type != nil && gjson.GetBytes(body, g.normalize.Type.Path).Exists()
}
