package ats

// Greenhouse (Recruiting web hooks). Signature: `Signature: sha256 <hex>`,
// HMAC-SHA256 of the raw body with the web hook's secret key. Greenhouse
// signs neither a timestamp nor its Greenhouse-Event-ID header, so a
// byte-identical body is a duplicate whatever that header says.

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
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

func init() {
	register(&vendor{name: veil.VendorGreenhouse, newScheme: newGreenhouse,
		subjectKinds: []string{"candidate", "application"}})
}

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
// itself, a candidate under payload.candidate, a job under payload.job. A
// record fetched from Harvest in upstream lookup mode ({application,
// candidate} at the root) reads the same way.
func (g *greenhouse) Normalize(eventType string, doc *redact.Doc) *veil.NormalEvent {
	e := newEvent(g.source, veil.VendorGreenhouse, eventType, greenhouseTypes)
	p := doc.Root().Get("payload")
	if !p.Exists() {
		p = doc.Root() // a Harvest record
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
	e.Job = veil.NormalJob{ID: first(job.Get("id"), p.Get("job_id")), Title: job.Get("name").Ptr(),
		RequisitionID: job.Get("requisition_id").Ptr(), Departments: refs(job.Get("departments"), "id", "name"),
		Offices: refs(job.Get("offices"), "id", "name")}
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

// Category classifies Greenhouse payload paths. Custom fields are the
// customer's own: their values are private unless their key says
// otherwise (salary, date of birth, EEO-style self-identification).
func (g *greenhouse) Classifier() Classifier { return greenhouseCategories }

func (g *greenhouse) Category(pattern string) string { return greenhouseCategories.Category(pattern) }

var greenhouseCategories = categories(
	"action", ops,
	// people who work for the customer: names and addresses are personal data too
	"**.recruiter.name", name, "**.coordinator.name", name, "**.credited_to.name", name,
	"**.recruiter.email", email, "**.coordinator.email", email, "**.credited_to.email", email,
	"**.recruiter.employee_id", uid, "**.coordinator.employee_id", uid, "**.credited_to.employee_id", uid,
	"**.recruiter.**", ops, "**.coordinator.**", ops, "**.credited_to.**", ops,
	"**.interviewers.#.display_name", name, "**.interviewers.#.name", name, "**.interviewers.#.email", email,
	"**.interviewers.#.**", ops,
	"**.interview_kit.content", private, "**.interview_kit.url", private, "**.interview_kit.**", ops,
	"**.value.user_id", ops, "**.value.name", name, "**.value.email", email, "**.value.employee_id", uid,
	// custom fields: the label and type are the customer's schema; the value is the data
	"**.custom_fields.*.name", ops, "**.custom_fields.*.type", ops,
	"payload.application.jobs.#.custom_fields.**", ops, "payload.application.job.custom_fields.**", ops,
	"payload.job.custom_fields.**", ops,
	"**.custom_fields.*salary*.**", money, "**.custom_fields.*bonus*.**", money, "**.custom_fields.*equity*.**", money,
	"**.custom_fields.date_of_birth.**", dob, "**.custom_fields.*gender*.**", gender,
	"**.custom_fields.*ethnicity*.**", race, "**.custom_fields.*race*.**", race,
	"**.custom_fields.*disability*.**", health, "**.custom_fields.*veteran*.**", veteran,
	"**.custom_fields.**", private,
	// the candidate
	"**.candidate.id", uid, "**.candidate.external_id", uid, "**.candidate.url", uid, "**.candidate.photo_url", private,
	"**.candidate.first_name", "user.name.first", "**.candidate.last_name", "user.name.last",
	"**.candidate.title", jobTitle, "**.candidate.company", company,
	"**.candidate.phone_numbers.#.value", phone, "**.candidate.email_addresses.#.value", email,
	"**.candidate.addresses.#.value", address, "**.candidate.website_addresses.#.value", social,
	"**.candidate.social_media_addresses.#.value", social,
	"**.candidate.educations.**", private, "**.candidate.employments.#.title", jobTitle,
	"**.candidate.employments.#.company_name", company, "**.candidate.employments.**", private,
	"**.candidate.attachments.#.type", ops, "**.candidate.attachments.**", private,
	"**.candidate.tags.#", private, "**.candidate.*.#.type", ops,
	"**.candidate.is_private", ops, "**.candidate.can_email", ops, "**.candidate.created_at", ops,
	"**.candidate.updated_at", ops, "**.candidate.last_activity", ops,
	"payload.person.id", uid,
	// the application, its jobs and offer
	"payload.application.id", uid, "payload.application.url", uid,
	"payload.application.jobs.#.notes", private, "payload.application.job.notes", private, "payload.job.notes", private,
	"payload.application.rejection_details.**", private,
	"payload.application.**", ops,
	// offers, when the payload is the offer
	"payload.notes", private, "payload.offer.notes", private,
	"payload.id", ops, "payload.application_id", uid, "payload.job_id", ops, "payload.user_id", ops, "payload.version", ops,
	"payload.offer_status", ops, "payload.sent_on", ops, "payload.resolved_at", ops, "payload.start_date", ops,
	"payload.created_at", ops, "payload.updated_at", ops, "payload.offer.**", ops,
	"payload.job.**", ops,
	// records fetched from Harvest: {application, candidate}
	"application.id", uid, "application.candidate_id", uid, "application.**", ops,
)

func (g *greenhouse) Recognize(body []byte) bool {
	return hasAll(body, "action", "payload") && !gjson.GetBytes(body, "webhookActionId").Exists()
}

// Greenhouse Harvest v3 (v1/v2 were retired on 31 August 2026): OAuth 2.0
// client credentials (POST the token URL with HTTP Basic client id and
// secret, form grant_type=client_credentials&sub=<user id>; one-hour
// bearer tokens, renewed a minute before they expire), applications
// listed with updated_at=gte|<RFC 3339> and per_page on the first call,
// then the Link rel="next" URL, whose cursor is its only parameter.
type harvest struct {
	once sync.Once
	ts   oauth2.TokenSource
	make func() oauth2.TokenSource
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
	return &harvest{make: func() oauth2.TokenSource {
		return oauth2.ReuseTokenSourceWithExpiry(nil, tokenFetcher{cc, ctx}, TokenEarly)
	}}
}

// tokenFetcher asks the token endpoint every time: the reuse source
// around it decides when.
type tokenFetcher struct {
	cc  *clientcredentials.Config
	ctx context.Context
}

func (f tokenFetcher) Token() (*oauth2.Token, error) { return f.cc.Token(f.ctx) }

func (h *harvest) authorize(_ *API, req *http.Request) error {
	h.once.Do(func() { h.ts = h.make() })
	t, err := h.ts.Token()
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

func (h *harvest) list(ctx context.Context, a *API, l Listing, page func([]AppRecord) error) (string, error) {
	next := a.endpoint("/applications", url.Values{
		"updated_at": {"gte|" + l.Since.UTC().Format(time.RFC3339)}, "per_page": {strconv.Itoa(l.PerPage)}})
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
			if err != nil || !u.IsAbs() || !a.sameHost(u) {
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

// harvestApp reads a v3 application: ids are flat (candidate_id, job_id,
// current_stage_id) where v1 nested them; both are read.
func harvestApp(r gjson.Result) AppRecord {
	str := func(paths ...string) string {
		for _, p := range paths {
			if v := r.Get(p); v.Exists() && v.Type != gjson.Null {
				return v.String()
			}
		}
		return ""
	}
	out := AppRecord{ID: str("id"), CandidateID: str("candidate_id", "candidate.id"),
		JobID: str("job_id", "job.id", "jobs.0.id"), StageID: str("current_stage_id", "current_stage.id"),
		StageName: str("current_stage.name"), CreatedAt: parseTime(r.Get("created_at")),
		UpdatedAt: parseTime(r.Get("updated_at")), Raw: []byte(r.Raw)}
	if out.CreatedAt.IsZero() {
		out.CreatedAt = parseTime(r.Get("applied_at"))
	}
	switch strings.ToLower(str("status")) {
	case "hired":
		out.Outcome = veil.OutcomeHired
	case "rejected":
		out.Outcome = veil.OutcomeRejected
	default:
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

// fetch returns {"application": …, "candidate": …} from the v3
// single-resource routes, the shape Normalize reads.
func (h *harvest) fetch(ctx context.Context, a *API, ids map[string]string) ([]byte, error) {
	app, _, err := a.do(ctx, http.MethodGet, a.endpoint("/applications/"+url.PathEscape(ids["application"]), nil), nil)
	if err != nil {
		return nil, lookupError(err)
	}
	cand, _, err := a.do(ctx, http.MethodGet, a.endpoint("/candidates/"+url.PathEscape(ids["candidate"]), nil), nil)
	if err != nil {
		return nil, lookupError(err)
	}
	return []byte(`{"application":` + string(app) + `,"candidate":` + string(cand) + `}`), nil
}

func (h *harvest) envelope(rec AppRecord) []byte {
	return []byte(`{"application":` + string(rec.Raw) + `}`)
}

func (h *harvest) upstream(rec AppRecord) map[string]string {
	return map[string]string{"application": rec.ID, "candidate": rec.CandidateID}
}
