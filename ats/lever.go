package ats

// Lever. The signature travels in the body and covers only `token` and
// `triggeredAt`, not `data`: signature = hex HMAC-SHA256(signature token,
// token + triggeredAt in decimal). The three fields are read with a bounded
// scan before the body is validated; the dedup key is the decoded
// signature, so its hex case does not matter.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/redact"
)

var leverVendor = &vendor{name: veil.VendorLever, newScheme: newLever, subjectKinds: []string{"candidate", "application"}}

type lever struct {
	describer
	keys      [][]byte
	tolerance time.Duration
}

func newLever(src *veil.Source) (Scheme, error) {
	return &lever{keys: rawKeys(src), tolerance: time.Duration(src.Tolerance),
		describer: newDescriber(src, "event", "candidate", "data.candidateId", "data.opportunityId")}, nil
}

func (l *lever) Verify(_ http.Header, body []byte, now time.Time) error {
	token, triggeredAt, sig, err := parseLeverBody(body)
	var invalid *redact.InvalidError
	if errors.As(err, &invalid) {
		return veil.Errorf(veil.EMALFORMED, "%s", invalid.Error())
	} else if err != nil {
		return errNoSignature
	}
	got, err := decodeHexSHA256(strings.ToLower(sig))
	ms := []byte(strconv.FormatInt(triggeredAt, 10))
	if err != nil || !anyMatch(l.keys, [][]byte{got}, func(k []byte) []byte { return hmacSHA256(k, []byte(token), ms) }) {
		return errBadSignature
	}
	return checkTimestamp(time.UnixMilli(triggeredAt), now, l.tolerance)
}

func (l *lever) Sign(body []byte, now time.Time) (http.Header, []byte, error) {
	token, _, _, err := parseLeverBody(body)
	if err != nil {
		return nil, nil, fmt.Errorf("sign lever body: %w", err)
	}
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	sig := hex.EncodeToString(hmacSHA256(l.keys[0], []byte(token), []byte(ms)))
	// sjson keeps every other byte of the body.
	if body, err = sjson.SetRawBytes(body, "triggeredAt", []byte(ms)); err != nil {
		return nil, nil, fmt.Errorf("sign lever body: %w", err)
	}
	if body, err = sjson.SetBytes(body, "signature", sig); err != nil {
		return nil, nil, fmt.Errorf("sign lever body: %w", err)
	}
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"veil-send"}}
	return h, body, nil
}

func (l *lever) Describe(_ http.Header, body []byte) Inbound {
	// Verify accepted the signature, so it decodes.
	sig, _ := hex.DecodeString(strings.ToLower(gjson.GetBytes(body, "signature").String()))
	return Inbound{EventType: l.eventType(body), DedupKey: string(sig), Subject: l.subject(body)}
}

// UpstreamIDs keeps the opportunity, which Lever's API returns.
func (l *lever) UpstreamIDs(body []byte) map[string]string {
	return map[string]string{"opportunity": gjson.GetBytes(body, "data.opportunityId").String()}
}

// parseLeverBody reads token, triggeredAt (integer milliseconds) and
// signature from the top level of a Lever body, in one bounded pass that
// does not descend into data; all three must be present.
func parseLeverBody(body []byte) (token string, triggeredAt int64, signature string, err error) {
	raw, err := redact.TopLevel(body, "token", "triggeredAt", "signature")
	if err != nil {
		return "", 0, "", err
	}
	if len(raw[0]) == 0 || raw[0][0] != '"' || len(raw[2]) == 0 || raw[2][0] != '"' || len(raw[1]) == 0 {
		return "", 0, "", errors.New("lever body needs token, triggeredAt and signature")
	}
	if json.Unmarshal(raw[0], &token) != nil || json.Unmarshal(raw[2], &signature) != nil {
		return "", 0, "", errors.New("lever body: token and signature must be strings")
	}
	triggeredAt, err = strconv.ParseInt(string(raw[1]), 10, 64)
	if err != nil {
		return "", 0, "", errors.New("triggeredAt is not an integer")
	}
	return token, triggeredAt, signature, nil
}

