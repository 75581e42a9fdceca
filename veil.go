// Package veil holds Veil's domain types: the events it receives, the
// decisions policies make about them, the deliveries it owes and the audit
// entries it writes. The packages proxy, policy, redact and audit build on
// these; only cmd/veil wires them together.
package veil

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Vendor names a signature scheme and payload shape of an ATS.
const (
	VendorGreenhouse      = "greenhouse"
	VendorLever           = "lever"
	VendorAshby           = "ashby"
	VendorSmartRecruiters = "smartrecruiters"
	VendorStandard        = "standard"
	VendorHMAC            = "hmac"
)

// Event is one verified webhook request as Veil committed it.
type Event struct {
	ID        string // evt_…, assigned by Veil
	Source    string // config name of the source
	Vendor    string // vendor of the source
	EventType string // vendor's event name (Greenhouse action, Standard Webhooks type…)
	Subject   string // vendor record reference, e.g. greenhouse:candidate:123; never stored in plain text
	// Refs are every reference of the person the event names (SubjectRefs:
	// candidate first, then application, offer…); the store links their
	// keyed hashes to one person and seals the payload under the person's
	// data key. Never stored in plain text.
	Refs []string
	// Person is the keyed hash of the person Refs resolved to before the
	// decisions (the store's Resolve), a hint for the commit; "" lets the
	// store resolve them itself.
	Person string
	// Salt keys the person's pseudonyms after an erasure of hers was
	// lifted (nil before any): what left before cannot be linked to what
	// leaves after.
	Salt []byte
	// NormalType is the normal form's type (application.hired…), and Job
	// the job's reference (greenhouse:job:123, "" when none; stored as a
	// keyed hash): what the console finds events by.
	NormalType, Job string
	DedupKey        string // per-vendor idempotency key, "" when none; stored only as a keyed hash
	// BodyKey makes the body a dedup key too: the scheme signs neither an
	// id nor a timestamp, so a byte-identical body is a duplicate.
	BodyKey    bool
	ReceivedAt time.Time // when Veil accepted it
	Payload    []byte    // the raw body exactly as the vendor sent it; nil in upstream lookup mode
	// Upstream holds the record ids to fetch from the ATS API, for a source
	// in upstream lookup mode (Veil keeps no payload for it); nil otherwise.
	Upstream map[string]string
	// App is where the event says its application stands (nil when it says
	// nothing): kept per application as keyed hashes, so reconciliation
	// reports only the changes no webhook brought.
	App *AppState
	// Reconciled marks an event Veil built from the ATS API for a change no
	// webhook brought (its App holds the listed state).
	Reconciled bool
}

// Drift is the schema drift one event shows: payload paths not seen before
// for its source and event type.
type Drift struct {
	Paths []string // recorded one audit row each, at most MaxDriftPaths
	More  int      // further new paths, counted in one summary row
}

// MaxDriftPaths bounds the schema_drift rows one event writes: a body with
// 90,000 new keys costs MaxDriftPaths rows and a summary, not 90,000.
const MaxDriftPaths = 20

// NewID returns an identifier with the given prefix (evt_, dlv_…): 48 bits
// of milliseconds then 80 random bits, in base32hex, so ids sort by creation
// time and a table keyed by them grows at its end instead of dirtying a
// random page per insert.
func NewID(prefix string) string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// Policy formats: what a policy's paths and templates address.
const (
	FormatVendor = "vendor" // the vendor's body, projected in its own shape
	FormatEvent  = "event"  // the normal form, the same shape for every ATS
)

// Decision is what a destination's policy says about one event.
type Decision struct {
	Allow        bool     // deliver at all
	Format       string   // FormatVendor (the default) or FormatEvent
	Keep         []string // paths copied to the outbound payload
	Pseudonymize []string // paths replaced by a keyed pseudonym
	// KeepCategories and PseudonymizeCategories add every field whose data
	// category is, or lies under, one of these.
	KeepCategories         []string
	PseudonymizeCategories []string
	Body                   []byte // JSON object replacing the projection, or nil
	// LeakExempt lists paths (patterns, # for arrays) whose dropped values
	// the leak guard does not look for: an explicit, reviewable statement
	// that a value may coincide with a kept one (a candidate's current title
	// inside the job's name). An extension of DESIGN.md's four rules.
	LeakExempt []string
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // allowed, waiting to be sent
	DeliverySending   = "sending"   // claimed by a delivery worker
	DeliveryFiltered  = "filtered"  // the policy does not allow this event here
	DeliveryBlocked   = "blocked"   // the leak guard stopped it
	DeliveryDelivered = "delivered" // a 2xx came back
	DeliveryDead      = "dead"      // given up; in the dead-letter inbox
	DeliveryHeld      = "held"      // allowed, waiting for a person's approval (review: true)
	DeliveryRejected  = "rejected"  // a person rejected it, or it waited past review_ttl: never sent
)

// Details of blocked deliveries whose policy did not decide in bounds: a
// decision that ran past policy_timeout, or returned more than the limit.
// Both fail closed; neither is retried.
const (
	DetailPolicyTimeout  = "policy_timeout"
	DetailPolicyTooLarge = "policy_result_too_large"
)

// Delivery is one (event, destination) pair: the policy's decision and the
// outbound body, and later the attempts to send it.
type Delivery struct {
	ID            string // dlv_…, also the webhook-id header, stable across retries
	EventID       string
	Destination   string
	Status        string
	Body          []byte   // outbound JSON; sealed at rest with the subject's data key
	FieldsKept    []string // path patterns
	FieldsDropped []string
	Pseudonymized []string
	Categories    []string // data categories of the kept and pseudonymised fields
	Detail        string   // the leaked path, or why it failed; never a value
	HTTPStatus    int      // the last attempt's answer, 0 when none came
	Attempts      int
	CreatedAt     time.Time
	UpdatedAt     time.Time
	NextAttemptAt time.Time

	// Claim names the claim a worker holds it under: its outcome is
	// recorded only under that claim.
	Claim string
	// Filled when a worker claims it, for its audit rows.
	Source    string
	EventType string
	Subject   string // keyed hash
}

