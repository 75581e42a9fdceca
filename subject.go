package veil

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// SubjectReport is a data subject's access report (GDPR Art. 15): item by
// item what Art. 15(1)(a)–(h) and 15(2) ask, and every transfer of the
// person's data to a destination and every lookup of it, from the audit
// log. It names fields and categories, never values; Art. 15(3)'s copy of
// the data is a separate file (veil report subject --copy).
type SubjectReport struct {
	Subject    string           `json:"subject"`   // the keyed hash the person is known by
	Reference  string           `json:"reference"` // the reference the report was asked for
	References int              `json:"references_linked"`
	Generated  time.Time        `json:"generated"`
	Controller ControllerConfig `json:"controller"`
	Events     int              `json:"events_received"`
	// Purposes and legal bases of each processing (a), the categories
	// concerned (b), the recipients (c), Art. 15(2) safeguards with them.
	Purposes   []Purpose       `json:"purposes"`
	Categories []CategoryCount `json:"categories"`
	Recipients []Recipient     `json:"recipients"`
	// Holdings is what Veil itself holds of the person and until when (d).
	Holdings Holdings `json:"holdings"`
	// Rights (e) and where to complain (f).
	Rights     []string   `json:"rights"`
	Complaint  string     `json:"complaint"`
	DataSource string     `json:"source"`              // (g)
	Automated  string     `json:"automated_decisions"` // (h)
	Transfers  []Transfer `json:"transfers"`
	Lookups    []Transfer `json:"lookups"`
	Erased     *time.Time `json:"erased,omitempty"`
	Restored   *time.Time `json:"restored,omitempty"`
}

// Purpose is one purpose the person's data was used for, and its legal
// basis.
type Purpose struct {
	Recipient  string `json:"recipient"`
	Purpose    string `json:"purpose"`
	LegalBasis string `json:"legal_basis"`
}

// CategoryCount is one category of the person's data that left Veil: its
// key, its name in words, whether it is an Art. 9 special category, and
// how many transfers carried it.
type CategoryCount struct {
	Key       string `json:"key"`
	Name      string `json:"name"`
	Special   bool   `json:"special_category"`
	Transfers int    `json:"transfers"`
}

