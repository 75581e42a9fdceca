package ats

// Greenhouse (Recruiting web hooks). Signature: `Signature: sha256 <hex>`,
// HMAC-SHA256 of the raw body with the web hook's secret key. Greenhouse
// signs neither a timestamp nor its Greenhouse-Event-ID header, so a
// byte-identical body is a duplicate whatever that header says.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/redact"
)

var greenhouseVendor = &vendor{name: veil.VendorGreenhouse, newScheme: newGreenhouse,
	subjectKinds: []string{"candidate", "application"}}

type greenhouse struct {
	describer
	keys [][]byte
}

func newGreenhouse(src *veil.Source) (Scheme, error) {
	return &greenhouse{keys: rawKeys(src), describer: newDescriber(src, "action", "candidate",
		"payload.application.candidate.id", "payload.candidate.id", "payload.person.id")}, nil
}

func (g *greenhouse) Verify(h http.Header, body []byte, _ time.Time) error {
	v := h.Get("Signature")
	if v == "" {
		return errNoSignature
	}
	sig, err := parseGreenhouseSignature(v)
	if err != nil || !anyMatch(g.keys, [][]byte{sig}, func(k []byte) []byte { return hmacSHA256(k, body) }) {
		return errBadSignature
	}
	return nil
}

func (g *greenhouse) Sign(body []byte, _ time.Time) (http.Header, []byte, error) {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"veil-send"}}
	h.Set("Greenhouse-Event-ID", veil.NewID(""))
	h.Set("Signature", "sha256 "+hex.EncodeToString(hmacSHA256(g.keys[0], body)))
	return h, body, nil
}

func (g *greenhouse) Describe(h http.Header, body []byte) Inbound {
	in := Inbound{EventType: g.eventType(body), DedupKey: h.Get("Greenhouse-Event-ID"), BodyKey: true, Subject: g.subject(body)}
	if in.Subject == "" {
		// Offer events name only the application.
		for _, p := range []string{"payload.application_id", "payload.offer.application_id"} {
			if id := idAt(body, p); id != "" {
				in.Subject = g.source + ":application:" + id
				break
			}
		}
	}
	return in
}

// UpstreamIDs keeps what Harvest needs to return the application and its
// candidate.
func (g *greenhouse) UpstreamIDs(body []byte) map[string]string {
	r := gjson.GetManyBytes(body, "payload.application.id", "payload.application.candidate.id")
	return map[string]string{"application": r[0].String(), "candidate": r[1].String()}
}

// parseGreenhouseSignature parses "sha256 <hex>".
func parseGreenhouseSignature(v string) ([]byte, error) {
	alg, hexSig, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || alg != "sha256" {
		return nil, errors.New(`want "sha256 <hex>"`)
	}
	return decodeHexSHA256(strings.TrimSpace(hexSig))
}

// greenhouseTypes maps Greenhouse's actions onto normal event types.
var greenhouseTypes = map[string]string{
	"new_candidate_application": veil.TypeApplicationCreated, "new_prospect_application": veil.TypeApplicationCreated,
	"candidate_stage_change": veil.TypeStageChanged, "hire_candidate": veil.TypeApplicationHired,
	"reject_candidate": veil.TypeApplicationRejected, "unreject_candidate": veil.TypeApplicationUpdated,
	"unhire_candidate": veil.TypeApplicationUpdated, "application_updated": veil.TypeApplicationUpdated,
	"delete_application": veil.TypeApplicationUpdated, "prospect_created": veil.TypeCandidateCreated,
	"update_candidate": veil.TypeCandidateUpdated, "merge_candidate": veil.TypeCandidateUpdated,
	"delete_candidate": veil.TypeCandidateDeleted, "candidate_anonymized": veil.TypeCandidateDeleted,
	"offer_created": veil.TypeOfferCreated, "offer_approved": veil.TypeOfferUpdated, "offer_updated": veil.TypeOfferUpdated,
	"offer_deleted": veil.TypeOfferUpdated, "interview_deleted": veil.TypeInterviewCancelled,
	"job_created": veil.TypeJobCreated, "job_updated": veil.TypeJobUpdated, "job_approved": veil.TypeJobUpdated,
	"job_deleted": veil.TypeJobClosed,
}

