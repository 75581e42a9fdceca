package ats

// Ashby. Signature: `Ashby-Signature: sha256=<hex>`, HMAC-SHA256 of the raw
// body with the webhook's secret token. The body's webhookActionId is shared
// by related webhooks, so only (action, webhookActionId) identifies one.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/redact"
)

var ashbyVendor = &vendor{name: veil.VendorAshby, newScheme: newAshby, subjectKinds: []string{"candidate"}}

type ashby struct {
	describer
	keys [][]byte
}

func newAshby(src *veil.Source) (Scheme, error) {
	return &ashby{keys: rawKeys(src), describer: newDescriber(src, "action", "candidate",
		"data.application.candidate.id", "data.candidate.id", "data.surveySubmission.candidateId", "data.candidateId")}, nil
}

func (a *ashby) Verify(h http.Header, body []byte, _ time.Time) error {
	v := h.Get("Ashby-Signature")
	if v == "" {
		return errNoSignature
	}
	sig, err := parseAshbySignature(v)
	if err != nil || !anyMatch(a.keys, [][]byte{sig}, func(k []byte) []byte { return hmacSHA256(k, body) }) {
		return errBadSignature
	}
	return nil
}

func (a *ashby) Sign(body []byte, _ time.Time) (http.Header, []byte, error) {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"veil-send"}}
	h.Set("Ashby-Signature", "sha256="+hex.EncodeToString(hmacSHA256(a.keys[0], body)))
	return h, body, nil
}

func (a *ashby) Describe(_ http.Header, body []byte) Inbound {
	in := Inbound{EventType: a.eventType(body), Subject: a.subject(body)}
	r := gjson.GetManyBytes(body, "action", "webhookActionId")
	if r[1].String() != "" {
		in.DedupKey = r[0].String() + "\x00" + r[1].String()
	} else {
		in.BodyKey = true // no id in the body: the body is the key
	}
	return in
}

// parseAshbySignature parses "sha256=<hex>".
func parseAshbySignature(v string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(v), "sha256=")
	if !ok {
		return nil, errors.New(`want "sha256=<hex>"`)
	}
	return decodeHexSHA256(hexSig)
}

// ashbyTypes maps Ashby's actions onto normal event types.
var ashbyTypes = map[string]string{
	"applicationSubmit": veil.TypeApplicationCreated, "applicationUpdate": veil.TypeApplicationUpdated,
	"candidateStageChange": veil.TypeStageChanged, "interviewPlanTransition": veil.TypeStageChanged,
	"candidateHire": veil.TypeApplicationHired, "candidateDelete": veil.TypeCandidateDeleted,
	"candidateMerge": veil.TypeCandidateUpdated, "offerCreate": veil.TypeOfferCreated, "offerUpdate": veil.TypeOfferUpdated,
	"interviewScheduleCreate": veil.TypeInterviewScheduled, "interviewScheduleUpdate": veil.TypeInterviewScheduled,
	"jobCreate": veil.TypeJobCreated, "jobUpdate": veil.TypeJobUpdated, "surveySubmit": veil.TypeSurveySubmitted,
}