// Pause is a destination an operator paused: its deliveries wait, none is
// claimed, until it is resumed.
type Pause struct {
	Destination string    `json:"destination"`
	Actor       string    `json:"actor"`
	Reason      string    `json:"reason"`
	Since       time.Time `json:"since"`
}

// DeadReasons are the reasons a delivery went dead, as the dead-letter
// inbox filters them (DeadReason names a delivery's).
var DeadReasons = func() []string {
	var out []string
	for _, r := range deadPrefixes {
		out = append(out, r.reason)
	}
	return append(out, "other")
}()

// DeadReason is why a dead delivery went dead, from its detail: one of
// DeadReasons.
func DeadReason(detail string) string {
	for _, r := range deadPrefixes {
		for _, p := range r.prefixes {
			if strings.HasPrefix(detail, p) {
				return r.reason
			}
		}
	}
	return "other"
}

// DeadPrefixes are the detail prefixes of each reason but "other", for a
// store to filter by.
func DeadPrefixes(reason string) []string {
	for _, r := range deadPrefixes {
		if r.reason == reason {
			return r.prefixes
		}
	}
	return nil
}

var deadPrefixes = []struct {
	reason   string
	prefixes []string
}{
	{"http", []string{"http ", "redirect"}}, {"timeout", []string{"timeout"}}, {"connection", []string{"connection error"}},
	{"ssrf", []string{"ssrf:"}}, {"policy", []string{"policy_error"}}, {"expired", []string{"expired:"}},
	{"erased", []string{"erased:"}}, {"destination_removed", []string{"destination no longer configured"}},
}

// DeadQuery selects dead deliveries, newest first (by when they went dead):
// of a destination, in a time range, for a reason, with the last answer's
// HTTP status. A page: Limit of them after the cursor Before (older) or
// Before After (newer); Limit 0: every one.
type DeadQuery struct {
	Destination   string
	Since, Until  time.Time
	Reason        string // one of DeadReasons, "" for any
	HTTPStatus    int
	Before, After string // cursors from a DeadPage
	Limit         int
}

// DeadLetter is a dead delivery as the inbox lists it.
type DeadLetter struct {
	*Delivery
	Reason string
	// Replayable is false when the payload is past retention or its
	// subject was erased: a replay would be refused (410).
	Replayable bool
	Cursor     string
}

// DeadPage is one page of the inbox and how many match in all.
type DeadPage struct {
	Letters      []DeadLetter
	Total        int64  // every dead delivery the query matches
	Replayable   int64  // of which can be replayed
	Older, Newer string // cursors, "" at either end
}

// ErrStaleClaim is returned for an attempt's outcome recorded under a claim
// the delivery no longer has: its lease ran out and another claim took it,
// or it was given up meanwhile. Nothing is recorded.
var ErrStaleClaim = errors.New("the delivery is no longer held under this claim; the outcome was not recorded")

// Attempt is the outcome of one try to deliver.
type Attempt struct {
	Status     string        // DeliveryDelivered, DeliveryPending (retry later) or DeliveryDead
	HTTPStatus int           // 0 when no answer came
	Latency    time.Duration // time to the answer
	NextAt     time.Time     // when to retry, for DeliveryPending
	Detail     string        // why it failed; never a payload value
}

// Erasure is what erasing one data subject did.
type Erasure struct {
	Subject string `json:"subject"` // the keyed hash the person is known by
	// References counts the person's references erased together (the
	// candidate, each application and offer Veil linked to her).
	References int   `json:"references"`
	Events     int64 `json:"events"`            // events whose payload can no longer be decrypted
	DataKeys   int64 `json:"data_keys_deleted"` // data keys deleted
	// AuditSeq and AuditHash name the erased audit row.
	AuditSeq  int64  `json:"audit_seq"`
	AuditHash string `json:"audit_hash"`
	// Already says the person was erased before: nothing was done again,
	// and Receipt is the first erasure's receipt.
	Already bool            `json:"already_erased,omitempty"`
	Receipt json.RawMessage `json:"-"`
	// Cancelled counts, per destination, the deliveries that were waiting
	// and will never be sent; each has a dead audit row (outcome erased).
	Cancelled map[string]int64 `json:"deliveries_cancelled"`
}

// PurgeResult counts what a retention run removed (or would remove).
type PurgeResult struct {
	Payloads       int64 `json:"payloads"`        // event payloads past retention.payload
	DeliveryBodies int64 `json:"delivery_bodies"` // outbound bodies of those events
	DataKeys       int64 `json:"data_keys"`       // data keys no live payload needs
	AuditRows      int64 `json:"audit_rows"`      // audit rows past retention.audit
	Events         int64 `json:"events"`          // event rows past retention.audit
	Deliveries     int64 `json:"deliveries"`      // delivery rows of those events
	// Expired counts, per destination, the deliveries given up because
	// their payload passed retention before they could be sent. Each has a
	// dead audit row (outcome expired) and shows in the dead-letter inbox.
	Expired map[string]int64 `json:"deliveries_expired"`
	Pages   int64            `json:"pages_freed"` // database pages given back to the file system
	// Elsewhere says another replica was applying retention (PostgreSQL):
	// this call did nothing.
	Elsewhere bool `json:"elsewhere,omitempty"`
}