// Normalize reads Greenhouse's web hook payloads: an application (with
// its candidate and jobs) under payload.application, an offer as the payload
// itself, a candidate under payload.candidate, a job under payload.job.
// Harvest v3 records ({application, candidate, job} at the root: fetched
// in upstream lookup mode, or listed by reconciliation) give the same
// normal form from their flat fields: stage_name and
// job_interview_stage_id, job_id, source_id, created_at, status in_process
// (the web hooks' active).
func (g *greenhouse) Normalize(eventType string, doc *redact.Doc) *veil.NormalEvent {
	e := newEvent(g.source, veil.VendorGreenhouse, eventType, greenhouseTypes)
	p := doc.Root().Get("payload")
	harvest := !p.Exists()
	if harvest {
		p = doc.Root()
	}
	app := p.Get("application")
	cand := app.Get("candidate")
	if !cand.Exists() {
		cand = p.Get("candidate")
	}
	e.OccurredAt = first(app.Get("last_activity_at"), p.Get("resolved_at"), p.Get("updated_at"))
	c := &e.Candidate
	c.ID, c.FirstName, c.LastName = cand.Get("id").Ptr(), cand.Get("first_name").Ptr(), cand.Get("last_name").Ptr()
	c.Name = joinName(c.FirstName, c.LastName)
	c.Emails = texts(cand.Get("email_addresses"), "value")
	c.Phones = texts(cand.Get("phone_numbers"), "value")
	if addrs := texts(cand.Get("addresses"), "value"); len(addrs) > 0 {
		c.Address.Street = &addrs[0] // one free-text field: the whole address
	}
	c.Title, c.Company = cand.Get("title").Ptr(), cand.Get("company").Ptr()
	c.Links = append(texts(cand.Get("website_addresses"), "value"), texts(cand.Get("social_media_addresses"), "value")...)

	a := &e.Application
	a.ID = first(app.Get("id"), p.Get("application_id"))
	a.Status, a.AppliedAt = app.Get("status").Ptr(), app.Get("applied_at").Ptr()
	a.Stage = veil.NormalRef{ID: app.Get("current_stage.id").Ptr(), Name: app.Get("current_stage.name").Ptr()}
	a.Source = veil.NormalRef{ID: app.Get("source.id").Ptr(), Name: first(app.Get("source.name"), app.Get("source.public_name"))}
	a.Rejection.Reason = first(app.Get("rejection_reason.name"), app.Get("rejection_reason"))
	if harvest {
		a.AppliedAt = first(app.Get("applied_at"), app.Get("created_at"))
		a.Stage = veil.NormalRef{ID: first(app.Get("job_interview_stage_id"), app.Get("stage_id")), Name: app.Get("stage_name").Ptr()}
		a.Source.ID = first(app.Get("source.id"), app.Get("source_id"))
		a.Rejection.Reason = app.Get("rejection_reason.name").Ptr()
		if a.Status != nil && *a.Status == "in_process" {
			a.Status = veil.Str("active")
		}
		if e.OccurredAt == nil {
			e.OccurredAt = app.Get("updated_at").Ptr()
		}
	}
	if eventType == "hire_candidate" && a.Status == nil {
		a.Status = veil.Str("hired")
	}

	job := app.Get("jobs.0")
	if !job.Exists() {
		job = app.Get("job")
	}
	if !job.Exists() {
		job = p.Get("job")
	}
	e.Job = veil.NormalJob{ID: first(job.Get("id"), p.Get("job_id"), app.Get("job_id")), Title: job.Get("name").Ptr(),
		RequisitionID: job.Get("requisition_id").Ptr(), Departments: refs(job.Get("departments"), "id", "name"),
		Offices: refs(job.Get("offices"), "id", "name")}
	if harvest {
		// v3 jobs name their department and offices by id only.
		if d := job.Get("department_id").Ptr(); len(e.Job.Departments) == 0 && d != nil {
			e.Job.Departments = []veil.NormalRef{{ID: d}}
		}
		if len(e.Job.Offices) == 0 {
			job.Get("office_ids").Each(func(o redact.Value) {
				if id := o.Ptr(); id != nil {
					e.Job.Offices = append(e.Job.Offices, veil.NormalRef{ID: id})
				}
			})
		}
	}
	if eventType == "job_updated" {
		if s, _ := job.Get("status").Text(); s == "closed" {
			e.Type = veil.TypeJobClosed
		}
	}

	offer := app.Get("offer")
	if strings.HasPrefix(eventType, "offer_") {
		offer = p
		if o := p.Get("offer"); o.Exists() {
			offer = o // offer_deleted nests it
		}
	}
	if offer.Exists() {
		salary := offer.Get("custom_fields.salary")
		e.Offer = veil.NormalOffer{ID: offer.Get("id").Ptr(), Status: offer.Get("offer_status").Ptr(),
			SentAt: first(offer.Get("sent_at"), offer.Get("sent_on")), ResolvedAt: offer.Get("resolved_at").Ptr(),
			StartsAt: first(offer.Get("starts_at"), offer.Get("start_date"))}
		if t, _ := salary.Get("type").Text(); t == "currency" {
			e.Offer.Compensation = compensation(salary.Get("value.amount"), salary.Get("value.unit"), salary.Get("frequency"))
		}
	}
	return e
}

