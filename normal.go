package veil

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// NormalSchema names the normal form's version.
const NormalSchema = "veil.event/v1"

// Normal event types: every vendor's event names map onto these.
const (
	TypeCandidateCreated    = "candidate.created"
	TypeCandidateUpdated    = "candidate.updated"
	TypeCandidateDeleted    = "candidate.deleted"
	TypeApplicationCreated  = "application.created"
	TypeApplicationUpdated  = "application.updated"
	TypeStageChanged        = "application.stage_changed"
	TypeApplicationRejected = "application.rejected"
	TypeApplicationHired    = "application.hired"
	TypeOfferCreated        = "offer.created"
	TypeOfferUpdated        = "offer.updated"
	TypeOfferAccepted       = "offer.accepted"
	TypeOfferDeclined       = "offer.declined"
	TypeInterviewScheduled  = "interview.scheduled"
	TypeInterviewCancelled  = "interview.cancelled"
	TypeFeedbackSubmitted   = "interview.feedback_submitted"
	TypeJobCreated          = "job.created"
	TypeJobUpdated          = "job.updated"
	TypeJobClosed           = "job.closed"
	TypeSurveySubmitted     = "survey.submitted"
	TypeUnknown             = "unknown"
	// TypeSubjectErased is the event type of Veil's own notices to
	// recipients that a person was erased (notify_erasure); no ATS sends it.
	TypeSubjectErased = "subject.erased"
)

// NormalTypes lists every normal event type.
var NormalTypes = []string{TypeCandidateCreated, TypeCandidateUpdated, TypeCandidateDeleted, TypeApplicationCreated,
	TypeApplicationUpdated, TypeStageChanged, TypeApplicationRejected, TypeApplicationHired, TypeOfferCreated,
	TypeOfferUpdated, TypeOfferAccepted, TypeOfferDeclined, TypeInterviewScheduled, TypeInterviewCancelled,
	TypeFeedbackSubmitted, TypeJobCreated, TypeJobUpdated, TypeJobClosed, TypeSurveySubmitted, TypeUnknown}

// NormalEvent is the vendor-neutral form of a recruiting event, what
// policies in format "event" read as input.event. Every field is present;
// nil means the vendor did not send it. Every id is a string.
type NormalEvent struct {
	Schema      string            `json:"schema"`
	Type        string            `json:"type"`
	VendorType  string            `json:"vendor_type"`
	Source      string            `json:"source"`
	Vendor      string            `json:"vendor"`
	OccurredAt  *string           `json:"occurred_at"`
	Reconciled  bool              `json:"reconciled"`
	Candidate   NormalCandidate   `json:"candidate"`
	Application NormalApplication `json:"application"`
	Job         NormalJob         `json:"job"`
	Offer       NormalOffer       `json:"offer"`
}

// NormalCandidate is the person applying.
type NormalCandidate struct {
	ID          *string       `json:"id"`
	FirstName   *string       `json:"first_name"`
	LastName    *string       `json:"last_name"`
	Name        *string       `json:"name"`
	Emails      []string      `json:"emails"`
	Phones      []string      `json:"phones"`
	Address     NormalAddress `json:"address"`
	Title       *string       `json:"title"`
	Company     *string       `json:"company"`
	DateOfBirth *string       `json:"date_of_birth"`
	Links       []string      `json:"links"`
}

// NormalAddress is a postal address.
type NormalAddress struct {
	Street     *string `json:"street"`
	City       *string `json:"city"`
	Region     *string `json:"region"`
	PostalCode *string `json:"postal_code"`
	Country    *string `json:"country"`
}

// NormalApplication is one candidate's application to one job.
type NormalApplication struct {
	ID            *string         `json:"id"`
	Status        *string         `json:"status"`
	AppliedAt     *string         `json:"applied_at"`
	Stage         NormalRef       `json:"stage"`
	PreviousStage NormalRef       `json:"previous_stage"`
	Source        NormalRef       `json:"source"`
	Rejection     NormalRejection `json:"rejection"`
}

// NormalRef is something with an id and a name: a stage, a source, a
// department, an office.
type NormalRef struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

// NormalRejection says why an application was rejected.
type NormalRejection struct {
	Reason *string `json:"reason"`
	Note   *string `json:"note"`
}

// NormalJob is the job applied for.
type NormalJob struct {
	ID            *string     `json:"id"`
	Title         *string     `json:"title"`
	RequisitionID *string     `json:"requisition_id"`
	Departments   []NormalRef `json:"departments"`
	Offices       []NormalRef `json:"offices"`
}

// NormalOffer is the offer made, if any.
type NormalOffer struct {
	ID           *string             `json:"id"`
	Status       *string             `json:"status"`
	SentAt       *string             `json:"sent_at"`
	ResolvedAt   *string             `json:"resolved_at"`
	StartsAt     *string             `json:"starts_at"`
	Compensation *NormalCompensation `json:"compensation"`
}