// Recipient is one recipient of the person's data: a destination (with
// its processor) or a lookup consumer.
type Recipient struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"` // destination or lookup consumer
	Processor  string    `json:"processor,omitempty"`
	DPA        string    `json:"dpa,omitempty"`
	LegalBasis string    `json:"legal_basis,omitempty"`
	Country    string    `json:"country,omitempty"`
	Safeguard  string    `json:"transfer_safeguard,omitempty"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	Transfers  int       `json:"transfers"`
}

// Holdings is what Veil holds of a person: encrypted payloads and outbound
// bodies (until retention.payload after each arrived), and audit rows
// (keyed hashes and paths, no values, until retention.audit).
type Holdings struct {
	Payloads       int        `json:"payloads"`
	OutboundBodies int        `json:"outbound_bodies"`
	Oldest         *time.Time `json:"oldest_received,omitempty"`
	Newest         *time.Time `json:"newest_received,omitempty"`
	PayloadsUntil  *time.Time `json:"payloads_kept_until,omitempty"`
	AuditRows      int        `json:"audit_rows"`
	AuditUntil     *time.Time `json:"audit_rows_kept_until,omitempty"`
	PayloadTTL     string     `json:"payload_retention"`
	AuditTTL       string     `json:"audit_retention"`
}

// Transfer is one delivery or lookup of a subject's data.
type Transfer struct {
	Time        time.Time `json:"time"`
	Recipient   string    `json:"recipient"` // destination or lookup consumer
	Processor   string    `json:"processor,omitempty"`
	Purpose     string    `json:"purpose,omitempty"`
	LegalBasis  string    `json:"legal_basis,omitempty"`
	EventID     string    `json:"event_id"`
	EventType   string    `json:"event_type"`
	Outcome     string    `json:"outcome"`
	FieldsKept  []string  `json:"fields"`
	Categories  []string  `json:"categories"`
	Destination bool      `json:"-"`
}

// Rights are the data subject's rights an access report names (Art.
// 15(1)(e)).
var Rights = []string{
	"Rectification of inaccurate data (Art. 16): ask the controller, who corrects it in the ATS; Veil passes on only what the ATS sends.",
	"Erasure (Art. 17): Veil shreds every payload it holds of you and refuses your later events, and tells the recipients that asked to be told (Art. 19).",
	"Restriction of processing (Art. 18) and objection (Art. 21): ask the controller; a destination can be stopped by its policy.",
	"Data portability (Art. 20), for data you provided on the basis of consent or a contract.",
	"Withdrawal of consent at any time, where processing is based on it (Art. 7(3)).",
}

// BuildSubjectReport assembles the report from the person's audit rows
// (oldest first), what Veil holds of her, and the config.
func BuildSubjectReport(subject, ref string, refs int, rows []AuditEntry, held Holdings, cfg *Config, now time.Time) SubjectReport {
	r := SubjectReport{Subject: subject, Reference: ref, References: refs, Generated: now, Transfers: []Transfer{},
		Lookups: []Transfer{}, Purposes: []Purpose{}, Categories: []CategoryCount{}, Recipients: []Recipient{},
		Rights: Rights, Holdings: held}
	dests := map[string]*Destination{}
	if cfg != nil {
		r.Controller = cfg.Controller
		for i := range cfg.Destinations {
			dests[cfg.Destinations[i].Name] = &cfg.Destinations[i]
		}
		r.Holdings.PayloadTTL = time.Duration(cfg.Retention.Payload).String()
		r.Holdings.AuditTTL = time.Duration(cfg.Retention.Audit).String()
		if held.Newest != nil {
			t := held.Newest.Add(time.Duration(cfg.Retention.Payload))
			r.Holdings.PayloadsUntil = &t
		}
	}
	var firstRow time.Time
	cats := map[string]int{}
	recipients := map[string]*Recipient{}
	addRecipient := func(t Transfer, kind string) {
		rc := recipients[kind+"\x00"+t.Recipient]
		if rc == nil {
			rc = &Recipient{Name: t.Recipient, Kind: kind, First: t.Time}
			if d := dests[t.Recipient]; d != nil && kind == "destination" {
				rc.Processor, rc.DPA, rc.LegalBasis, rc.Country, rc.Safeguard = d.Processor.Name, d.Processor.DPA,
					d.Processor.LegalBasis, d.Country, d.TransferSafeguard
			}
			recipients[kind+"\x00"+t.Recipient] = rc
		}
		rc.Last = t.Time
		rc.Transfers++
		for _, c := range t.Categories {
			cats[c]++
		}
		p := Purpose{Recipient: t.Recipient, Purpose: t.Purpose, LegalBasis: t.LegalBasis}
		if !slices.Contains(r.Purposes, p) {
			r.Purposes = append(r.Purposes, p)
		}
	}
	for _, e := range rows {
		if firstRow.IsZero() {
			firstRow = e.Time
		}
		r.Holdings.AuditRows++
		switch e.Action {
		case ActionReceived:
			if e.Outcome == "accepted" {
				r.Events++
			}
		case ActionReconciled:
			if e.Outcome == "gap" {
				r.Events++
			}
		case ActionDelivered:
			var p Processor
			if d := dests[e.Destination]; d != nil {
				p = d.Processor
			}
			t := Transfer{Time: e.Time, Recipient: e.Destination, Processor: p.Name,
				Purpose: p.Purpose, LegalBasis: p.LegalBasis, EventID: e.EventID, EventType: e.EventType, Outcome: e.Outcome,
				FieldsKept: nonNilStrings(e.FieldsKept), Categories: nonNilStrings(e.Categories), Destination: true}
			r.Transfers = append(r.Transfers, t)
			addRecipient(t, "destination")
		case ActionLookup:
			t := Transfer{Time: e.Time, Recipient: e.Actor, Purpose: strings.TrimPrefix(e.Detail, "purpose="),
				EventID: e.EventID, EventType: e.EventType, Outcome: e.Outcome, FieldsKept: nonNilStrings(e.FieldsKept),
				Categories: nonNilStrings(e.Categories)}
			r.Lookups = append(r.Lookups, t)
			addRecipient(t, "lookup consumer")
		case ActionErased:
			if e.Outcome == "erased" {
				t := e.Time
				r.Erased, r.Restored = &t, nil
			}
		case ActionSubjectRestored:
			t := e.Time
			r.Restored = &t
		}
	}
	if cfg != nil && !firstRow.IsZero() {
		t := firstRow.Add(time.Duration(cfg.Retention.Audit))
		r.Holdings.AuditUntil = &t
	}
	for _, rc := range recipients {
		r.Recipients = append(r.Recipients, *rc)
	}
	slices.SortFunc(r.Recipients, func(a, b Recipient) int { return strings.Compare(a.Kind+a.Name, b.Kind+b.Name) })
	for k, n := range cats {
		r.Categories = append(r.Categories, CategoryCount{Key: k, Name: CategoryWords(k), Special: Special(k), Transfers: n})
	}
	slices.SortFunc(r.Categories, func(a, b CategoryCount) int { return strings.Compare(a.Key, b.Key) })
	r.Complaint = "You may lodge a complaint with a supervisory authority (Art. 77)"
	if a := r.Controller.SupervisoryAuthority; a != "" {
		r.Complaint += ": " + a
	}
	r.Complaint += "."
	r.DataSource = r.Controller.Source
	if r.DataSource == "" && cfg != nil {
		kind, _, _ := splitRef(ref)
		src := strings.SplitN(ref, ":", 2)[0]
		if s := cfg.Source(src); s != nil && kind != "" {
			r.DataSource = "Your " + s.Vendor + " record, sent by the applicant tracking system of the controller (source " + s.Name + ")."
		}
	}
	r.Automated = r.Controller.AutomatedDecisions
	if r.Automated == "" {
		r.Automated = "None: Veil makes no decision about you. It filters what each recipient receives by rules the controller wrote; it does not profile or score you."
	}
	return r
}

// RecipientNames returns the destinations and consumers that received the
// subject's data, sorted: whom Art. 19 says to tell of an erasure.
func (r SubjectReport) RecipientNames() []string {
	var out []string
	for _, t := range append(append([]Transfer(nil), r.Transfers...), r.Lookups...) {
		name := t.Recipient
		if !t.Destination {
			name = "consumer:" + name
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func nonNilStrings(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// ErasureReceipt is what an erasure (Art. 17) leaves for the controller:
// what was shredded, the audit row that records it, whom to tell (Art. 19)
// and whom Veil told. Veil signs it with its receipt key (Ed25519), so
// anyone with the public key can check it, without any secret.
type ErasureReceipt struct {
	Subject    string           `json:"subject"` // the person's keyed hash
	Time       time.Time        `json:"time"`
	References int              `json:"references_erased"`
	Events     int64            `json:"payloads_shredded"`
	DataKeys   int64            `json:"data_keys_deleted"`
	Cancelled  map[string]int64 `json:"deliveries_cancelled"`
	Recipients []string         `json:"recipients_to_notify"`
	// Notified are the subject.erased notices Veil queued to recipients
	// with notify_erasure (their outcome is in the audit log).
	Notified []Notice `json:"recipients_notified"`
	// AuditSeq and AuditHash name the erased audit row in the hash chain.
	AuditSeq  int64  `json:"audit_seq"`
	AuditHash string `json:"audit_hash"`
	KeyID     string `json:"key_id"`    // which receipt key signed it
	Signature string `json:"signature"` // base64 Ed25519 signature of the receipt with this field empty
}

// Notice is one subject.erased notice queued to a recipient.
type Notice struct {
	Destination string    `json:"destination"`
	Delivery    string    `json:"delivery_id"` // its webhook-id
	Queued      time.Time `json:"queued_at"`
}

// Subject references name a person's records: SOURCE:KIND:ID
// (greenhouse:candidate:61550219, greenhouse:application:88213407), or,
// when subjects.link_by_email is on, email:ADDRESS across sources. Veil
// keeps only their keyed hashes.
const (
	RefCandidate   = "candidate"
	RefApplication = "application"
	RefOffer       = "offer"
	RefEvent       = "event"
	RefEmail       = "email"
)

// SubjectRefs returns the references an event names, the candidate's
// first: from its normal form (candidate, application, offer ids) and the
// subject its vendor's scheme read (subject, which may name an
// application only). With byEmail, the candidate's normalised emails too.
// They are the person's, all of them: Veil links them.
func SubjectRefs(source string, ne *NormalEvent, subject string, byEmail bool) []string {
	var out []string
	add := func(kind string, id *string) {
		if id != nil && *id != "" {
			if r := source + ":" + kind + ":" + *id; !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	if ne != nil {
		add(RefCandidate, ne.Candidate.ID)
	}
	if kind, id, ok := splitRef(subject); ok && kind == RefCandidate {
		add(kind, &id)
	}
	if ne != nil {
		add(RefApplication, ne.Application.ID)
		add(RefOffer, ne.Offer.ID)
	}
	if kind, id, ok := splitRef(subject); ok && kind != RefCandidate {
		add(kind, &id)
	}
	if byEmail && ne != nil {
		for _, e := range ne.Candidate.Emails {
			if e = NormalEmail(e); e != "" && !slices.Contains(out, RefEmail+":"+e) {
				out = append(out, RefEmail+":"+e)
			}
		}
	}
	return out
}

// splitRef splits SOURCE:KIND:ID into its kind and id.
func splitRef(ref string) (kind, id string, ok bool) {
	parts := strings.SplitN(ref, ":", 3)
	if len(parts) != 3 || parts[2] == "" {
		return "", "", false
	}
	return parts[1], parts[2], true
}

// RefKind returns the kind of a reference (candidate, application, offer,
// event, email), "" for none.
func RefKind(ref string) string {
	if e, ok := strings.CutPrefix(ref, RefEmail+":"); ok && e != "" {
		return RefEmail
	}
	kind, _, _ := splitRef(ref)
	return kind
}

// NormalEmail is an email address as Veil links by it: trimmed and
// lower-cased, "" when it is not one.
func NormalEmail(e string) string {
	e = strings.ToLower(strings.TrimSpace(e))
	if i := strings.LastIndexByte(e, '@'); i <= 0 || i == len(e)-1 || strings.ContainsAny(e, " \t") {
		return ""
	}
	return e
}

// SubjectState is what Veil knows of the person an event's references
// name, before it decides: the person's keyed hash, whether the person is
// erased (a tombstone: the event's deliveries are all filtered), and the
// salt that keys the person's pseudonyms after an erasure was lifted (nil
// before any).
type SubjectState struct {
	Person string
	Erased bool
	Salt   []byte
}

// DetailErasedSubject is the detail of a delivery filtered because its
// person was erased.
const DetailErasedSubject = "erased_subject"

// KeyID names a receipt public key: the first 16 hex digits of its SHA-256.
func KeyID(pub []byte) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}