// leverTypes maps Lever's events onto normal event types.
var leverTypes = map[string]string{
	"applicationCreated": veil.TypeApplicationCreated, "candidateStageChange": veil.TypeStageChanged,
	"candidateArchiveChange": veil.TypeApplicationUpdated, "candidateHired": veil.TypeApplicationHired,
	"candidateDeleted": veil.TypeCandidateDeleted, "interviewCreated": veil.TypeInterviewScheduled,
	"interviewUpdated": veil.TypeInterviewScheduled, "interviewDeleted": veil.TypeInterviewCancelled,
	"contactCreated": veil.TypeCandidateCreated, "contactUpdated": veil.TypeCandidateUpdated,
}

// Normalize reads Lever's id-only payloads: the opportunity is the
// application, its candidate the candidate, the stage ids those it moved
// between; the rest waits for an upstream fetch.
func (l *lever) Normalize(eventType string, doc *redact.Doc) *veil.NormalEvent {
	e := newEvent(l.source, veil.VendorLever, eventType, leverTypes)
	root := doc.Root()
	d := root.Get("data")
	if !root.Get("event").Exists() && d.Get("id").Exists() {
		// An opportunity fetched from Lever's API in upstream lookup mode.
		e.Application.ID = d.Get("id").Ptr()
		e.Candidate.ID = first(d.Get("contact"), d.Get("id"))
		e.Candidate.Name = d.Get("name").Ptr()
		e.Candidate.Emails = texts(d.Get("emails"), "")
		e.Candidate.Phones = texts(d.Get("phones"), "value")
		e.Application.Stage.ID = first(d.Get("stage.id"), d.Get("stage"))
		return e
	}
	e.OccurredAt = millis(root.Get("triggeredAt"))
	e.Candidate.ID = first(d.Get("candidateId"), d.Get("contactId"))
	e.Application.ID = d.Get("opportunityId").Ptr()
	e.Application.Stage.ID = d.Get("toStageId").Ptr()
	e.Application.PreviousStage.ID = d.Get("fromStageId").Ptr()
	if to := d.Get("toArchived"); to.IsObject() && eventType == "candidateArchiveChange" {
		e.Type = veil.TypeApplicationRejected
		e.Application.Rejection.Reason = to.Get("reason").Ptr()
	}
	return e
}

func (l *lever) Classifier() Classifier { return leverCategories }

func (l *lever) Category(pattern string) string { return leverCategories.Category(pattern) }

// leverCategories classifies Lever's web hooks (ids only) and the
// opportunities Veil fetches from its API (under data).
var leverCategories = categories(
	"token", ops, "signature", ops, "triggeredAt", ops, "event", ops,
	"data.candidateId", uid, "data.contactId", uid, "data.opportunityId", uid, "data.applicationId", uid,
	"data.toStageId", ops, "data.fromStageId", ops, "data.fromArchived", ops, "data.toArchived", ops,
	"data.fromArchived.*", ops, "data.toArchived.*", ops,
	// opportunities fetched from Lever's API
	"data.id", uid, "data.contact", uid, "data.name", name, "data.headline", private, "data.emails.#", email,
	"data.phones.#.value", phone, "data.phones.#.type", ops, "data.location", address, "data.links.#", social,
	"data.tags.#", private, "data.sources.#", ops, "data.origin", ops, "data.stage", ops, "data.stage.id", ops,
	"data.stage.text", ops, "data.confidentiality", ops, "data.createdAt", ops, "data.updatedAt", ops,
	"data.lastInteractionAt", ops, "data.lastAdvancedAt", ops, "data.snoozedUntil", ops, "data.isAnonymized", ops,
	"data.archived", ops, "data.archived.reason", ops, "data.archived.archivedAt", ops,
	"data.owner", uid, "data.followers.#", uid, "data.applications.#", uid, "data.dataProtection.**", ops,
	"data.stageChanges.#.toStageId", ops, "data.stageChanges.#.toStageIndex", ops, "data.stageChanges.#.updatedAt", ops,
	"data.stageChanges.#.userId", uid, "data.urls.**", uid,
	// a deleted opportunity, as /opportunities/deleted lists it
	"data.deletedAt", ops,
)

func (l *lever) Recognize(body []byte) bool {
	return hasAll(body, "token", "triggeredAt", "signature", "event")
}