// Normalize reads Ashby's payloads: data.application (with its candidate,
// stage and job), data.offer, data.surveySubmission, data.job.
func (a *ashby) Normalize(eventType string, doc *redact.Doc) *veil.NormalEvent {
	e := newEvent(a.source, veil.VendorAshby, eventType, ashbyTypes)
	d := doc.Root().Get("data")
	app, survey, offer := d.Get("application"), d.Get("surveySubmission"), d.Get("offer")
	cand := app.Get("candidate")
	if !cand.Exists() {
		cand = d.Get("candidate")
	}
	e.OccurredAt = first(app.Get("updatedAt"), offer.Get("decidedAt"), survey.Get("submittedAt"), d.Get("job.updatedAt"))
	c := &e.Candidate
	c.ID = first(cand.Get("id"), survey.Get("candidateId"), d.Get("candidateId"))
	c.Name = cand.Get("name").Ptr()
	c.Emails = texts(cand.Get("emailAddresses"), "value")
	if p := cand.Get("primaryEmailAddress.value").Ptr(); p != nil && len(c.Emails) == 0 {
		c.Emails = []string{*p}
	}
	c.Phones = texts(cand.Get("phoneNumbers"), "value")
	if p := cand.Get("primaryPhoneNumber.value").Ptr(); p != nil && len(c.Phones) == 0 {
		c.Phones = []string{*p}
	}
	ap := &e.Application
	ap.ID = first(app.Get("id"), survey.Get("applicationId"), offer.Get("applicationId"))
	ap.Status, ap.AppliedAt = app.Get("status").Ptr(), app.Get("createdAt").Ptr()
	ap.Stage = veil.NormalRef{ID: app.Get("currentInterviewStage.id").Ptr(), Name: app.Get("currentInterviewStage.title").Ptr()}
	ap.Source = veil.NormalRef{ID: app.Get("source.id").Ptr(), Name: app.Get("source.title").Ptr()}
	ap.Rejection.Reason = first(app.Get("archiveReason.text"), app.Get("archiveReason.title"))
	if s, _ := app.Get("status").Text(); s == "Archived" && eventType == "applicationUpdate" {
		e.Type = veil.TypeApplicationRejected
	}
	job := app.Get("job")
	if !job.Exists() {
		job = d.Get("job")
	}
	e.Job = veil.NormalJob{ID: job.Get("id").Ptr(), Title: job.Get("title").Ptr(), RequisitionID: job.Get("requisitionId").Ptr()}
	if id := job.Get("departmentId").Ptr(); id != nil {
		e.Job.Departments = []veil.NormalRef{{ID: id}}
	}
	if id := job.Get("locationId").Ptr(); id != nil {
		e.Job.Offices = []veil.NormalRef{{ID: id}}
	}
	if s, _ := job.Get("status").Text(); s == "Closed" && eventType == "jobUpdate" {
		e.Type = veil.TypeJobClosed
	}
	if offer.Exists() {
		v := offer.Get("latestVersion")
		e.Offer = veil.NormalOffer{ID: offer.Get("id").Ptr(), Status: first(offer.Get("offerStatus"), offer.Get("acceptanceStatus")),
			ResolvedAt: offer.Get("decidedAt").Ptr(), StartsAt: v.Get("startDate").Ptr(),
			Compensation: compensation(v.Get("salary.value"), v.Get("salary.currencyCode"), redact.Value{})}
	}
	return e
}

func (a *ashby) Classifier() Classifier { return ashbyCategories }

func (a *ashby) Category(pattern string) string { return ashbyCategories.Category(pattern) }

// ashbyUser is a person who works for the customer (the user an
// application is credited to, an offer's author, a hiring team member).
func ashbyUser(prefix string) []string {
	p := func(s string) string { return prefix + "." + s }
	return []string{p("id"), uid, p("userId"), uid, p("firstName"), "user.name.first", p("lastName"), "user.name.last",
		p("email"), email, p("globalRole"), ops, p("role"), ops, p("isEnabled"), ops, p("updatedAt"), ops}
}

// ashbyCandidate is a candidate, under an application or as the payload.
func ashbyCandidate(prefix string) []string {
	p := func(s string) string { return prefix + "." + s }
	return []string{p("id"), uid, p("name"), name, p("profileUrl"), uid,
		p("primaryEmailAddress.value"), email, p("primaryPhoneNumber.value"), phone,
		p("emailAddresses.#.value"), email, p("phoneNumbers.#.value"), phone, p("socialLinks.#.url"), social,
		p("socialLinks.#.type"), ops, p("*.type"), ops, p("*.isPrimary"), ops, p("*.#.type"), ops, p("*.#.isPrimary"), ops,
		p("position"), jobTitle, p("company"), company, p("school"), private, p("location.**"), address,
		p("tags.#.id"), ops, p("tags.#.title"), private, p("createdAt"), ops, p("updatedAt"), ops,
		p("applicationIds.#"), uid, p("resumeFileHandle.**"), private, p("fileHandles.**"), private}
}