// NormalCompensation is an offer's pay.
type NormalCompensation struct {
	Amount   *json.Number `json:"amount"`
	Currency *string      `json:"currency"`
	Period   *string      `json:"period"`
}

// Str returns a pointer to s, or nil for "".
func Str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Category keys (fideslang taxonomy 3.x, CC BY 4.0) that Veil assigns;
// category.go lists every key a policy may name.
const (
	CategoryUniqueID    = "user.unique_id"
	CategoryOperations  = "system.operations"
	CategoryPrivate     = "user.content.private"
	CategoryName        = "user.name"
	CategoryEmail       = "user.contact.email"
	CategoryPhone       = "user.contact.phone_number"
	CategoryAddress     = "user.contact.address"
	CategoryJobTitle    = "user.professional_information.job_title"
	CategoryWorkplace   = "user.professional_information.workplace"
	CategoryFinancial   = "user.financial"
	CategoryDemographic = "user.demographic"
	// CategoryUnclassified is what a path Veil cannot classify gets: it is
	// personal data, and a destination receives it only when its policy
	// names this category itself (a Veil extension under user).
	CategoryUnclassified = "user.unclassified"
)

// Personal reports whether data of the category is personal data that the
// leak guard hunts: every user.* category, and whatever is unclassified.
func Personal(category string) bool {
	return !strings.HasPrefix(category, "system.")
}

// Under reports whether category is cat or lies under it
// (user.contact.email is under user.contact and under user).
func Under(category, cat string) bool {
	return category == cat || (len(category) > len(cat) && category[len(cat)] == '.' && strings.HasPrefix(category, cat))
}

// AnyUnder reports whether category is under one of cats.
func AnyUnder(category string, cats []string) bool {
	return slices.ContainsFunc(cats, func(c string) bool { return Under(category, c) })
}