// Lever's API (https://hire.lever.co/developer/documentation): HTTP Basic
// with the API key as the user; GET /v1/opportunities?updated_at_start=<ms>
// &limit=N (1 to 100), then offset=<next> while hasNext; then the
// deletions, GET /v1/opportunities/deleted?deleted_at_start=<ms>, paged the
// same way. Confidential opportunities are left out of both unless the
// request asks for them (confidentiality=all, api.confidential) and the
// key is allowed them. Lever allows 10 requests per second.
type leverAPI struct{}

func (leverAPI) authorize(a *API, req *http.Request) error {
	req.SetBasicAuth(a.src.API.Key, "")
	return nil
}

// refused names what Lever's 403 means: the key may not read the route.
func (leverAPI) refused(endpoint string, _ []byte) string {
	return fmt.Sprintf("the API key may not read %s: give it read access to opportunities "+
		"(Settings → Integrations and API → API credentials)", endpoint)
}

func (lv leverAPI) list(ctx context.Context, a *API, l Listing, page func([]AppRecord) error) (string, error) {
	query := func(start string) url.Values {
		q := url.Values{start: {strconv.FormatInt(l.Since.UnixMilli(), 10)}, "limit": {strconv.Itoa(l.PerPage)}}
		if a.src.API.Confidential {
			q.Set("confidentiality", "all")
		}
		return q
	}
	if err := lv.pages(ctx, a, "/v1/opportunities", query("updated_at_start"), leverOpportunity, page); err != nil {
		return "", err
	}
	// A lost candidateDeleted web hook is the costliest miss: the deletion
	// is reconciled as candidate.deleted.
	return "", lv.pages(ctx, a, "/v1/opportunities/deleted", query("deleted_at_start"), leverDeleted, page)
}

// pages lists path from q, following next while hasNext.
func (leverAPI) pages(ctx context.Context, a *API, path string, q url.Values, read func(gjson.Result) AppRecord,
	page func([]AppRecord) error) error {
	for {
		data, _, err := a.do(ctx, http.MethodGet, a.endpoint(path, q), nil)
		if err != nil {
			return err
		}
		doc := gjson.ParseBytes(data)
		list := doc.Get("data")
		if !list.IsArray() {
			return &APIError{Status: http.StatusOK, Reason: "the page has no data list"}
		}
		var recs []AppRecord
		for _, r := range list.Array() {
			recs = append(recs, read(r))
		}
		if err := page(recs); err != nil {
			return err
		}
		next := doc.Get("next").String()
		if !doc.Get("hasNext").Bool() || next == "" {
			return nil
		}
		q.Set("offset", next)
	}
}

// leverDeleted reads a deleted opportunity: its id (and its contact, and
// when it was deleted, where the answer says them).
func leverDeleted(r gjson.Result) AppRecord {
	return AppRecord{ID: r.Get("id").String(), CandidateID: r.Get("contact").String(), Outcome: veil.OutcomeDeleted,
		UpdatedAt: parseTime(r.Get("deletedAt")), Raw: []byte(r.Raw)}
}

// leverOpportunity reads an opportunity: stage is an id (an object when
// expanded), archived is null or {reason, archivedAt}. The archive reason
// is the customer's own list (hired is one of them), so an archived
// opportunity is closed, hired or rejected.
func leverOpportunity(r gjson.Result) AppRecord {
	out := AppRecord{ID: r.Get("id").String(), CandidateID: r.Get("contact").String(),
		StageID: r.Get("stage").String(), CreatedAt: parseTime(r.Get("createdAt")),
		UpdatedAt: parseTime(r.Get("updatedAt")), Outcome: veil.OutcomeActive, Raw: []byte(r.Raw)}
	if st := r.Get("stage"); st.IsObject() {
		out.StageID, out.StageName = st.Get("id").String(), st.Get("text").String()
	}
	if a := r.Get("archived"); a.IsObject() {
		out.Outcome = veil.OutcomeClosed
	}
	return out
}

func (leverAPI) fetch(ctx context.Context, a *API, ids map[string]string) ([]byte, error) {
	data, _, err := a.do(ctx, http.MethodGet, a.endpoint("/v1/opportunities/"+url.PathEscape(ids["opportunity"]), nil), nil)
	if err != nil {
		return nil, lookupError(err)
	}
	return data, nil
}

func (leverAPI) envelope(rec AppRecord) []byte { return []byte(`{"data":` + string(rec.Raw) + `}`) }

func (leverAPI) upstream(rec AppRecord) map[string]string {
	return map[string]string{"opportunity": rec.ID}
}