// ashbyCategories classifies Ashby's web hook payloads (an application,
// an offer, a survey submission under data). Custom fields are an array
// of {id, title, value}: the title is the customer's schema, the value
// private content (its category cannot be read from its path).
var ashbyCategories = categories(slices.Concat(
	[]string{
		"action", ops, "webhookActionId", ops,
		"data.application.id", uid, "data.application.createdAt", ops, "data.application.updatedAt", ops,
		"data.application.status", ops, "data.application.archivedAt", ops, "data.application.appliedViaJobPostingId", ops,
		"data.application.archiveReason", ops, "data.application.archiveReason.id", ops,
		"data.application.archiveReason.text", private, "data.application.archiveReason.reasonType", ops,
		"data.application.archiveReason.isArchived", ops,
		"data.application.currentInterviewStage.id", ops, "data.application.currentInterviewStage.title", ops,
		"data.application.currentInterviewStage.type", ops, "data.application.currentInterviewStage.orderInInterviewPlan", ops,
		"data.application.currentInterviewStage.interviewStageGroupId", ops,
		"data.application.currentInterviewStage.interviewPlanId", ops,
		"data.application.source.id", ops, "data.application.source.title", ops, "data.application.source.isArchived", ops,
		"data.application.source.sourceType.id", ops, "data.application.source.sourceType.title", ops,
		"data.application.source.sourceType.isArchived", ops,
		"data.application.job.id", ops, "data.application.job.title", ops, "data.application.job.locationId", ops,
		"data.application.job.departmentId", ops,
		"data.application.submitterClientIp", ip, "data.application.submitterUserAgent", device,
		"**.customFields.#.id", ops, "**.customFields.#.title", ops, "**.customFields.#.isPrivate", ops,
		"**.customFields.#.value", private, "**.customFields.#.value.**", private,
		"**.candidateId", uid, "**.applicationId", uid,
	},
	ashbyCandidate("data.application.candidate"), ashbyCandidate("data.candidate"),
	ashbyUser("data.application.creditedToUser"), ashbyUser("data.application.hiringTeam.#"),
	ashbyUser("data.offer.latestVersion.author"),
	[]string{
		"data.offer.id", ops, "data.offer.applicationId", uid, "data.offer.acceptanceStatus", ops, "data.offer.offerStatus", ops,
		"data.offer.decidedAt", ops,
		"data.offer.latestVersion.id", ops, "data.offer.latestVersion.startDate", ops, "data.offer.latestVersion.createdAt", ops,
		"data.offer.latestVersion.approvalStatus", ops, "data.offer.latestVersion.openingId", ops,
		"data.offer.latestVersion.salary.**", money, "data.offer.latestVersion.fileHandles.**", private,
		"data.surveySubmission.id", ops, "data.surveySubmission.submittedAt", ops,
		"data.surveySubmission.surveyFormDefinitionId", ops, "data.surveySubmission.surveyType", ops,
		"data.surveySubmission.submittedValues._systemfield_email", email,
		"data.surveySubmission.submittedValues._systemfield_phone", phone,
		"data.surveySubmission.submittedValues._systemfield_name", name,
		"data.surveySubmission.submittedValues.**", private,
	},
)...)

func (a *ashby) Recognize(body []byte) bool { return hasAll(body, "action", "data", "webhookActionId") }

// Ashby's API (https://developers.ashbyhq.com: authentication,
// pagination and incremental synchronisation): HTTP Basic with the API key
// as the user and Accept: application/json; version=1; POST
// /application.list {limit, syncToken, cursor}, following nextCursor while
// moreDataAvailable; the last page carries the new syncToken. Without a
// token the pass is full, filtered here by updatedAt. Errors come with
// success: false and errors as codes (["sync_token_expired"]) or objects
// ([{"code": …}]), or as errorInfo.code: sync_token_expired and
// incremental_sync_too_large both mean discard the token and run a full
// sync. A key without the endpoint's permission gets 403
// missing_endpoint_permission.
type ashbyAPI struct{}

func (ashbyAPI) authorize(a *API, req *http.Request) error {
	req.SetBasicAuth(a.src.API.Key, "")
	return nil
}

// ashbyPermission is the permission each endpoint Veil calls needs
// (Ashby's table of API key permissions: applications are in the
// Candidates module).
var ashbyPermission = map[string]string{"/application.list": "candidatesRead", "/application.info": "candidatesRead"}

// refused names what Ashby's 403 means: a wrong or deactivated key, or
// (missing_endpoint_permission) the permission the endpoint needs.
func (ashbyAPI) refused(endpoint string, body []byte) string {
	if slices.Contains(ashbyCodes(gjson.ParseBytes(body)), "missing_endpoint_permission") {
		perm := ashbyPermission[endpoint]
		if perm == "" {
			perm = "the endpoint's read permission"
		}
		return fmt.Sprintf("missing_endpoint_permission: the API key lacks %s (Candidates → Read) that %s needs; "+
			"grant it under Admin → Integrations → API Keys", perm, strings.TrimPrefix(endpoint, "/"))
	}
	return "the API key is wrong or deactivated"
}

