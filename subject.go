package veil

import (
	"slices"
	"strings"
	"time"
)

// SubjectReport is a data subject's access report (GDPR Art. 15): every
// transfer of the subject's data to a destination and every lookup of it,
// from the audit log. It names fields and categories, never values.
type SubjectReport struct {
	Subject   string     `json:"subject"` // the keyed hash the subject is known by
	Generated time.Time  `json:"generated"`
	Events    int        `json:"events_received"`
	Transfers []Transfer `json:"transfers"`
	Lookups   []Transfer `json:"lookups"`
	Erased    *time.Time `json:"erased,omitempty"`
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

// BuildSubjectReport assembles the report from the subject's audit rows
// (oldest first) and the configured processors.
func BuildSubjectReport(subject string, rows []AuditEntry, cfg *Config, now time.Time) SubjectReport {
	r := SubjectReport{Subject: subject, Generated: now, Transfers: []Transfer{}, Lookups: []Transfer{}}
	procs := map[string]Processor{}
	if cfg != nil {
		for _, d := range cfg.Destinations {
			procs[d.Name] = d.Processor
		}
	}
	for _, e := range rows {
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
			p := procs[e.Destination]
			r.Transfers = append(r.Transfers, Transfer{Time: e.Time, Recipient: e.Destination, Processor: p.Name,
				Purpose: p.Purpose, LegalBasis: p.LegalBasis, EventID: e.EventID, EventType: e.EventType, Outcome: e.Outcome,
				FieldsKept: nonNilStrings(e.FieldsKept), Categories: nonNilStrings(e.Categories), Destination: true})
		case ActionLookup:
			r.Lookups = append(r.Lookups, Transfer{Time: e.Time, Recipient: e.Actor, Purpose: strings.TrimPrefix(e.Detail, "purpose="),
				EventID: e.EventID, EventType: e.EventType, Outcome: e.Outcome, FieldsKept: nonNilStrings(e.FieldsKept),
				Categories: nonNilStrings(e.Categories)})
		case ActionErased:
			t := e.Time
			r.Erased = &t
		}
	}
	return r
}

// Recipients returns the destinations and consumers that received the
// subject's data, sorted: whom Art. 19 says to tell of an erasure.
func (r SubjectReport) Recipients() []string {
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
// what was shredded, and whom to tell (Art. 19). Veil signs it with a key
// derived from the vault key, so `veil audit verify-receipt` can check it
// later.
type ErasureReceipt struct {
	Subject    string           `json:"subject"`
	Time       time.Time        `json:"time"`
	Events     int64            `json:"payloads_shredded"`
	DataKeys   int64            `json:"data_keys_deleted"`
	Cancelled  map[string]int64 `json:"deliveries_cancelled"`
	Recipients []string         `json:"recipients_to_notify"`
	Signature  string           `json:"signature"` // hex HMAC-SHA256 of the receipt without it
}
