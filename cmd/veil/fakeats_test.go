package main

// Fake ATS APIs on loopback, serving the shapes of testdata/upstream
// (whose README names the reference each comes from): Greenhouse Harvest
// v3 (OAuth 2.0 client credentials at /token, bearer tokens that expire,
// GET /v3/applications?updated_at[gte]=T&per_page=N with the next page in
// Link rel="next" whose cursor is the only parameter, flat records with
// job_interview_stage_id, stage_name and status in_process|hired|
// rejected|converted, single records only by ?ids=), Lever (HTTP Basic,
// GET /v1/opportunities with updated_at_start in ms, limit and offset,
// hasNext and next; GET /v1/opportunities/deleted with deleted_at_start),
// Ashby (HTTP Basic, POST /application.list with syncToken and cursor,
// moreDataAvailable, nextCursor, a new syncToken on the last page, and
// sync_token_expired). All three answer 429 with Retry-After on demand.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeApp is one application in a fake ATS.
type fakeApp struct {
	ID, Candidate, Job, Stage, Status string
	Created, Updated                  time.Time
}

// fakeATSAPI is a fake ATS with its applications and its faults.
type fakeATSAPI struct {
	*httptest.Server
	vendor string

	mu           sync.Mutex
	apps         []*fakeApp
	requests     map[string]int // page key -> times served
	failed       map[string]int // page key -> times refused (401, 429)
	tokens       map[string]time.Time
	tokenLife    time.Duration
	tokensIssued int
	every429     int // answer 429 to every Nth list request (0: never)
	listed       int
	syncTokens   map[string]time.Time // Ashby sync token -> issued
	expireSync   bool                 // Ashby: every sync token has expired
	fault        string               // "html", "truncated", "foreign_link", "huge": the next list page
	mode         string               // "outage", "stall": single-resource routes
	deleted      []fakeDeleted        // Lever: deleted opportunities
	listedGH     int                  // Greenhouse list pages served (X-RateLimit-Remaining counts down)
}

// fakeDeleted is an opportunity Lever deleted.
type fakeDeleted struct {
	ID string
	At time.Time
}

const (
	fakeClientID     = "veil-test-client"
	fakeClientSecret = "veil-test-client-secret"
	fakeUserID       = "4242"
	fakeAPIKey       = "ats-api-key"
)