// Category classifies Greenhouse payload paths: every path of its web
// hooks and of the Harvest v3 records Veil fetches that its references
// name, and nothing else (an unknown path is unclassified, so personal).
// Custom fields are the customer's own: their labels and types are the
// customer's schema, their values the data, classified by the words of
// their key (date_of_birth, salary_expectation, tax_id_nif) and private
// when those say nothing. Job-level custom fields describe the job.
func (g *greenhouse) Classifier() Classifier { return greenhouseCategories }

func (g *greenhouse) Category(pattern string) string { return greenhouseCategories.Category(pattern) }

// greenhouseJob is what a job holds, wherever it appears: under the
// application (jobs[], job), or as a job web hook's payload.
func greenhouseJob(prefix string) []string {
	p := func(s string) string { return prefix + "." + s }
	return []string{
		p("id"), ops, p("name"), ops, p("requisition_id"), ops, p("status"), ops, p("confidential"), ops,
		p("created_at"), ops, p("updated_at"), ops, p("opened_at"), ops, p("closed_at"), ops, p("open_date"), ops,
		p("close_date"), ops, p("url"), ops, p("job_post_id"), ops, p("is_template"), ops, p("copied_from_id"), ops,
		p("notes"), private, p("created_by_id"), uid,
		p("departments.#.id"), ops, p("departments.#.name"), ops, p("departments.#.external_id"), ops,
		p("departments.#.parent_id"), ops, p("departments"), ops,
		p("offices.#.id"), ops, p("offices.#.name"), ops, p("offices.#.external_id"), ops, p("offices.#.location"), ops,
		p("offices.#.location.name"), ops, p("offices.#.parent_id"), ops, p("offices"), ops,
		p("custom_fields.*.name"), ops, p("custom_fields.*.type"), ops, p("custom_fields.*.value"), ops,
		p("custom_fields.*.value.*"), ops, p("custom_fields"), ops,
		// the hiring team: people who work for the customer
		p("hiring_team.*.#.user_id"), uid, p("hiring_team.*.#.id"), uid, p("hiring_team.*.#.employee_id"), uid,
		p("hiring_team.*.#.name"), name, p("hiring_team.*.#.first_name"), "user.name.first",
		p("hiring_team.*.#.last_name"), "user.name.last", p("hiring_team.*.#.email"), email,
		p("hiring_team.*.#.responsible"), ops, p("hiring_team.*"), name,
		p("openings.#.id"), ops, p("openings.#.opening_id"), ops, p("openings.#.status"), ops,
		p("openings.#.opened_at"), ops, p("openings.#.closed_at"), ops,
	}
}