// ashbyCodes returns the error codes of an Ashby answer, in both shapes:
// errors: ["code"], errors: [{"code": …}], and errorInfo.code. Only what
// looks like a code is kept (never a message).
func ashbyCodes(doc gjson.Result) []string {
	var out []string
	add := func(r gjson.Result) {
		if r.Type == gjson.String && isCode(r.Str) {
			out = append(out, r.Str)
		}
	}
	for _, e := range doc.Get("errors").Array() {
		if e.IsObject() {
			add(e.Get("code"))
		} else {
			add(e)
		}
	}
	add(doc.Get("errorInfo.code"))
	return out
}

// isCode reports whether s is an error code (lower_snake_case, short).
func isCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func (ashbyAPI) list(ctx context.Context, a *API, l Listing, page func([]AppRecord) error) (string, error) {
	req := map[string]any{"limit": l.PerPage}
	if l.Token != "" {
		req["syncToken"] = l.Token
	}
	for {
		body, _ := json.Marshal(req)
		data, _, err := a.do(ctx, http.MethodPost, a.endpoint("/application.list", nil), body)
		if err != nil {
			return "", err
		}
		doc := gjson.ParseBytes(data)
		if !doc.Get("success").Bool() {
			codes := ashbyCodes(doc)
			switch {
			case slices.Contains(codes, "sync_token_expired"):
				return "", ErrTokenExpired
			case slices.Contains(codes, "incremental_sync_too_large"):
				return "", ErrSyncTooLarge
			case len(codes) > 0:
				return "", &APIError{Status: http.StatusOK, Reason: "the API answered success: false: " + strings.Join(codes, ", ")}
			}
			return "", &APIError{Status: http.StatusOK, Reason: "the API answered success: false"}
		}
		list := doc.Get("results")
		if !list.IsArray() {
			return "", &APIError{Status: http.StatusOK, Reason: "the page has no results list"}
		}
		var recs []AppRecord
		for _, r := range list.Array() {
			rec := ashbyApplication(r)
			if l.Token == "" && rec.UpdatedAt.Before(l.Since) {
				continue // a full pass: only what changed since the watermark
			}
			recs = append(recs, rec)
		}
		if err := page(recs); err != nil {
			return "", err
		}
		if !doc.Get("moreDataAvailable").Bool() {
			return doc.Get("syncToken").String(), nil
		}
		req["cursor"] = doc.Get("nextCursor").String()
	}
}

func ashbyApplication(r gjson.Result) AppRecord {
	return AppRecord{ID: r.Get("id").String(), CandidateID: r.Get("candidate.id").String(),
		JobID: r.Get("job.id").String(), StageID: r.Get("currentInterviewStage.id").String(),
		StageName: r.Get("currentInterviewStage.title").String(), Outcome: veil.OutcomeOf(r.Get("status").String()),
		CreatedAt: parseTime(r.Get("createdAt")), UpdatedAt: parseTime(r.Get("updatedAt")), Raw: []byte(r.Raw)}
}

func (ashbyAPI) fetch(ctx context.Context, a *API, ids map[string]string) ([]byte, error) {
	body, _ := json.Marshal(map[string]string{"applicationId": ids["application"]})
	data, _, err := a.do(ctx, http.MethodPost, a.endpoint("/application.info", nil), body)
	if err != nil {
		return nil, lookupError(err)
	}
	res := gjson.GetBytes(data, "results")
	if !gjson.GetBytes(data, "success").Bool() || !res.IsObject() {
		return nil, veil.Errorf(veil.EGONE, "The ATS no longer has this record.")
	}
	return []byte(`{"data":{"application":` + res.Raw + `}}`), nil
}

func (ashbyAPI) envelope(rec AppRecord) []byte {
	return []byte(`{"data":{"application":` + string(rec.Raw) + `}}`)
}

func (ashbyAPI) upstream(rec AppRecord) map[string]string {
	return map[string]string{"application": rec.ID}
}
