package veil

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Audit actions, as DESIGN.md lists them.
const (
	ActionReceived       = "received"
	ActionRejected       = "rejected"
	ActionFiltered       = "filtered"
	ActionDelivered      = "delivered"
	ActionRetry          = "retry"
	ActionDead           = "dead"
	ActionBlockedLeak    = "blocked_leak"
	ActionReplayed       = "replayed"
	ActionLookup         = "lookup"
	ActionLookupDenied   = "lookup_denied"
	ActionErased         = "erased"
	ActionPurged         = "purged"
	ActionPolicyLoaded   = "policy_loaded"
	ActionPolicyRejected = "policy_rejected"
	ActionSchemaDrift    = "schema_drift"

	ActionReconciled      = "reconciled"
	ActionReviewHeld      = "review_held"
	ActionReviewApproved  = "review_approved"
	ActionReviewRejected  = "review_rejected"
	ActionReviewExpired   = "review_expired"
	ActionConsumerAdded   = "consumer_added"
	ActionConsumerRevoked = "consumer_revoked"
	// ActionBlockedPolicy is a delivery blocked because its policy did not
	// decide within policy_timeout or returned more than the limit.
	ActionBlockedPolicy = "blocked_policy"
	// ActionAuthFailed counts, per surface, reason and minute, the failed
	// and throttled authentication attempts (never a value tried).
	ActionAuthFailed = "auth_failed"
	// ActionSubjectRestored is an erased person's tombstone lifted by an
	// admin (new consent), with the reason.
	ActionSubjectRestored = "subject_restored"
	// ActionDestinationPaused and ActionDestinationResumed are an
	// operator holding a destination's deliveries back, and letting them go.
	ActionDestinationPaused  = "destination_paused"
	ActionDestinationResumed = "destination_resumed"
	// ActionAlertOpened and ActionAlertResolved are an alert condition
	// starting and ending (Detail says which, in Veil's words: names and
	// counts, never a value of a payload).
	ActionAlertOpened   = "alert_opened"
	ActionAlertResolved = "alert_resolved"

	// People (who acts): local users added, removed, locked out after
	// wrong passwords, passwords changed or reset; API tokens created,
	// revoked and used (one row per token and minute, with the count);
	// console logins and logouts; exports of the audit log and views of a
	// person's report.
	ActionUserAdded       = "user_added"
	ActionUserRemoved     = "user_removed"
	ActionUserLocked      = "user_locked"
	ActionPasswordChanged = "password_changed"
	ActionPasswordReset   = "password_reset"
	ActionTokenCreated    = "token_created"
	ActionTokenRevoked    = "token_revoked"
	ActionTokenUsed       = "token_used"
	ActionLogin           = "login"
	ActionLogout          = "logout"
	ActionExported        = "exported"
	ActionReportViewed    = "report_viewed"
)

// AuditActions lists every audit action, for validating filters.
var AuditActions = []string{ActionReceived, ActionRejected, ActionFiltered, ActionDelivered, ActionRetry, ActionDead,
	ActionBlockedLeak, ActionReplayed, ActionLookup, ActionLookupDenied, ActionErased, ActionPurged, ActionPolicyLoaded,
	ActionPolicyRejected, ActionSchemaDrift, ActionReconciled, ActionReviewHeld, ActionReviewApproved, ActionReviewRejected,
	ActionReviewExpired, ActionConsumerAdded, ActionConsumerRevoked, ActionBlockedPolicy, ActionAuthFailed, ActionSubjectRestored,
	ActionDestinationPaused, ActionDestinationResumed, ActionAlertOpened, ActionAlertResolved,
	ActionUserAdded, ActionUserRemoved, ActionUserLocked, ActionPasswordChanged, ActionPasswordReset, ActionTokenCreated,
	ActionTokenRevoked, ActionTokenUsed, ActionLogin, ActionLogout, ActionExported, ActionReportViewed}

// AuditFilter selects audit rows; zero fields select everything.
type AuditFilter struct {
	Since, Until time.Time
	Destinations []string // any of these
	Actions      []string // any of these
	Actors       []string // any of these (user:…, token:…, console:admin, veil…)
	Subject      string   // a keyed subject hash
	Subjects     []string // any of these keyed subject hashes (a person's references)
	EventID      string   // rows of one event
	// A page: rows before seq BeforeSeq (0: from the newest), newest first,
	// at most Limit (0: all rows, oldest first).
	BeforeSeq int64
	Limit     int
}