// greenhouseUser is a person who works for the customer (a recruiter, a
// coordinator, whoever an application is credited to, an approver).
func greenhouseUser(prefix string) []string {
	p := func(s string) string { return prefix + "." + s }
	return []string{p("id"), uid, p("user_id"), uid, p("employee_id"), uid, p("name"), name, p("first_name"), "user.name.first",
		p("last_name"), "user.name.last", p("email"), email, prefix, name}
}

// greenhouseOffer is an offer, under the application or as an offer web
// hook's payload (offer_deleted nests it under offer).
func greenhouseOffer(prefix string) []string {
	p := func(s string) string {
		if prefix == "" {
			return s
		}
		return prefix + "." + s
	}
	return []string{
		p("id"), ops, p("version"), ops, p("offer_status"), ops, p("status"), ops, p("created_at"), ops, p("updated_at"), ops,
		p("sent_at"), ops, p("sent_on"), ops, p("resolved_at"), ops, p("starts_at"), ops, p("start_date"), ops,
		p("application_id"), uid, p("candidate_id"), uid, p("job_id"), ops, p("opening.id"), ops, p("opening.opening_id"), ops,
		p("user_id"), uid, p("notes"), private,
	}
}

var greenhouseCategories = categories(slices.Concat(
	[]string{"action", ops},
	// custom fields of people and offers (job-level ones are in greenhouseJob)
	greenhouseJob("payload.application.jobs.#"), greenhouseJob("payload.application.job"), greenhouseJob("payload.job"),
	[]string{
		"**.custom_fields.*.name", ops, "**.custom_fields.*.type", ops,
		// a custom field of type user names a person
		"**.custom_fields.*.value.user_id", uid, "**.custom_fields.*.value.employee_id", uid,
		"**.custom_fields.*.value.name", name, "**.custom_fields.*.value.email", email,
		"**.custom_fields.{key}.**", private, "**.custom_fields.{key}", private,
	},
	greenhouseUser("**.recruiter"), greenhouseUser("**.coordinator"), greenhouseUser("**.credited_to"),
	greenhouseUser("**.prospect_detail.prospect_owner"),
	[]string{
		// interviews and their kits
		"**.interviews.#.id", ops, "**.interviews.#.name", ops, "**.interviews.#.status", ops,
		"**.interviews.#.interviewers.#.id", uid, "**.interviews.#.interviewers.#.user_id", uid,
		"**.interviews.#.interviewers.#.display_name", name, "**.interviews.#.interviewers.#.name", name,
		"**.interviews.#.interviewers.#.email", email, "**.interviews.#.interviewers.#.status", ops,
		"**.interviews.#.interviewers", name,
		"**.interview_kit.content", private, "**.interview_kit.url", private, "**.interview_kit.questions.#.id", ops,
		"**.interview_kit.questions.#.question", ops, "**.interview_kit.questions", ops,
		// the candidate
		"**.candidate.id", uid, "**.candidate.external_id", uid, "**.candidate.url", uid, "**.candidate.photo_url", image,
		"**.candidate.first_name", "user.name.first", "**.candidate.last_name", "user.name.last",
		"**.candidate.title", jobTitle, "**.candidate.company", company,
		"**.candidate.phone_numbers.#.value", phone, "**.candidate.email_addresses.#.value", email,
		"**.candidate.addresses.#.value", address, "**.candidate.website_addresses.#.value", social,
		"**.candidate.social_media_addresses.#.value", social, "**.candidate.*.#.type", ops,
		"**.candidate.educations.#.id", ops, "**.candidate.educations.**", private, "**.candidate.educations", private,
		"**.candidate.employments.#.id", ops, "**.candidate.employments.#.title", jobTitle,
		"**.candidate.employments.#.company_name", company, "**.candidate.employments.**", private,
		"**.candidate.employments", private,
		"**.candidate.attachments.#.type", ops, "**.candidate.attachments.**", private, "**.candidate.attachments", private,
		"**.candidate.tags.#", private, "**.candidate.tags", private,
		"**.candidate.is_private", ops, "**.candidate.can_email", ops, "**.candidate.created_at", ops,
		"**.candidate.updated_at", ops, "**.candidate.last_activity", ops, "**.candidate.last_activity_at", ops,
		"**.candidate.application_ids.#", uid,
		"payload.person.id", uid,
		// the application
		"payload.application.id", uid, "payload.application.url", uid, "payload.application.candidate_id", uid,
		"payload.application.applied_at", ops, "payload.application.rejected_at", ops, "payload.application.last_activity_at", ops,
		"payload.application.status", ops, "payload.application.prospect", ops,
		"payload.application.prospect_detail.prospect_pool", ops, "payload.application.prospect_detail.prospect_stage", ops,
		"payload.application.prospect_detail.*.id", ops, "payload.application.prospect_detail.*.name", ops,
		"payload.application.current_stage.id", ops, "payload.application.current_stage.name", ops,
		"payload.application.source.id", ops, "payload.application.source.name", ops, "payload.application.source.public_name", ops,
		"payload.application.rejection_reason", ops, "payload.application.rejection_reason.id", ops,
		"payload.application.rejection_reason.name", ops, "payload.application.rejection_reason.type.*", ops,
		"payload.application.rejection_details.**", private, "payload.application.rejection_details", private,
		"payload.application.opening.opening_id", ops, "payload.application.opening.id", ops,
		"payload.application.opening.custom_fields", ops,
		"payload.application.answers.#.question", ops, "payload.application.answers.#.answer", private,
		"payload.application.location.address", address, "payload.application.location", address,
	},
	greenhouseOffer("payload.application.offer"),
	greenhouseOffer("payload"), greenhouseOffer("payload.offer"),
	// Harvest v3 records Veil lists and fetches: {application, candidate,
	// job}, flat, ids where v1 nested objects (testdata/upstream/README.md
	// names the references).
	greenhouseJob("job"),
	[]string{
		"job.department_id", ops, "job.office_ids.#", ops, "job.opening_ids.#", ops,
		"application.id", uid, "application.candidate_id", uid, "application.prospect", ops, "application.applied_at", ops,
		"application.rejected_at", ops, "application.last_activity_at", ops, "application.status", ops,
		"application.stage_id", ops, "application.job_interview_stage_id", ops, "application.stage_name", ops,
		"application.job_id", ops, "application.job_ids.#", ops, "application.job_post_id", ops, "application.source_id", ops,
		"application.credited_to_id", uid, "application.referrer_id", uid, "application.recruiter_id", uid,
		"application.coordinator_id", uid, "application.prospect_owner_id", uid,
		"application.prospect_pool_id", ops, "application.prospect_stage_id", ops, "application.rejection_reason_id", ops,
		"application.created_at", ops, "application.updated_at", ops,
		// what the candidate wrote: her answers and her address
		"application.answers.#.question", ops, "application.answers.#.answer", private,
		"application.location_address", address,
	},
)...)