func newFakeATSAPI(t *testing.T, vendor string) *fakeATSAPI {
	f := &fakeATSAPI{vendor: vendor, requests: map[string]int{}, failed: map[string]int{}, tokens: map[string]time.Time{},
		tokenLife: time.Hour, syncTokens: map[string]time.Time{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeATSAPI) add(apps ...*fakeApp) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = append(f.apps, apps...)
}

// change moves an application to stage (and status), as of now.
func (f *fakeATSAPI) change(id, stage, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.apps {
		if a.ID == id {
			a.Stage, a.Status, a.Updated = stage, status, time.Now().UTC()
		}
	}
}

func (f *fakeATSAPI) set(fn func(f *fakeATSAPI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeATSAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.vendor == "greenhouse" && r.URL.Path == "/token":
		f.token(w, r)
		return
	case f.mode == "outage":
		w.WriteHeader(500)
		io.WriteString(w, `{"trace":"upstream-secret-stacktrace"}`)
		return
	case f.mode == "forbidden" && f.vendor == "greenhouse" && r.URL.Path != "/token":
		w.WriteHeader(403)
		io.WriteString(w, `{"message":"Forbidden"}`)
		return
	case f.mode == "stall":
		f.mu.Unlock()
		time.Sleep(700 * time.Millisecond)
		f.mu.Lock()
	}
	if !f.authorized(w, r) {
		return
	}
	list := (f.vendor == "greenhouse" && r.URL.Path == "/v3/applications" && !r.URL.Query().Has("ids")) ||
		(f.vendor == "lever" && (r.URL.Path == "/v1/opportunities" || r.URL.Path == "/v1/opportunities/deleted")) ||
		(f.vendor == "ashby" && r.URL.Path == "/application.list")
	if !list {
		f.record(w, r)
		return
	}
	f.listed++
	if f.every429 > 0 && f.listed%f.every429 == 0 {
		f.failed["429"]++
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if fault := f.fault; fault != "" {
		f.fault = ""
		switch fault {
		case "html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>Service temporarily unavailable</body></html>")
		case "truncated":
			io.WriteString(w, `[{"id": 1, "candidate_id": 2, "status": "act`)
		case "huge":
			w.Write([]byte("[" + strings.Repeat(`{"id":1},`, 11<<20/9) + `{"id":1}]`))
		case "foreign_link":
			w.Header().Set("Link", `<https://evil.example/v3/applications?cursor=abc>; rel="next"`)
			io.WriteString(w, `[]`)
		}
		return
	}
	switch f.vendor {
	case "greenhouse":
		f.listGreenhouse(w, r)
	case "lever":
		if r.URL.Path == "/v1/opportunities/deleted" {
			f.listLeverDeleted(w, r)
			return
		}
		f.listLever(w, r)
	case "ashby":
		f.listAshby(w, r)
	}
}

// token issues Harvest v3 bearer tokens for the client credentials.
func (f *fakeATSAPI) token(w http.ResponseWriter, r *http.Request) {
	id, secret, _ := r.BasicAuth()
	r.ParseForm()
	if r.Method != http.MethodPost || id != fakeClientID || secret != fakeClientSecret ||
		r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("sub") != fakeUserID {
		w.WriteHeader(401)
		io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	f.tokensIssued++
	tok := fmt.Sprintf("tok-%d", f.tokensIssued)
	f.tokens[tok] = time.Now().Add(f.tokenLife)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": int(f.tokenLife.Seconds())})
}

func (f *fakeATSAPI) authorized(w http.ResponseWriter, r *http.Request) bool {
	if f.vendor == "greenhouse" {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if exp, known := f.tokens[tok]; !ok || !known || time.Now().After(exp) {
			f.failed["401 "+r.URL.String()]++
			w.WriteHeader(401)
			io.WriteString(w, `{"message":"token expired"}`)
			return false
		}
		return true
	}
	if user, _, _ := r.BasicAuth(); user != fakeAPIKey {
		w.WriteHeader(401)
		return false
	}
	return true
}

// record serves single resources from testdata/upstream: Harvest v3's
// by ?ids= (a list of the one record, or an empty list), Lever's by path.
func (f *fakeATSAPI) record(w http.ResponseWriter, r *http.Request) {
	path := filepath.Clean(r.URL.Path)
	if f.vendor == "greenhouse" {
		ids := r.URL.Query().Get("ids")
		if ids == "" || strings.ContainsAny(ids, "/.") {
			w.WriteHeader(404)
			io.WriteString(w, `{"message":"Resource not found"}`)
			return
		}
		b, err := os.ReadFile(filepath.Join("../../testdata/upstream/greenhouse", path, ids+".json"))
		if err != nil {
			io.WriteString(w, "[]")
			return
		}
		w.Write(append(append([]byte("["), b...), ']'))
		return
	}
	b, err := os.ReadFile(filepath.Join("../../testdata/upstream", f.vendor, path+".json"))
	if err != nil {
		w.WriteHeader(404)
		return
	}
	w.Write(b)
}

// changed returns the applications updated at or after since, oldest first.
func (f *fakeATSAPI) changed(since time.Time) []*fakeApp {
	var out []*fakeApp
	for _, a := range f.apps {
		if !a.Updated.Before(since) {
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Updated.Before(out[j].Updated) })
	return out
}

// page serves apps[from:from+n] and counts how often each page was served.
func (f *fakeATSAPI) page(key string, apps []*fakeApp, from, n int) []*fakeApp {
	f.requests[key]++
	return apps[min(from, len(apps)):min(from+n, len(apps))]
}

func (f *fakeATSAPI) listGreenhouse(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	var from, per int
	if c := q.Get("cursor"); c != "" {
		if len(q) != 1 {
			w.WriteHeader(422)
			io.WriteString(w, `{"message":"cursor must be the only parameter"}`)
			return
		}
		parts := strings.Split(c, ".")
		ns, _ := strconv.ParseInt(parts[0], 10, 64)
		since = time.Unix(0, ns)
		from, _ = strconv.Atoi(parts[1])
		per, _ = strconv.Atoi(parts[2])
	} else {
		t, err := time.Parse(time.RFC3339, q.Get("updated_at[gte]"))
		if err != nil {
			w.WriteHeader(422)
			io.WriteString(w, `{"errors":[{"message":"Invalid query params: updated_at"}]}`)
			return
		}
		since = t
		if per, _ = strconv.Atoi(q.Get("per_page")); per < 1 || per > 500 {
			w.WriteHeader(422)
			io.WriteString(w, `{"errors":[{"message":"per_page must be between 1 and 500"}]}`)
			return
		}
	}
	all := f.changed(since)
	apps := f.page(fmt.Sprint("gh ", since.UnixNano(), " ", from), all, from, per)
	f.listedGH++
	w.Header().Set("X-RateLimit-Limit", "50")
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(max(0, 49-f.listedGH)))
	if from+per < len(all) {
		w.Header().Set("Link", fmt.Sprintf(`<%s/v3/applications?cursor=%d.%d.%d>; rel="next"`, f.URL, since.UnixNano(), from+per, per))
	}
	out := make([]map[string]any, 0, len(apps))
	for _, a := range apps {
		status := a.Status
		if status == "active" {
			status = "in_process" // v3's word for it
		}
		out = append(out, map[string]any{"id": num(a.ID), "candidate_id": num(a.Candidate), "job_id": num(a.Job),
			"job_interview_stage_id": num(a.Stage), "stage_name": "Stage " + a.Stage, "status": status,
			"created_at": a.Created.Format(time.RFC3339), "updated_at": a.Updated.Format(time.RFC3339Nano),
			"last_activity_at": a.Updated.Format(time.RFC3339), "prospect": false, "source_id": 25, "rejected_at": nil,
			// what the candidate wrote rides along, as in the real API: it must never reach a log
			"answers": []map[string]any{{"question": "Why do you want to work for us?", "answer": "Canary-Answer-" + a.ID}}})
	}
	json.NewEncoder(w).Encode(out)
}

func (f *fakeATSAPI) listLever(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ms, _ := strconv.ParseInt(q.Get("updated_at_start"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit < 1 || limit > 100 {
		w.WriteHeader(400)
		return
	}
	from, _ := strconv.Atoi(q.Get("offset"))
	all := f.changed(time.UnixMilli(ms))
	apps := f.page(fmt.Sprint("lv ", ms, " ", from), all, from, limit)
	data := []map[string]any{}
	for _, a := range apps {
		var archived any
		if a.Status == "archived" {
			archived = map[string]any{"reason": "63dd55b2-a99f-4e7b-985f-22c7bf80ab42", "archivedAt": a.Updated.UnixMilli()}
		}
		data = append(data, map[string]any{"id": a.ID, "contact": a.Candidate, "stage": a.Stage, "archived": archived,
			"createdAt": a.Created.UnixMilli(), "updatedAt": a.Updated.UnixMilli(), "name": "Canary-Name-" + a.ID,
			"emails": []string{"canary-" + a.ID + "@example.com"}})
	}
	out := map[string]any{"data": data, "hasNext": from+limit < len(all)}
	if from+limit < len(all) {
		out["next"] = strconv.Itoa(from + limit)
	}
	json.NewEncoder(w).Encode(out)
}

// listLeverDeleted serves the deleted opportunities since deleted_at_start.
func (f *fakeATSAPI) listLeverDeleted(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ms, err := strconv.ParseInt(q.Get("deleted_at_start"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > 100 {
		w.WriteHeader(400)
		return
	}
	from, _ := strconv.Atoi(q.Get("offset"))
	var all []fakeDeleted
	for _, d := range f.deleted {
		if d.At.UnixMilli() >= ms {
			all = append(all, d)
		}
	}
	f.requests[fmt.Sprint("lv deleted ", ms, " ", from)]++
	data := []map[string]any{}
	for _, d := range all[min(from, len(all)):min(from+limit, len(all))] {
		data = append(data, map[string]any{"id": d.ID, "deletedAt": d.At.UnixMilli()})
	}
	out := map[string]any{"data": data, "hasNext": from+limit < len(all)}
	if from+limit < len(all) {
		out["next"] = strconv.Itoa(from + limit)
	}
	json.NewEncoder(w).Encode(out)
}

func (f *fakeATSAPI) listAshby(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Limit     int    `json:"limit"`
		SyncToken string `json:"syncToken"`
		Cursor    string `json:"cursor"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	var since time.Time
	if req.SyncToken != "" {
		issued, ok := f.syncTokens[req.SyncToken]
		if !ok || f.expireSync {
			json.NewEncoder(w).Encode(map[string]any{"success": false, "errors": []string{"sync_token_expired"}})
			return
		}
		since = issued
	}
	from, _ := strconv.Atoi(req.Cursor)
	all := f.changed(since)
	apps := f.page(fmt.Sprint("ab ", since.UnixNano(), " ", from), all, from, req.Limit)
	results := []map[string]any{}
	for _, a := range apps {
		results = append(results, map[string]any{"id": a.ID, "status": a.Status, "candidate": map[string]any{"id": a.Candidate, "name": "Canary-Name-" + a.ID},
			"job": map[string]any{"id": a.Job}, "currentInterviewStage": map[string]any{"id": a.Stage, "title": "Stage " + a.Stage},
			"createdAt": a.Created.Format(time.RFC3339Nano), "updatedAt": a.Updated.Format(time.RFC3339Nano)})
	}
	out := map[string]any{"success": true, "results": results, "moreDataAvailable": from+req.Limit < len(all)}
	if from+req.Limit < len(all) {
		out["nextCursor"] = strconv.Itoa(from + req.Limit)
	} else {
		tok := fmt.Sprintf("sync-%d", len(f.syncTokens)+1)
		f.syncTokens[tok] = time.Now()
		out["syncToken"] = tok
	}
	json.NewEncoder(w).Encode(out)
}

// num writes numeric ids as numbers, as Harvest does.
func num(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	return s
}