// ExportRow is the audit row of an export of the audit log by actor:
// the format and the filter in Veil's words (a person filtered by is
// named by her keyed hash in the row's subject, never by the reference
// asked for).
func ExportRow(actor, format string, f AuditFilter) *AuditEntry {
	d := "format=" + format
	if !f.Since.IsZero() {
		d += " since=" + f.Since.UTC().Format(time.RFC3339)
	}
	if !f.Until.IsZero() {
		d += " until=" + f.Until.UTC().Format(time.RFC3339)
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"actions", f.Actions}, {"destinations", f.Destinations}, {"actors", f.Actors}} {
		if len(l.v) > 0 {
			d += " " + l.name + "=" + strings.Join(l.v, ",")
		}
	}
	if f.EventID != "" {
		d += " event=" + f.EventID
	}
	row := &AuditEntry{Action: ActionExported, Actor: actor, Outcome: "exported", Detail: d}
	if len(f.Subjects) > 0 {
		row.Subject = f.Subjects[0]
		row.Detail += " subject=one person"
	}
	return row
}

// ParseTime reads a filter's time named name: an RFC 3339 time, a minute
// as an HTML datetime-local input sends it (2026-12-07T09:30, read as UTC)
// or a date. "" is the zero time.
func ParseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, Errorf(EINVALID, "%s is not a time: write a date (2026-11-27), a UTC minute (2026-11-27T09:30) or an RFC 3339 time (2026-11-27T09:30:00Z).", name)
}

// EventSummary is a stored event as the console lists it: never its payload.
type EventSummary struct {
	ID, Source, Vendor, EventType string
	NormalType                    string // "" for events stored before version 14
	Subject                       string // keyed hash
	ReceivedAt                    time.Time
	Held                          bool // the payload is still held (not purged or erased)
	// Outcomes are its deliveries' states, by destination (ListEvents
	// fills them).
	Outcomes []Outcome
}

// Outcome is where one delivery of an event stands.
type Outcome struct{ Destination, Status string }

// EventQuery selects stored events, newest first: the one with ID, or
// those matching every filter set. A page: Limit events before the id
// Before (older) or after the id After (newer; ids sort by time).
type EventQuery struct {
	ID, Source string
	// EventType matches the vendor's type (any case) or the normal form's.
	EventType string
	// Subjects and Jobs are keyed hashes: events of any of these people's
	// references, or of any of these jobs (both may be set: either).
	Subjects, Jobs []string
	// ByRefs is set when Subjects and Jobs are a search: none found means
	// no event matches.
	ByRefs bool
	// Outcome (a delivery status) matches events with a delivery in it, to
	// Destination when set.
	Outcome, Destination string
	Since, Until         time.Time
	Before, After        string
	Limit                int
}

// Consumer is a downstream system allowed to fetch records through the
// gated lookup, for the purposes it was granted.
type Consumer struct {
	Name      string
	Purposes  []string
	CreatedAt time.Time
	Revoked   bool
}

// AuditEntry is one row of the hash-chained audit log. Its JSON form, keys in
// this order, is the export's JSONL line. No field ever holds a payload value:
// Subject is a keyed hash, FieldsKept and FieldsDropped hold paths.
type AuditEntry struct {
	Seq           int64     `json:"seq"`
	Time          time.Time `json:"time"`
	Action        string    `json:"action"`
	Actor         string    `json:"actor"`
	Source        string    `json:"source"`
	EventType     string    `json:"event_type"`
	EventID       string    `json:"event_id"`
	Destination   string    `json:"destination"`
	Subject       string    `json:"subject"`
	Outcome       string    `json:"outcome"`
	HTTPStatus    int       `json:"http_status"`
	Attempt       int       `json:"attempt"`
	FieldsKept    []string  `json:"fields_kept"`
	FieldsDropped []string  `json:"fields_dropped"`
	Categories    []string  `json:"categories"`
	Detail        string    `json:"detail"`
	PrevHash      string    `json:"prev_hash"`
	Hash          string    `json:"hash"`
}

// AuditColumns are the export columns in order (CSV header, JSONL keys).
var AuditColumns = []string{"seq", "time", "action", "actor", "source", "event_type", "event_id",
	"destination", "subject", "outcome", "http_status", "attempt", "fields_kept", "fields_dropped",
	"categories", "detail", "prev_hash", "hash"}