func (g *greenhouse) Recognize(body []byte) bool {
	return hasAll(body, "action", "payload") && !gjson.GetBytes(body, "webhookActionId").Exists()
}

// Greenhouse Harvest v3 (v1/v2 were retired on 31 August 2026), from
// https://harvestdocs.greenhouse.io (authentication, pagination, the READ
// migration guide) and clients that run against the live API:
//   - OAuth 2.0 client credentials: POST the token URL with HTTP Basic
//     client id and secret, form grant_type=client_credentials&sub=<user
//     id>; the answer's lifetime is expires_in (seconds) or expires_at
//     (RFC 3339). Renewed TokenEarly before it ends, dropped after a 401.
//   - GET /applications?updated_at[gte]=<RFC 3339>&per_page=N (N up to
//     500) on the first call, then the Link rel="next" URL, whose cursor
//     is its only parameter (v3 answers 422 to a cursor with anything
//     else).
//   - Records are flat: candidate_id, job_id, job_interview_stage_id (the
//     stage the web hooks' current_stage.id names), stage_name, status
//     in_process, rejected, hired or converted. There is no
//     /applications/{id}: a single record is GET /applications?ids=ID.
type harvest struct {
	cc  *clientcredentials.Config
	ctx context.Context
	now func() time.Time

	mu      sync.Mutex
	tok     *oauth2.Token
	expires time.Time
}

