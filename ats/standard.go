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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/redact"
)

var standardVendor = &vendor{name: veil.VendorStandard, newScheme: newStandard, check: checkStandard,
	subjectKinds: []string{"candidate"}}

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

// Normalize reads the shape the Standard Webhooks samples use
// ({type, timestamp, data: {application_id, candidate, job, stage…}}). A type
// that is already a normal type is kept; candidate.hired is a hire.
func (s *standard) Normalize(eventType string, doc *redact.Doc) *veil.NormalEvent {
	e := newEvent(s.source, veil.VendorStandard, eventType, standardTypes)
	if e.Type == veil.TypeUnknown && slices.Contains(veil.NormalTypes, eventType) {
		e.Type = eventType
	}
	root := doc.Root()
	d := root.Get("data")
	cand := d.Get("candidate")
	e.OccurredAt = first(root.Get("timestamp"), d.Get("hired_at"))
	c := &e.Candidate
	c.ID, c.FirstName, c.LastName = first(cand.Get("id"), d.Get("candidate_id")), cand.Get("first_name").Ptr(), cand.Get("last_name").Ptr()
	c.Name = first(cand.Get("name"))
	if c.Name == nil {
		c.Name = joinName(c.FirstName, c.LastName)
	}
	c.Emails, c.Phones = texts(cand.Get("emails"), "address"), texts(cand.Get("phones"), "number")
	addr := cand.Get("address")
	c.Address = veil.NormalAddress{Street: first(addr.Get("line1"), addr.Get("street")), City: addr.Get("city").Ptr(),
		Region: addr.Get("region").Ptr(), PostalCode: addr.Get("postal_code").Ptr(), Country: addr.Get("country").Ptr()}
	c.DateOfBirth = cand.Get("date_of_birth").Ptr()
	if u := cand.Get("linkedin_url").Ptr(); u != nil {
		c.Links = []string{*u}
	}
	a := &e.Application
	a.ID = d.Get("application_id").Ptr()
	a.Status = first(d.Get("application_status"))
	a.Stage = veil.NormalRef{ID: d.Get("stage.id").Ptr(), Name: d.Get("stage.name").Ptr()}
	a.PreviousStage = veil.NormalRef{ID: d.Get("previous_stage.id").Ptr(), Name: d.Get("previous_stage.name").Ptr()}
	job := d.Get("job")
	e.Job = veil.NormalJob{ID: job.Get("id").Ptr(), Title: first(job.Get("title"), d.Get("terms.title"))}
	if loc := job.Get("location").Ptr(); loc != nil {
		e.Job.Offices = []veil.NormalRef{{Name: loc}}
	}
	offer, terms := d.Get("offer"), d.Get("terms")
	if id := first(offer.Get("id"), d.Get("offer_id")); id != nil {
		pay := offer.Get("base_salary")
		if !pay.Exists() {
			pay = terms.Get("base_salary")
		}
		e.Offer = veil.NormalOffer{ID: id, StartsAt: first(d.Get("start_date"), terms.Get("start_date")),
			Compensation: compensation(pay.Get("amount"), pay.Get("currency"), pay.Get("period"))}
		if strings.HasPrefix(eventType, "offer.") {
			e.Offer.Status = d.Get("status").Ptr()
		}
	}
	return e
}

var standardTypes = map[string]string{"candidate.hired": veil.TypeApplicationHired}

func (s *standard) Classifier() Classifier { return standardCategories }

func (s *standard) Category(pattern string) string { return standardCategories.Category(pattern) }

// standardUser is a person named by reference (who moved the
// application, who created the offer, a referrer, an approver).
func standardUser(prefix string) []string {
	p := func(s string) string { return prefix + "." + s }
	return []string{p("id"), uid, p("name"), name, p("email"), email}
}

// standardCategories classifies the Standard Webhooks samples' recruiting
// payloads (a candidate, an application, an offer under data).
var standardCategories = categories(slices.Concat(
	[]string{
		"type", ops, "timestamp", ops,
		"data.candidate.id", uid, "data.candidate_id", uid, "data.application_id", uid, "data.application.id", uid,
		"data.candidate.first_name", "user.name.first", "data.candidate.last_name", "user.name.last", "data.candidate.name", name,
		"data.candidate.emails.#.address", email, "data.candidate.phones.#.number", phone, "data.candidate.*.#.kind", ops,
		"data.candidate.address.line1", "user.contact.address.street", "data.candidate.address.line2", "user.contact.address.street",
		"data.candidate.address.city", "user.contact.address.city", "data.candidate.address.region", "user.contact.address.state",
		"data.candidate.address.postal_code", "user.contact.address.postal_code",
		"data.candidate.address.country", "user.contact.address.country", "data.candidate.linkedin_url", social,
		"data.candidate.resume_url", private, "data.candidate.date_of_birth", dob,
		"data.eeo.gender", gender, "data.eeo.race_ethnicity", race, "data.eeo.disability_status", health,
		"data.eeo.veteran_status", protected,
		// the pipeline
		"data.stage.id", ops, "data.stage.name", ops, "data.previous_stage.id", ops, "data.previous_stage.name", ops,
		"data.job.id", ops, "data.job.title", ops, "data.job.location", ops, "data.job.department", ops,
		"data.status", ops, "data.hired_at", ops, "data.start_date", ops, "data.offer_id", ops, "data.offer.id", ops,
		"data.notes", private, "data.interview_summary", private,
		"data.attachments.#.kind", ops, "data.attachments.#.filename", private, "data.attachments.#.url", private,
		"data.custom_fields.#.key", ops, "data.custom_fields.#.label", ops, "data.custom_fields.#.value", private,
		"data.approvals.#.comment", private, "data.approvals.#.decided_at", ops, "data.approvals.#.decision", ops,
		"data.terms.title", ops, "data.terms.start_date", ops, "data.terms.manager", name, "data.terms.base_salary.**", money,
		"data.offer.base_salary.**", money, "data.offer.bonus_target_percent", money, "data.offer.equity", money,
		"data.offer.status", ops, "data.offer.start_date", ops,
		"data.referrer.referral_bonus_eligible", ops,
		"data.onboarding.bank_account_on_file", bank, "data.onboarding.ssn_last4", govID,
		"data.onboarding.emergency_contact.name", name, "data.onboarding.emergency_contact.phone", phone,
		"data.onboarding.emergency_contact.relationship", private,
	},
	standardUser("data.moved_by"), standardUser("data.created_by"), standardUser("data.referrer"),
	standardUser("data.approvals.#.approver"),
)...)

func (s *standard) Recognize(body []byte) bool {
	return hasAll(body, "type", "data") && !hasAll(body, "token")
}