// canonicalAuditRow is the hashed part of an entry: every column but the
// hashes, with the time at a fixed precision so a round trip through SQLite
// or an export reproduces the same bytes. Categories came later: a row
// without any hashes as rows did before it existed.
type canonicalAuditRow struct {
	Seq           int64    `json:"seq"`
	Time          string   `json:"time"`
	Action        string   `json:"action"`
	Actor         string   `json:"actor"`
	Source        string   `json:"source"`
	EventType     string   `json:"event_type"`
	EventID       string   `json:"event_id"`
	Destination   string   `json:"destination"`
	Subject       string   `json:"subject"`
	Outcome       string   `json:"outcome"`
	HTTPStatus    int      `json:"http_status"`
	Attempt       int      `json:"attempt"`
	FieldsKept    []string `json:"fields_kept"`
	FieldsDropped []string `json:"fields_dropped"`
	Categories    []string `json:"categories,omitempty"`
	Detail        string   `json:"detail"`
}

// AuditTimeFormat is the stored and exported form of AuditEntry.Time.
const AuditTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// ComputeHash returns hex(SHA-256(prevHash || canonical JSON of e)), the
// value e.Hash must hold when e follows a row whose hash is prevHash.
func (e *AuditEntry) ComputeHash(prevHash string) string {
	row := canonicalAuditRow{
		Seq: e.Seq, Time: e.Time.UTC().Format(AuditTimeFormat), Action: e.Action, Actor: e.Actor,
		Source: e.Source, EventType: e.EventType, EventID: e.EventID, Destination: e.Destination,
		Subject: e.Subject, Outcome: e.Outcome, HTTPStatus: e.HTTPStatus, Attempt: e.Attempt,
		FieldsKept: nonNil(e.FieldsKept), FieldsDropped: nonNil(e.FieldsDropped), Categories: e.Categories, Detail: e.Detail,
	}
	b, err := json.Marshal(row)
	if err != nil {
		panic(err) // a struct of strings and ints always marshals
	}
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ChainError names the first row at which an audit chain does not verify.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", e.Seq, e.Reason)
}

// ChainVerifier checks audit rows one by one, in order. The zero value
// expects a chain that starts at seq 1 or, for a file exported after a
// purge, at an anchor it takes from the first row; Anchor fixes the anchor.
type ChainVerifier struct {
	seq      int64
	hash     string
	anchored bool
	started  bool
	Rows     int64 // rows verified so far
}

// Anchor says the chain must continue from the row (seq, hash) that
// retention purged last.
func (v *ChainVerifier) Anchor(seq int64, hash string) {
	v.seq, v.hash, v.anchored, v.started = seq, hash, true, true
}

// Next verifies e against the rows before it and returns a *ChainError for
// an edited, missing, inserted or reordered row.
func (v *ChainVerifier) Next(e *AuditEntry) error {
	if !v.started {
		v.started = true
		if e.Seq == 1 && e.PrevHash != "" {
			return &ChainError{Seq: e.Seq, Reason: "the first row has a previous hash"}
		}
		v.seq, v.hash = e.Seq-1, e.PrevHash // a file that starts at an anchor
	}
	switch {
	case e.Seq != v.seq+1:
		return &ChainError{Seq: e.Seq, Reason: fmt.Sprintf("expected seq %d (a row is missing, inserted or out of order)", v.seq+1)}
	case e.PrevHash != v.hash:
		return &ChainError{Seq: e.Seq, Reason: "prev_hash does not match the previous row's hash"}
	case e.Hash != e.ComputeHash(e.PrevHash):
		return &ChainError{Seq: e.Seq, Reason: "hash does not match the row's contents (edited)"}
	}
	v.seq, v.hash = e.Seq, e.Hash
	v.Rows++
	return nil
}

// QueueStat is a destination's waiting deliveries (pending or being sent)
// and when the oldest of them was created.
type QueueStat struct {
	Destination string
	Waiting     int64
	Oldest      time.Time
}

// DestinationHealth is how a destination is doing, as this process saw
// it: its breaker (closed, open or probing), the last hour's attempts and
// latency, and a point per Step over the last 24 hours.
type DestinationHealth struct {
	Destination, Breaker    string
	Succeeded, Failed       int64 // attempts in the last hour
	MeanLatency, MaxLatency time.Duration
	Step                    time.Duration
	Points                  []HealthPoint
}

// HealthPoint is one Step of a destination's attempts and queue.
type HealthPoint struct {
	Start                   time.Time
	Succeeded, Failed       int64
	MeanLatency, MaxLatency time.Duration
	Queue                   int64 // the most waiting at one reading
}

// InboundCount is how many events a source's webhooks brought in one way:
// Action received or reconciled (accepted), or rejected with its Reason.
type InboundCount struct {
	Source, Action, Reason string
	Count                  int64
}

// DeliveryCount is how many deliveries to a destination ended one way
// (an audit action) in one hour.
type DeliveryCount struct {
	Destination, Action string
	Hour                time.Time
	Count               int64
}