// TokenEarly is how long before its expiry a Harvest token is renewed.
var TokenEarly = time.Minute

func newHarvest(a *API, transport http.RoundTripper) *harvest {
	api := a.src.API
	tokenURL := api.TokenURL
	if tokenURL == "" {
		tokenURL = "https://auth.greenhouse.io/token"
	}
	cc := &clientcredentials.Config{ClientID: api.ClientID, ClientSecret: api.ClientSecret, TokenURL: tokenURL,
		EndpointParams: url.Values{"sub": {api.UserID}}, AuthStyle: oauth2.AuthStyleInHeader}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: transport,
		Timeout:       time.Duration(api.Timeout),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }})
	return &harvest{cc: cc, ctx: ctx, now: func() time.Time { return a.Now() }}
}

// token returns the bearer token, asking the token endpoint for a new one
// when there is none or it ends within TokenEarly.
func (h *harvest) token() (*oauth2.Token, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tok != nil && h.now().Before(h.expires.Add(-TokenEarly)) {
		return h.tok, nil
	}
	t, err := h.cc.Token(h.ctx)
	if err != nil {
		return nil, err
	}
	h.tok, h.expires = t, tokenExpiry(t, h.now())
	return t, nil
}

// tokenExpiry is when a token ends, by the answer's expires_in (seconds)
// or expires_at (RFC 3339), read against the client's clock; a token that
// states neither is kept for the hour Greenhouse's tokens last (a 401
// drops it sooner).
func tokenExpiry(t *oauth2.Token, now time.Time) time.Time {
	switch v := t.Extra("expires_in").(type) {
	case float64:
		if v > 0 {
			return now.Add(time.Duration(v * float64(time.Second)))
		}
	case string:
		if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 {
			return now.Add(time.Duration(n * float64(time.Second)))
		}
	}
	if v, ok := t.Extra("expires_at").(string); ok {
		if at, err := time.Parse(time.RFC3339, v); err == nil {
			return at
		}
	}
	return now.Add(time.Hour)
}

func (h *harvest) dropToken() {
	h.mu.Lock()
	h.tok = nil
	h.mu.Unlock()
}

// scopes returns the scopes the token endpoint granted, as it said them.
func (h *harvest) scopes() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tok == nil {
		return ""
	}
	s, _ := h.tok.Extra("scope").(string)
	return s
}

func (h *harvest) authorize(_ *API, req *http.Request) error {
	t, err := h.token()
	if err != nil {
		// The endpoint's answer is not repeated: only its status.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			return &APIError{Status: re.Response.StatusCode, Reason: "the token endpoint refused the client credentials"}
		}
		return &APIError{Reason: "no token from the token endpoint"}
	}
	t.SetAuthHeader(req)
	return nil
}

// refused names what Harvest's 403 means: the API user (the token's sub)
// lacks the endpoint's permission.
func (h *harvest) refused(endpoint string, _ []byte) string {
	scope := map[string]string{"/applications": "harvest:applications:list", "/candidates": "harvest:candidates:list",
		"/jobs": "harvest:jobs:list"}[endpoint]
	if scope == "" {
		scope = "the endpoint's harvest:…:list scope"
	}
	return fmt.Sprintf("the API user (api.user_id) may not read %s: give the API credential the %s scope, or make the user a Site Admin",
		endpoint, scope)
}

func (h *harvest) list(ctx context.Context, a *API, l Listing, page func([]AppRecord) error) (string, error) {
	next := a.endpoint("/applications", url.Values{
		"updated_at[gte]": {l.Since.UTC().Format(time.RFC3339)}, "per_page": {strconv.Itoa(l.PerPage)}})
	for next != "" {
		data, hdr, err := a.do(ctx, http.MethodGet, next, nil)
		if err != nil {
			return "", err
		}
		list := gjson.ParseBytes(data)
		if !list.IsArray() {
			return "", &APIError{Status: http.StatusOK, Reason: "the page is not a list of applications"}
		}
		var recs []AppRecord
		for _, r := range list.Array() {
			recs = append(recs, harvestApp(r))
		}
		next = ""
		if link := nextLink(hdr.Values("Link")); link != "" {
			u, err := url.Parse(link)
			if err != nil || !a.followable(u) {
				return "", &APIError{Status: http.StatusOK, Reason: "the next-page link points to another host"}
			}
			next = u.String()
		}
		if err := page(recs); err != nil {
			return "", err
		}
	}
	return "", nil
}