// AppendJSON appends the event's JSON, as encoding/json writes it (keys in
// declaration order, nil as null) but without reflection and without
// escaping <, > and &: Veil projects it once per event.
func (e *NormalEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"schema":`...)
	b = appendJSONString(b, e.Schema)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"vendor_type":`...)
	b = appendJSONString(b, e.VendorType)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, e.Source)
	b = append(b, `,"vendor":`...)
	b = appendJSONString(b, e.Vendor)
	b = appendField(b, "occurred_at", e.OccurredAt)
	b = append(b, `,"reconciled":`...)
	b = strconv.AppendBool(b, e.Reconciled)
	c := &e.Candidate
	b = append(b, `,"candidate":{"id":`...)
	b = appendPtr(b, c.ID)
	b = appendField(b, "first_name", c.FirstName)
	b = appendField(b, "last_name", c.LastName)
	b = appendField(b, "name", c.Name)
	b = appendList(b, "emails", c.Emails)
	b = appendList(b, "phones", c.Phones)
	b = append(b, `,"address":{"street":`...)
	b = appendPtr(b, c.Address.Street)
	b = appendField(b, "city", c.Address.City)
	b = appendField(b, "region", c.Address.Region)
	b = appendField(b, "postal_code", c.Address.PostalCode)
	b = appendField(b, "country", c.Address.Country)
	b = append(b, '}')
	b = appendField(b, "title", c.Title)
	b = appendField(b, "company", c.Company)
	b = appendField(b, "date_of_birth", c.DateOfBirth)
	b = appendList(b, "links", c.Links)
	a := &e.Application
	b = append(b, `},"application":{"id":`...)
	b = appendPtr(b, a.ID)
	b = appendField(b, "status", a.Status)
	b = appendField(b, "applied_at", a.AppliedAt)
	b = appendRef(append(b, `,"stage":`...), a.Stage)
	b = appendRef(append(b, `,"previous_stage":`...), a.PreviousStage)
	b = appendRef(append(b, `,"source":`...), a.Source)
	b = append(b, `,"rejection":{"reason":`...)
	b = appendPtr(b, a.Rejection.Reason)
	b = appendField(b, "note", a.Rejection.Note)
	j := &e.Job
	b = append(b, `}},"job":{"id":`...)
	b = appendPtr(b, j.ID)
	b = appendField(b, "title", j.Title)
	b = appendField(b, "requisition_id", j.RequisitionID)
	b = appendRefs(append(b, `,"departments":`...), j.Departments)
	b = appendRefs(append(b, `,"offices":`...), j.Offices)
	o := &e.Offer
	b = append(b, `},"offer":{"id":`...)
	b = appendPtr(b, o.ID)
	b = appendField(b, "status", o.Status)
	b = appendField(b, "sent_at", o.SentAt)
	b = appendField(b, "resolved_at", o.ResolvedAt)
	b = appendField(b, "starts_at", o.StartsAt)
	b = append(b, `,"compensation":`...)
	if m := o.Compensation; m == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"amount":`...)
		if m.Amount == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, *m.Amount...)
		}
		b = appendField(b, "currency", m.Currency)
		b = appendField(b, "period", m.Period)
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

func appendField(b []byte, key string, v *string) []byte {
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	return appendPtr(b, v)
}

func appendPtr(b []byte, v *string) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *v)
}

func appendList(b []byte, key string, vs []string) []byte {
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	if vs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']')
}

func appendRef(b []byte, r NormalRef) []byte {
	b = append(b, `{"id":`...)
	b = appendPtr(b, r.ID)
	return append(appendField(b, "name", r.Name), '}')
}

func appendRefs(b []byte, rs []NormalRef) []byte {
	if rs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRef(b, r)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}

const hexDigits = "0123456789abcdef"

// Application outcomes, as reconciliation compares them.
const (
	OutcomeActive   = "active"
	OutcomeHired    = "hired"
	OutcomeRejected = "rejected"
	// OutcomeClosed is hired or rejected, the vendor's record does not
	// say which (Lever archives both, with the customer's own reasons).
	OutcomeClosed = "closed"
	// OutcomeDeleted is an application the ATS deleted (Lever lists its
	// deleted opportunities): reported once, as candidate.deleted.
	OutcomeDeleted = "deleted"
)

// AppState is where an application stands: its id, its stage (id, or
// name when the vendor sends no id) and its outcome. An empty field is
// unknown: the event did not say.
type AppState struct {
	ID, Stage, Outcome string
	// New says the ATS created the application inside the listed window
	// (reconciliation reports it as application.created).
	New bool
	// SeenBy is who last reported the state: "webhook" or "reconcile"
	// (as the store keeps it).
	SeenBy string
}

// Transition returns the normal type of the change from prev (nil: never
// seen) to cur, or "" when there is nothing to report: no field cur knows
// differs from what prev knows. An unknown field (empty) is no change.
func Transition(prev *AppState, cur AppState) string {
	if cur.Outcome == OutcomeDeleted {
		if prev != nil && prev.Outcome == OutcomeDeleted {
			return ""
		}
		return TypeCandidateDeleted
	}
	byOutcome := func(def string) string {
		switch cur.Outcome {
		case OutcomeHired:
			return TypeApplicationHired
		case OutcomeRejected:
			return TypeApplicationRejected
		case OutcomeClosed:
			return TypeApplicationUpdated
		}
		return def
	}
	if prev == nil {
		if cur.New {
			return TypeApplicationCreated
		}
		return byOutcome(TypeStageChanged)
	}
	closed := func(o string) bool { return o == OutcomeHired || o == OutcomeRejected || o == OutcomeClosed }
	switch {
	case cur.Outcome == "" || cur.Outcome == prev.Outcome:
	case cur.Outcome == OutcomeActive:
		if closed(prev.Outcome) {
			return TypeApplicationUpdated // reopened
		}
	case cur.Outcome == OutcomeClosed && closed(prev.Outcome):
	case prev.Outcome == OutcomeClosed && closed(cur.Outcome):
	default:
		return byOutcome(TypeApplicationUpdated)
	}
	if cur.Stage != "" && prev.Stage != "" && cur.Stage != prev.Stage {
		return TypeStageChanged
	}
	return ""
}

// AppState returns the application state an application event (or a
// deletion naming its application) reports, and false for other events or
// when it names no application.
func (n *NormalEvent) AppState() (*AppState, bool) {
	if n.Application.ID == nil || *n.Application.ID == "" {
		return nil, false
	}
	if n.Type == TypeCandidateDeleted {
		// A deletion web hook naming the application (Lever's opportunity):
		// reconciliation then does not report it again.
		return &AppState{ID: *n.Application.ID, Outcome: OutcomeDeleted}, true
	}
	if !strings.HasPrefix(n.Type, "application.") {
		return nil, false
	}
	st := &AppState{ID: *n.Application.ID}
	if n.Application.Stage.ID != nil {
		st.Stage = *n.Application.Stage.ID
	} else if n.Application.Stage.Name != nil {
		st.Stage = *n.Application.Stage.Name
	}
	switch {
	case n.Type == TypeApplicationHired:
		st.Outcome = OutcomeHired
	case n.Type == TypeApplicationRejected:
		st.Outcome = OutcomeRejected
	case n.Application.Status != nil:
		st.Outcome = OutcomeOf(*n.Application.Status)
	}
	return st, true
}

// OutcomeOf maps a vendor's application status onto an outcome:
// hired, rejected (Lever and Ashby archive), or active.
func OutcomeOf(status string) string {
	switch strings.ToLower(status) {
	case "hired":
		return OutcomeHired
	case "rejected", "archived":
		return OutcomeRejected
	}
	return OutcomeActive
}

// ReconcileState is where a source's reconciliation stands.
type ReconcileState struct {
	Watermark time.Time // the last good pass listed everything changed since then
	Token     string    // the vendor's sync token (Ashby), "" if none
	Known     bool      // false before the source's first pass
}
