package ats

// SmartRecruiters (Customer API webhook subscriptions). Signature:
// `smartrecruiters-signature: v1=<hex>[;v1=<hex>…]` (one per key while
// keys rotate) and `smartrecruiters-timestamp`, over
// timestamp.body.event-id.event-name.event-version.link. The event's name
// and id travel as headers; the body holds only job_id and candidate_id.

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/redact"
)

var smartRecruitersVendor = &vendor{name: veil.VendorSmartRecruiters, newScheme: newSmartRecruiters, subjectKinds: []string{"candidate"}}

type smartRecruiters struct {
	describer
	keys      [][]byte
	tolerance time.Duration
}

func newSmartRecruiters(src *veil.Source) (Scheme, error) {
	return &smartRecruiters{keys: rawKeys(src), tolerance: time.Duration(src.Tolerance),
		describer: newDescriber(src, "", "candidate", "candidate_id", "candidateId", "candidate.id")}, nil
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
	msg := smartRecruitersMessage(h, body)
	if !anyMatch(s.keys, parseSmartRecruitersSignatures(sigs), func(k []byte) []byte { return hmacSHA256(k, msg...) }) {
		return errBadSignature
	}
	return checkTimestamp(time.Unix(sec, 0), now, s.tolerance)
}

func (s *smartRecruiters) Sign(body []byte, now time.Time) (http.Header, []byte, error) {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"veil-send"}}
	h.Set("smartrecruiters-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("event-id", veil.NewID(""))
	h.Set("event-name", "application.status.updated")
	h.Set("event-version", "1")
	h.Set("smartrecruiters-signature", "v1="+hex.EncodeToString(hmacSHA256(s.keys[0], smartRecruitersMessage(h, body)...)))
	return h, body, nil
}

// smartRecruitersMessage is the signed content; absent headers count as "".
func smartRecruitersMessage(h http.Header, body []byte) [][]byte {
	dot := []byte{'.'}
	return [][]byte{[]byte(h.Get("smartrecruiters-timestamp")), dot, body, dot, []byte(h.Get("event-id")), dot,
		[]byte(h.Get("event-name")), dot, []byte(h.Get("event-version")), dot, []byte(h.Get("link"))}
}

func (s *smartRecruiters) Describe(h http.Header, body []byte) Inbound {
	in := Inbound{EventType: Label(h.Get("event-name")), DedupKey: h.Get("event-id"), Subject: s.subject(body)}
	if in.EventType == "" {
		in.EventType = "unknown"
	}
	if in.DedupKey == "" {
		in.BodyKey = true
	}
	return in
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

// smartRecruitersTypes maps the event-name header onto normal types.
var smartRecruitersTypes = map[string]string{
	"application.created": veil.TypeApplicationCreated, "application.status.updated": veil.TypeStageChanged,
	"candidate.created": veil.TypeCandidateCreated, "candidate.updated": veil.TypeCandidateUpdated,
	"candidate.deleted": veil.TypeCandidateDeleted, "job.created": veil.TypeJobCreated, "job.updated": veil.TypeJobUpdated,
	"job.status.updated": veil.TypeJobUpdated,
}

// Normalize reads SmartRecruiters' id-only bodies: the application is
// identified by its job and candidate (job_id:candidate_id).
func (s *smartRecruiters) Normalize(eventType string, doc *redact.Doc) *veil.NormalEvent {
	e := newEvent(s.source, veil.VendorSmartRecruiters, eventType, smartRecruitersTypes)
	root := doc.Root()
	cand, job := first(root.Get("candidate_id"), root.Get("candidateId")), first(root.Get("job_id"), root.Get("jobId"))
	e.Candidate.ID, e.Job.ID = cand, job
	if cand != nil && job != nil {
		e.Application.ID = veil.Str(*job + ":" + *cand)
	}
	return e
}

func (s *smartRecruiters) Classifier() Classifier { return smartRecruitersCategories }

func (s *smartRecruiters) Category(pattern string) string {
	return smartRecruitersCategories.Category(pattern)
}

var smartRecruitersCategories = categories(
	"candidate_id", uid, "candidateId", uid, "job_id", ops, "jobId", ops,
)

func (s *smartRecruiters) Recognize(body []byte) bool {
	return hasAll(body, "job_id", "candidate_id") || hasAll(body, "jobId", "candidateId")
}