// harvestApp reads a v3 application record.
func harvestApp(r gjson.Result) AppRecord {
	str := func(paths ...string) string {
		for _, p := range paths {
			if v := r.Get(p); v.Exists() && v.Type != gjson.Null {
				return v.String()
			}
		}
		return ""
	}
	out := AppRecord{ID: str("id"), CandidateID: str("candidate_id"), JobID: str("job_id"),
		StageID: str("job_interview_stage_id", "stage_id"), StageName: str("stage_name"),
		CreatedAt: parseTime(r.Get("created_at")), Raw: []byte(r.Raw)}
	if out.UpdatedAt = parseTime(r.Get("updated_at")); out.UpdatedAt.IsZero() {
		out.UpdatedAt = parseTime(r.Get("last_activity_at"))
	}
	switch str("status") {
	case "hired":
		out.Outcome = veil.OutcomeHired
	case "rejected":
		out.Outcome = veil.OutcomeRejected
	case "converted":
		out.Outcome = veil.OutcomeClosed // a prospect made a candidate: this application ends
	default: // in_process
		out.Outcome = veil.OutcomeActive
	}
	return out
}

// nextLink returns the rel="next" URL of RFC 8288 Link header values.
func nextLink(values []string) string {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.EqualFold(strings.Trim(v, `"`), "next") {
					return strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">")
				}
			}
		}
	}
	return ""
}

// fetch returns {"application": …, "candidate": …, "job": …} from v3's
// list routes filtered by ids (v3 has no single-record routes), the shape
// Normalize reads.
func (h *harvest) fetch(ctx context.Context, a *API, ids map[string]string) ([]byte, error) {
	app, err := h.one(ctx, a, "/applications", ids["application"])
	if err != nil {
		return nil, err
	}
	candID := ids["candidate"]
	if candID == "" {
		candID = gjson.GetBytes(app, "candidate_id").String()
	}
	cand, err := h.one(ctx, a, "/candidates", candID)
	if err != nil {
		return nil, err
	}
	out := `{"application":` + string(app) + `,"candidate":` + string(cand)
	if job := gjson.GetBytes(app, "job_id").String(); job != "" {
		j, err := h.one(ctx, a, "/jobs", job)
		if err != nil {
			return nil, err
		}
		out += `,"job":` + string(j)
	}
	return []byte(out + `}`), nil
}

// one returns the record id of a v3 collection (GET /collection?ids=id):
// an empty list means Greenhouse no longer has it; a 404 is the route's,
// not the record's.
func (h *harvest) one(ctx context.Context, a *API, collection, id string) ([]byte, error) {
	if id == "" {
		return nil, veil.Errorf(veil.EGONE, "The ATS no longer has this record.")
	}
	data, _, err := a.do(ctx, http.MethodGet, a.endpoint(collection, url.Values{"ids": {id}}), nil)
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return nil, veil.Errorf(veil.EUPSTREAM, "The ATS API has no %s route: check api.base_url (Harvest v3 is %s).",
			collection, veil.DefaultAPIBase[veil.VendorGreenhouse])
	case err != nil:
		return nil, lookupError(err)
	}
	list := gjson.ParseBytes(data)
	if !list.IsArray() {
		return nil, veil.Errorf(veil.EUPSTREAM, "The ATS API answered something other than a list.")
	}
	first := list.Get("0")
	if !first.IsObject() {
		return nil, veil.Errorf(veil.EGONE, "The ATS no longer has this record.")
	}
	return []byte(first.Raw), nil
}

func (h *harvest) envelope(rec AppRecord) []byte {
	return []byte(`{"application":` + string(rec.Raw) + `}`)
}

func (h *harvest) upstream(rec AppRecord) map[string]string {
	return map[string]string{"application": rec.ID, "candidate": rec.CandidateID}
}
