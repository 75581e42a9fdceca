// Package gateway holds the gateway's use cases, apart from the HTTP and
// command-line sides that call them: what a data protection officer asks
// of Veil about a person (her access report, her erasure, lifting it), each
// a method on a small service over the store interfaces it declares.
package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/redact"
)

// SubjectStore is what the subject use cases read and change; audit.Store
// implements it.
type SubjectStore interface {
	// Person resolves a reference to the person and all her references.
	Person(ctx context.Context, ref string) (person string, refs []string, err error)
	SubjectRows(ctx context.Context, ref string) ([]veil.AuditEntry, error)
	Holdings(ctx context.Context, refs []string) (veil.Holdings, error)
	Erase(ctx context.Context, ref, actor string) (veil.Erasure, error)
	Restore(ctx context.Context, ref, actor, reason string) (string, error)
	Receipt(res veil.Erasure, report veil.SubjectReport, notified []veil.Notice) veil.ErasureReceipt
	SaveReceipt(ctx context.Context, person string, receipt []byte) error
	QueueNotice(ctx context.Context, destination string, body []byte) (veil.Notice, error)
	ReceiptPublicKey() ed25519.PublicKey
	Record(entries ...*veil.AuditEntry)
}

// Subjects answers for the data subjects: access reports (Art. 15),
// erasure (Art. 17) with its notices (Art. 19), and lifting an erasure.
type Subjects struct {
	Store  SubjectStore
	Config *veil.Config
	// PseudonymKey is the master pseudonym key: a notice gives a
	// destination its own pseudonym of the person.
	PseudonymKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Queued, when set, is told that notices were queued (wake the
	// deliverer).
	Queued func()
	// GivenUp, when set, is told of the deliveries an erasure cancelled,
	// per destination (for metrics).
	GivenUp func(map[string]int64)
}

func (s *Subjects) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// refKinds are the record kinds a subject reference may name.
var refKinds = []string{veil.RefCandidate, veil.RefApplication, veil.RefOffer, veil.RefEvent}

// Check refuses a reference that is not of a configured source's forms
// (SOURCE:candidate|application|offer|event:ID, or email:ADDRESS when
// subjects.link_by_email is on), with EINVALIDSUBJECT listing the valid
// forms: a bare id, a misspelt kind or a stray space erase nothing, and
// must not look as if they had.
func (s *Subjects) Check(ref string) error {
	return CheckSubject(s.Config, ref)
}

// CheckSubject is Subjects.Check for a config.
func CheckSubject(cfg *veil.Config, ref string) error {
	valid := !strings.ContainsFunc(ref, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) && len(ref) <= 512
	if e, ok := strings.CutPrefix(ref, veil.RefEmail+":"); valid && ok {
		if cfg.Subjects.LinkByEmail && veil.NormalEmail(e) == e {
			return nil
		}
		valid = false
	}
	parts := strings.SplitN(ref, ":", 3)
	if valid && len(parts) == 3 && parts[2] != "" && cfg.Source(parts[0]) != nil && slices.Contains(refKinds, parts[1]) {
		return nil
	}
	var forms []string
	for _, src := range cfg.Sources {
		forms = append(forms, src.Name+":candidate:ID")
	}
	if cfg.Subjects.LinkByEmail {
		forms = append(forms, "email:ADDRESS (lower-case)")
	}
	return veil.Errorf(veil.EINVALIDSUBJECT, "That is not a subject reference; the valid forms are %s (the record kind may also be application, offer or event), without spaces.",
		strings.Join(forms, ", "))
}

// Refs returns the keyed hashes of every reference linked to the person
// ref belongs to: what her audit rows and events are filed under.
// EINVALIDSUBJECT and EUNKNOWNSUBJECT as for Report.
func (s *Subjects) Refs(ctx context.Context, ref string) ([]string, error) {
	if err := s.Check(ref); err != nil {
		return nil, err
	}
	_, refs, err := s.Store.Person(ctx, ref)
	return refs, err
}

// Report builds the access report (Art. 15) of the person ref belongs to.
// EINVALIDSUBJECT for a malformed reference, EUNKNOWNSUBJECT for one Veil
// holds nothing about.
func (s *Subjects) Report(ctx context.Context, ref string) (veil.SubjectReport, error) {
	if err := s.Check(ref); err != nil {
		return veil.SubjectReport{}, err
	}
	person, refs, err := s.Store.Person(ctx, ref)
	if err != nil {
		return veil.SubjectReport{}, err
	}
	rows, err := s.Store.SubjectRows(ctx, ref)
	if err != nil {
		return veil.SubjectReport{}, err
	}
	held, err := s.Store.Holdings(ctx, refs)
	if err != nil {
		return veil.SubjectReport{}, err
	}
	return veil.BuildSubjectReport(person, ref, len(refs), rows, held, s.Config, s.now()), nil
}

// View is Report for a person who reads it: the view is audited
// (report_viewed, by actor, under the person's keyed hash), so who looked
// at whose data is on record.
func (s *Subjects) View(ctx context.Context, ref, actor string) (veil.SubjectReport, error) {
	rep, err := s.Report(ctx, ref)
	if err != nil {
		return rep, err
	}
	s.Store.Record(&veil.AuditEntry{Time: s.now(), Action: veil.ActionReportViewed, Actor: actor, Subject: rep.Subject,
		Outcome: "viewed", Detail: "access report (Art. 15)"})
	return rep, nil
}

// Erase erases the person ref belongs to (Art. 17) and returns what it did
// and its signed receipt, which names the audit row, the recipients to
// tell (Art. 19) and the subject.erased notices queued to those with
// notify_erasure. A person erased before is not erased again: her first
// receipt comes back. EINVALIDSUBJECT and EUNKNOWNSUBJECT as for Report;
// neither is receipted.
func (s *Subjects) Erase(ctx context.Context, ref, actor string) (veil.Erasure, veil.ErasureReceipt, error) {
	report, err := s.Report(ctx, ref)
	if err != nil {
		return veil.Erasure{}, veil.ErasureReceipt{}, err
	}
	// Build the notices first: after the erasure nothing of hers can be
	// decrypted to say which records the recipient got.
	notices := s.notices(ref, report)
	res, err := s.Store.Erase(ctx, ref, actor)
	if err != nil {
		return res, veil.ErasureReceipt{}, err
	}
	if res.Already {
		var r veil.ErasureReceipt
		if err := json.Unmarshal(res.Receipt, &r); err != nil {
			return res, r, fmt.Errorf("read the first erasure's receipt: %w", err)
		}
		return res, r, nil
	}
	if s.GivenUp != nil {
		s.GivenUp(res.Cancelled)
	}
	var queued []veil.Notice
	for _, n := range notices {
		q, err := s.Store.QueueNotice(ctx, n.destination, n.body)
		if err != nil {
			return res, veil.ErasureReceipt{}, err
		}
		queued = append(queued, q)
	}
	if len(queued) > 0 && s.Queued != nil {
		s.Queued()
	}
	receipt := s.Store.Receipt(res, report, queued)
	b, _ := json.Marshal(receipt)
	if err := s.Store.SaveReceipt(ctx, res.Subject, b); err != nil {
		return res, receipt, err
	}
	return res, receipt, nil
}

type notice struct {
	destination string
	body        []byte
}

// notices are the subject.erased events owed to the destinations with
// notify_erasure that received the person's data: the events each
// received (its Veil-Event-Id headers), the record id of the person when
// that destination received it in clear, and its own pseudonym of it —
// never a name.
func (s *Subjects) notices(ref string, report veil.SubjectReport) []notice {
	kind := veil.RefKind(ref)
	src, id := "", ""
	if parts := strings.SplitN(ref, ":", 3); len(parts) == 3 {
		src, id = parts[0], parts[2]
	}
	var out []notice
	for _, d := range s.Config.Destinations {
		if !d.NotifyErasure {
			continue
		}
		var events []string
		clear := false
		for _, t := range report.Transfers {
			if t.Recipient != d.Name {
				continue
			}
			if !slices.Contains(events, t.EventID) {
				events = append(events, t.EventID)
			}
			for _, f := range t.FieldsKept {
				clear = clear || strings.HasSuffix(f, kind+".id") || strings.HasSuffix(f, kind+"Id") || strings.HasSuffix(f, kind+"_id")
			}
		}
		if len(events) == 0 {
			continue // it never received anything of hers
		}
		subject := map[string]string{"kind": kind, "source": src}
		if kind != veil.RefEmail && kind != veil.RefEvent && id != "" {
			subject["pseudonym"] = redact.Pseudonym(redact.DestinationKey(s.PseudonymKey, d.Name), id)
			if clear {
				subject["id"] = id
			}
		}
		body, _ := json.Marshal(map[string]any{"type": veil.TypeSubjectErased, "erased_at": s.now().Format(time.RFC3339),
			"subject": subject, "events": events})
		out = append(out, notice{destination: d.Name, body: body})
	}
	return out
}

// Restore lifts the erasure of the person ref belongs to, when she comes
// back with new consent; audited with actor and reason. A reason is
// required.
func (s *Subjects) Restore(ctx context.Context, ref, actor, reason string) error {
	if err := s.Check(ref); err != nil {
		return err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 500 || strings.ContainsFunc(reason, unicode.IsControl) {
		return veil.Errorf(veil.EINVALID, "Say why the erasure is lifted (--reason, one line of at most 500 characters): the audit row keeps it.")
	}
	_, err := s.Store.Restore(ctx, ref, actor, reason)
	return err
}

// PublicKey returns the key erasure receipts are signed with.
func (s *Subjects) PublicKey() ed25519.PublicKey { return s.Store.ReceiptPublicKey() }
