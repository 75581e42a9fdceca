package ats_test

// Contract tests: each vendor's real API client against a fake that
// serves only the shapes of testdata/upstream (whose README names the
// reference each comes from), on the vendors' own hostnames and default
// URLs. Every dial goes to the fake on loopback, whatever host the client
// asked for: nothing leaves the machine, even when a test fails.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/redact"
)

// fixture reads a file of testdata/upstream.
func fixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../testdata/upstream", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fill replaces a fixture's placeholders.
func fill(b []byte, kv ...string) []byte {
	return []byte(strings.NewReplacer(kv...).Replace(string(b)))
}

// testClock is the injected clock the client and the fake share.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// vendorFake is a TLS server on loopback answering for a vendor's hosts;
// its transport dials it whatever the address, and records the hosts
// asked for.
type vendorFake struct {
	*httptest.Server
	clock *testClock

	mu      sync.Mutex
	asked   []string                    // host:port the client dialled
	hosts   []string                    // Host header of each API request
	queries []string                    // RawQuery of each API request
	accept  []string                    // Accept header of each API request
	faults  []func(http.ResponseWriter) // one-shot answers to the next API requests
}

func newVendorFake(t *testing.T, handle func(f *vendorFake, w http.ResponseWriter, r *http.Request)) *vendorFake {
	f := &vendorFake{clock: &testClock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		handle(f, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// fault queues one-shot answers for the next API requests.
func (f *vendorFake) fault(fs ...func(http.ResponseWriter)) {
	f.mu.Lock()
	f.faults = append(f.faults, fs...)
	f.mu.Unlock()
}

// api notes an API request and answers it with a queued fault, if any
// (true: answered).
func (f *vendorFake) api(w http.ResponseWriter, r *http.Request) bool {
	f.hosts = append(f.hosts, r.Host)
	f.queries = append(f.queries, r.URL.RawQuery)
	f.accept = append(f.accept, r.Header.Get("Accept"))
	if len(f.faults) > 0 {
		fn := f.faults[0]
		f.faults = f.faults[1:]
		fn(w)
		return true
	}
	return false
}

func (f *vendorFake) transport() *http.Transport {
	pool := x509.NewCertPool()
	pool.AddCert(f.Certificate())
	return &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			f.mu.Lock()
			f.asked = append(f.asked, addr)
			f.mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, "tcp", f.Listener.Addr().String())
		},
		// The test certificate is example.com's: verified as such.
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
	}
}

// client returns src's real API client on the fake's clock, its sleeps
// recorded instead of slept.
func (f *vendorFake) client(t *testing.T, src *veil.Source, slept *[]time.Duration) *ats.API {
	t.Helper()
	if src.API.BaseURL == "" {
		src.API.BaseURL = veil.DefaultAPIBase[src.Vendor]
	}
	if src.API.Timeout == 0 {
		src.API.Timeout = veil.Duration(5 * time.Second)
	}
	api, err := ats.NewAPI(src, f.transport())
	if err != nil {
		t.Fatal(err)
	}
	api.Now = f.clock.now
	api.Sleep = func(_ context.Context, d time.Duration) error {
		if slept != nil {
			*slept = append(*slept, d)
		}
		return nil
	}
	return api
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

func body(code int, contentType, text string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(code)
		io.WriteString(w, text)
	}
}

// --- Greenhouse Harvest v3 ---

// harvestV3 is Harvest v3 as testdata/upstream/README.md describes it:
// tokens at auth.greenhouse.io (valid until their lifetime ends on the
// shared clock, or until revoked), applications listed from
// application-listed.json by updated_at[gte] and per_page (at most 500),
// the next page's cursor alone in Link rel="next" (on nextHost when set),
// single records by ?ids=.
type harvestV3 struct {
	*vendorFake
	total     int
	statuses  map[int]string
	tokenLife time.Duration
	expiresAt bool // answer expires_at instead of expires_in
	tokens    map[string]time.Time
	issued    int
	unauth    int
	nextHost  string
	perPage   []string // the per_page each first page was asked with
}

func newHarvestV3(t *testing.T, total int) *harvestV3 {
	h := &harvestV3{total: total, statuses: map[int]string{}, tokenLife: time.Hour, tokens: map[string]time.Time{}}
	listed := fixture(t, "greenhouse/v3/application-listed.json")
	records := map[string][]byte{}
	for _, c := range []string{"applications/88190254", "candidates/61548830", "jobs/4409912"} {
		records["/v3/"+c] = fixture(t, "greenhouse/v3/"+c+".json")
	}
	token, tokenAt := fixture(t, "greenhouse/v3/token.json"), fixture(t, "greenhouse/v3/token-expires-at.json")
	h.vendorFake = newVendorFake(t, func(f *vendorFake, w http.ResponseWriter, r *http.Request) {
		if r.Host == "auth.greenhouse.io" && r.URL.Path == "/token" {
			id, secret, _ := r.BasicAuth()
			r.ParseForm()
			if r.Method != http.MethodPost || id != "cid" || secret != "csecret" ||
				r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("sub") != "77" {
				status(401)(w)
				return
			}
			h.issued++
			tok := fmt.Sprint("tok-", h.issued)
			exp := f.clock.now().Add(h.tokenLife)
			h.tokens[tok] = exp
			w.Header().Set("Content-Type", "application/json")
			if h.expiresAt {
				w.Write(fill(tokenAt, "ACCESS_TOKEN", tok, "EXPIRES_AT", exp.Format(time.RFC3339)))
			} else {
				b, _ := sjson.SetBytes(fill(token, "ACCESS_TOKEN", tok), "expires_in", int(h.tokenLife/time.Second))
				w.Write(b)
			}
			return
		}
		if r.Host != "harvest.greenhouse.io" && r.Host != "api.greenhouse.io" {
			status(404)(w)
			return
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if exp, ok := h.tokens[tok]; !ok || !f.clock.now().Before(exp) {
			h.unauth++
			body(401, "application/json", `{"message":"Unauthorized"}`)(w)
			return
		}
		if f.api(w, r) {
			return
		}
		q := r.URL.Query()
		if ids := q.Get("ids"); ids != "" {
			rec, ok := records[r.URL.Path+"/"+ids]
			if !slices.Contains([]string{"/v3/applications", "/v3/candidates", "/v3/jobs"}, r.URL.Path) {
				body(404, "application/json", `{"message":"Resource not found"}`)(w)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			if !ok {
				io.WriteString(w, "[]")
				return
			}
			w.Write(append(append([]byte("["), rec...), ']'))
			return
		}
		if r.URL.Path != "/v3/applications" {
			body(404, "application/json", `{"message":"Resource not found"}`)(w)
			return
		}
		var from, per int
		if c := q.Get("cursor"); c != "" {
			if len(q) != 1 {
				body(422, "application/json", `{"errors":[{"message":"Invalid query params: cursor must be alone"}]}`)(w)
				return
			}
			fmt.Sscanf(c, "%d.%d", &from, &per)
		} else {
			if _, err := time.Parse(time.RFC3339, q.Get("updated_at[gte]")); err != nil || q.Has("updated_at") {
				body(422, "application/json", `{"errors":[{"message":"Invalid query params: updated_at"}]}`)(w)
				return
			}
			h.perPage = append(h.perPage, q.Get("per_page"))
			if per, _ = strconv.Atoi(q.Get("per_page")); per < 1 || per > 500 {
				body(422, "application/json", `{"errors":[{"message":"per_page must be between 1 and 500"}]}`)(w)
				return
			}
		}
		var out [][]byte
		for i := from; i < min(from+per, h.total); i++ {
			id := 1000 + i
			st := h.statuses[i]
			if st == "" {
				st = "in_process"
			}
			rec := fill(listed, "APP_ID", fmt.Sprint(id), "STAGE_NAME", fmt.Sprint("Stage ", i),
				"CREATED_AT", "2026-10-01T00:00:00Z", "UPDATED_AT", "2026-12-01T00:00:00Z")
			for _, kv := range [][2]any{{"id", id}, {"candidate_id", 2000 + i}, {"job_id", 4409912},
				{"job_interview_stage_id", 3000 + i}, {"status", st}} {
				rec, _ = sjson.SetBytes(rec, kv[0].(string), kv[1])
			}
			out = append(out, rec)
		}
		if from+per < h.total {
			host := r.Host
			if h.nextHost != "" {
				host = h.nextHost
			}
			w.Header().Set("Link", fmt.Sprintf(`<https://%s/v3/applications?cursor=%d.%d>; rel="next"`, host, from+per, per))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(append([]byte("["), bytes.Join(out, []byte(","))...), ']'))
	})
	return h
}

func harvestV3Source() *veil.Source {
	// No base or token URL: the documented defaults, routed to the fake.
	return &veil.Source{Name: "greenhouse", Vendor: veil.VendorGreenhouse,
		API: &veil.APIConfig{ClientID: "cid", ClientSecret: "csecret", UserID: "77", Rate: 1000}}
}

func listAll(t *testing.T, api *ats.API, per int) ([]ats.AppRecord, error) {
	t.Helper()
	var recs []ats.AppRecord
	_, err := api.List(context.Background(), ats.Listing{Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), PerPage: per},
		func(p []ats.AppRecord) error {
			recs = append(recs, p...)
			return nil
		})
	return recs, err
}

// TestHarvestContract_List: v3 records read by their flat names (stage
// from job_interview_stage_id and stage_name, outcome from in_process,
// hired, rejected, converted), pages followed by cursor alone, a next link
// on another Greenhouse host followed, per_page clamped to 500, and every
// dial on loopback.
func TestHarvestContract_List(t *testing.T) {
	h := newHarvestV3(t, 7)
	h.statuses = map[int]string{1: "hired", 2: "rejected", 3: "converted"}
	h.nextHost = "api.greenhouse.io" // the other host Greenhouse's examples use
	recs, err := listAll(t, h.client(t, harvestV3Source(), nil), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 {
		t.Fatalf("listed %d, want 7", len(recs))
	}
	r := recs[0]
	if r.ID != "1000" || r.CandidateID != "2000" || r.JobID != "4409912" || r.StageID != "3000" || r.StageName != "Stage 0" ||
		r.Outcome != veil.OutcomeActive || r.UpdatedAt.IsZero() || r.CreatedAt.IsZero() {
		t.Errorf("first record: %+v", r)
	}
	for i, want := range []string{veil.OutcomeActive, veil.OutcomeHired, veil.OutcomeRejected, veil.OutcomeClosed} {
		if recs[i].Outcome != want {
			t.Errorf("record %d: outcome %q, want %q", i, recs[i].Outcome, want)
		}
	}
	if !slices.Contains(h.hosts, "api.greenhouse.io") || h.hosts[0] != "harvest.greenhouse.io" {
		t.Errorf("hosts asked: %v; want the default harvest.greenhouse.io, then the next link's api.greenhouse.io", h.hosts)
	}
	for _, a := range h.asked {
		if a != "harvest.greenhouse.io:443" && a != "api.greenhouse.io:443" && a != "auth.greenhouse.io:443" {
			t.Errorf("dialled %s", a)
		}
	}

	// per_page over the documented 500 is clamped, not refused.
	h2 := newHarvestV3(t, 2)
	if _, err := listAll(t, h2.client(t, harvestV3Source(), nil), 5000); err != nil || !slices.Equal(h2.perPage, []string{"500"}) {
		t.Fatalf("per_page 5000: %v, asked %v; want one page asked with 500", err, h2.perPage)
	}
}

// TestHarvestContract_TokenExpiry: on an injected clock, a token is
// renewed before it ends, whether the answer says expires_in or (as live
// v3 clients read) expires_at: no request meets a 401 for it.
func TestHarvestContract_TokenExpiry(t *testing.T) {
	for _, expiresAt := range []bool{false, true} {
		t.Run(fmt.Sprint("expires_at=", expiresAt), func(t *testing.T) {
			h := newHarvestV3(t, 2)
			h.expiresAt = expiresAt
			api := h.client(t, harvestV3Source(), nil)
			if _, err := listAll(t, api, 10); err != nil {
				t.Fatal(err)
			}
			h.clock.advance(30 * time.Minute)
			if _, err := listAll(t, api, 10); err != nil || h.issued != 1 {
				t.Fatalf("half an hour in: %v, %d tokens issued; want the first reused", err, h.issued)
			}
			h.clock.advance(29*time.Minute + 30*time.Second) // 30 s before it ends: inside TokenEarly
			if _, err := listAll(t, api, 10); err != nil {
				t.Fatal(err)
			}
			h.clock.advance(3 * time.Hour)
			if _, err := listAll(t, api, 10); err != nil {
				t.Fatal(err)
			}
			if h.issued != 3 || h.unauth != 0 {
				t.Fatalf("%d tokens issued, %d requests refused; want 3 and 0", h.issued, h.unauth)
			}
		})
	}
}

// TestHarvestContract_401: a token revoked early meets a 401: it is
// dropped and one new token tried, and the pass goes on; credentials
// refused twice are an error after exactly one renewal.
func TestHarvestContract_401(t *testing.T) {
	h := newHarvestV3(t, 2)
	api := h.client(t, harvestV3Source(), nil)
	if _, err := listAll(t, api, 10); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	clear(h.tokens) // revoked
	h.mu.Unlock()
	if recs, err := listAll(t, api, 10); err != nil || len(recs) != 2 || h.issued != 2 || h.unauth != 1 {
		t.Fatalf("after a revocation: %v, %d listed, %d issued, %d refused; want the pass, 2 tokens, 1 refusal", err, len(recs), h.issued, h.unauth)
	}
	h.mu.Lock()
	h.tokenLife = 0 // every token is dead on arrival
	clear(h.tokens)
	h.mu.Unlock()
	_, err := listAll(t, api, 10)
	var ae *ats.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || h.unauth != 3 || h.issued != 3 {
		t.Fatalf("refused twice: %v, %d refused, %d issued; want a 401 error after one renewal", err, h.unauth, h.issued)
	}
}

// TestHarvestContract_403: a 403 says which scope the API user lacks.
func TestHarvestContract_403(t *testing.T) {
	h := newHarvestV3(t, 2)
	h.fault(body(403, "application/json", `{"message":"Forbidden"}`))
	_, err := listAll(t, h.client(t, harvestV3Source(), nil), 10)
	if err == nil || !strings.Contains(err.Error(), "harvest:applications:list") || !strings.Contains(err.Error(), "Site Admin") {
		t.Fatalf("403: %v; want the scope and Site Admin named", err)
	}
}

// TestContract_RateLimits: 429 waits Retry-After, else X-RateLimit-Reset;
// an answer saying the window is spent (X-RateLimit-Remaining: 0) makes
// the next request wait for its reset; the client never guesses shorter.
func TestContract_RateLimits(t *testing.T) {
	h := newHarvestV3(t, 6)
	reset := strconv.FormatInt(h.clock.now().Add(7*time.Second).Unix(), 10)
	h.fault(status(429, "Retry-After", "2"),
		status(429, "X-RateLimit-Limit", "50", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", reset))
	var slept []time.Duration
	api := h.client(t, harvestV3Source(), &slept)
	if recs, err := listAll(t, api, 3); err != nil || len(recs) != 6 {
		t.Fatalf("%v, %d listed", err, len(recs))
	}
	if !slices.Equal(slept, []time.Duration{2 * time.Second, 7 * time.Second}) {
		t.Fatalf("slept %v, want Retry-After's 2s, then X-RateLimit-Reset's 7s", slept)
	}

	// A 200 that spends the window: the next page waits for the reset.
	h2 := newHarvestV3(t, 6)
	reset = strconv.FormatInt(h2.clock.now().Add(12*time.Second).Unix(), 10)
	first := true
	h2.handleOnce(func(w http.ResponseWriter) {
		if first {
			w.Header().Set("X-RateLimit-Limit", "50")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", reset)
			first = false
		}
	})
	slept = nil
	api = h2.client(t, harvestV3Source(), &slept)
	if recs, err := listAll(t, api, 3); err != nil || len(recs) != 6 {
		t.Fatalf("%v, %d listed", err, len(recs))
	}
	if !slices.Equal(slept, []time.Duration{12 * time.Second}) || api.LastLimits().Limit != "50" {
		t.Fatalf("slept %v (limits %+v), want one wait of 12s before the second page", slept, api.LastLimits())
	}
}

// handleOnce sets headers on the next API answer and lets it through.
func (h *harvestV3) handleOnce(set func(http.ResponseWriter)) {
	inner := h.Config.Handler
	h.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v3/applications" {
			set(w)
		}
		inner.ServeHTTP(w, r)
	})
}

// TestContract_BadAnswers: a 503 is retried; a 500 with an HTML page, an
// HTML page answered 200, a truncated page and a next link to a host that
// is not Greenhouse's each end the pass with an error that repeats
// nothing of the answer.
func TestContract_BadAnswers(t *testing.T) {
	h := newHarvestV3(t, 2)
	h.fault(status(503))
	if recs, err := listAll(t, h.client(t, harvestV3Source(), nil), 10); err != nil || len(recs) != 2 {
		t.Fatalf("503 then 200: %v, %d listed", err, len(recs))
	}
	for name, fault := range map[string]func(http.ResponseWriter){
		"html 500":  body(500, "text/html", "<html><body>Canary-Upstream-Trace</body></html>"),
		"html 200":  body(200, "text/html", "<html><body>Canary-Maintenance</body></html>"),
		"truncated": body(200, "application/json", `[{"id": 1, "candidate_id": 2, "stage_name": "Canary-Trunc`),
	} {
		h.fault(fault)
		_, err := listAll(t, h.client(t, harvestV3Source(), nil), 10)
		if err == nil || strings.Contains(err.Error(), "Canary") || strings.Contains(err.Error(), "<html") {
			t.Errorf("%s: %v", name, err)
		}
	}
	h3 := newHarvestV3(t, 4)
	h3.nextHost = "harvest.greenhouse.io.evil.example"
	if _, err := listAll(t, h3.client(t, harvestV3Source(), nil), 2); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("foreign next link: %v", err)
	}
	if slices.Contains(h3.hosts, "harvest.greenhouse.io.evil.example") {
		t.Fatal("the foreign link was followed")
	}
}

// TestHarvestContract_Fetch: an upstream lookup reads the records by ids=
// and normalises to what the web hook's normal form says of the same
// application, candidate and job; an id Greenhouse no longer has is gone,
// a missing route is the base URL's fault.
func TestHarvestContract_Fetch(t *testing.T) {
	h := newHarvestV3(t, 0)
	api := h.client(t, harvestV3Source(), nil)
	b, err := api.Fetch(context.Background(), map[string]string{"application": "88190254", "candidate": "61548830"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.queries, "ids=88190254") || !slices.Contains(h.queries, "ids=61548830") || !slices.Contains(h.queries, "ids=4409912") {
		t.Fatalf("queries %v: want ids= for the application, the candidate and the job", h.queries)
	}
	src := &veil.Source{Name: "greenhouse", Vendor: veil.VendorGreenhouse, Secret: "x"}
	sch, err := ats.New(src)
	if err != nil {
		t.Fatal(err)
	}
	upstream := normal(t, sch, "hire_candidate", b)
	hook := normal(t, sch, "hire_candidate", mustReadFile(t, "../testdata/samples/greenhouse/hire_candidate.json"))
	same := func(what string, a, b *string) {
		if a == nil || b == nil || *a != *b {
			t.Errorf("%s: upstream %v, web hook %v", what, deref(a), deref(b))
		}
	}
	same("application.id", upstream.Application.ID, hook.Application.ID)
	same("candidate.id", upstream.Candidate.ID, hook.Candidate.ID)
	same("candidate.last_name", upstream.Candidate.LastName, hook.Candidate.LastName)
	same("job.id", upstream.Job.ID, hook.Job.ID)
	same("job.title", upstream.Job.Title, hook.Job.Title)
	same("source.id", upstream.Application.Source.ID, hook.Application.Source.ID)
	same("department.id", upstream.Job.Departments[0].ID, hook.Job.Departments[0].ID)
	same("office.id", upstream.Job.Offices[0].ID, hook.Job.Offices[0].ID)
	if upstream.Type != veil.TypeApplicationHired || deref(upstream.Application.Status) != "hired" ||
		deref(upstream.Application.Stage.Name) != "Offer" || deref(upstream.Application.Stage.ID) != "5123408" ||
		deref(upstream.Candidate.FirstName) != "Mateus-Upstream" || len(upstream.Candidate.Emails) != 1 {
		t.Errorf("upstream normal form: %+v", upstream)
	}

	// Lookups share the client: concurrent fetches (run under -race in CI).
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := api.Fetch(context.Background(), map[string]string{"application": "88190254", "candidate": "61548830"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent fetch: %v", err)
		}
	}

	_, err = api.Fetch(context.Background(), map[string]string{"application": "99999999", "candidate": "1"})
	if veil.ErrorCode(err) != veil.EGONE {
		t.Errorf("unknown application: %v, want gone", err)
	}
	bad := harvestV3Source()
	bad.API.BaseURL = "https://harvest.greenhouse.io/v1"
	_, err = h.client(t, bad, nil).Fetch(context.Background(), map[string]string{"application": "88190254"})
	if veil.ErrorCode(err) != veil.EUPSTREAM || !strings.Contains(err.Error(), "api.base_url") {
		t.Errorf("v1 base URL: %v, want an upstream error naming api.base_url", err)
	}
}

func normal(t *testing.T, sch ats.Scheme, eventType string, b []byte) *veil.NormalEvent {
	t.Helper()
	doc, err := redact.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Release()
	return sch.Normalize(eventType, doc)
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// --- Lever ---

// leverV1 lists opportunity-listed.json records (confidential ones only
// with confidentiality=all) and opportunities-deleted.json, by limit
// (1 to 100) and offset.
type leverV1 struct {
	*vendorFake
	open, confidential int
}

func newLeverV1(t *testing.T, open, confidential int) *leverV1 {
	l := &leverV1{open: open, confidential: confidential}
	listed, deleted := fixture(t, "lever/v1/opportunity-listed.json"), fixture(t, "lever/v1/opportunities-deleted.json")
	l.vendorFake = newVendorFake(t, func(f *vendorFake, w http.ResponseWriter, r *http.Request) {
		if user, _, _ := r.BasicAuth(); r.Host != "api.lever.co" || user != "lever-key" {
			status(401)(w)
			return
		}
		if f.api(w, r) {
			return
		}
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit < 1 || limit > 100 {
			body(400, "application/json", `{"code":"BadRequestError","message":"limit must be between 1 and 100"}`)(w)
			return
		}
		from, _ := strconv.Atoi(q.Get("offset"))
		var out []json.RawMessage
		switch r.URL.Path {
		case "/v1/opportunities":
			n := l.open
			if q.Get("confidentiality") == "all" {
				n += l.confidential
			}
			for i := from; i < min(from+limit, n); i++ {
				rec := fill(listed, "OPP_ID", fmt.Sprint("opp-", i), "CONTACT_ID", fmt.Sprint("contact-", i),
					"STAGE_ID", "stage-a", "APPLICATION_ID", fmt.Sprint("app-", i))
				if i >= l.open {
					rec, _ = sjson.SetBytes(rec, "confidentiality", "confidential")
				}
				out = append(out, rec)
			}
			page := map[string]any{"data": out, "hasNext": from+limit < n}
			if from+limit < n {
				page["next"] = strconv.Itoa(from + limit)
			}
			json.NewEncoder(w).Encode(page)
		case "/v1/opportunities/deleted":
			if _, err := strconv.ParseInt(q.Get("deleted_at_start"), 10, 64); err != nil {
				status(400)(w)
				return
			}
			w.Write(deleted)
		default:
			status(404)(w)
		}
	})
	return l
}

// TestLeverContract: opportunities then deletions are listed; a deleted
// opportunity comes back with the deleted outcome; confidential ones only
// with api.confidential; a 403 names the permission.
func TestLeverContract(t *testing.T) {
	l := newLeverV1(t, 3, 2)
	src := func(confidential bool) *veil.Source {
		return &veil.Source{Name: "lever", Vendor: veil.VendorLever, API: &veil.APIConfig{Key: "lever-key", Rate: 1000, Confidential: confidential}}
	}
	recs, err := listAll(t, l.client(t, src(false), nil), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[0].ID != "opp-0" || recs[0].CandidateID != "contact-0" || recs[0].StageID != "stage-a" {
		t.Fatalf("listed %+v; want 3 open opportunities and 1 deletion", recs)
	}
	del := recs[3]
	if del.ID != "2f5a9c1e-3b7d-4e8f-9a0b-1c2d3e4f5a6b" || del.Outcome != veil.OutcomeDeleted || del.UpdatedAt.IsZero() {
		t.Fatalf("the deletion: %+v", del)
	}
	for _, q := range l.queries {
		if strings.Contains(q, "confidentiality") {
			t.Fatalf("asked %q without api.confidential", q)
		}
	}
	if n := veil.Transition(nil, veil.AppState{ID: del.ID, Outcome: del.Outcome}); n != veil.TypeCandidateDeleted {
		t.Fatalf("a deletion's transition: %q", n)
	}
	if n := veil.Transition(&veil.AppState{Outcome: veil.OutcomeDeleted}, veil.AppState{ID: del.ID, Outcome: del.Outcome}); n != "" {
		t.Fatalf("a deletion seen before: %q, want nothing to report", n)
	}

	recs, err = listAll(t, l.client(t, src(true), nil), 200) // limit clamped to 100
	if err != nil || len(recs) != 6 {
		t.Fatalf("with api.confidential: %v, %d listed; want 5 opportunities and 1 deletion", err, len(recs))
	}
	l.fault(body(403, "application/json", `{"code":"ForbiddenError","message":"Forbidden"}`))
	if _, err := listAll(t, l.client(t, src(false), nil), 10); err == nil || !strings.Contains(err.Error(), "read access to opportunities") {
		t.Fatalf("403: %v", err)
	}
}

// --- Ashby ---

// ashbyAPI lists application.json records; a sync token is answered with
// whatever error the test queued.
func newAshbyFake(t *testing.T, n int) *vendorFake {
	app := fixture(t, "ashby/application.json")
	return newVendorFake(t, func(f *vendorFake, w http.ResponseWriter, r *http.Request) {
		if user, _, _ := r.BasicAuth(); r.Host != "api.ashbyhq.com" || r.Method != http.MethodPost || user != "ashby-key" {
			status(401)(w)
			return
		}
		if f.api(w, r) {
			return
		}
		var req struct {
			Limit  int    `json:"limit"`
			Cursor string `json:"cursor"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		from, _ := strconv.Atoi(req.Cursor)
		var out []json.RawMessage
		for i := from; i < min(from+req.Limit, n); i++ {
			out = append(out, fill(app, "APP_ID", fmt.Sprint("app-", i), "CAND_ID", fmt.Sprint("cand-", i),
				"STAGE_ID", "stage-b", "JOB_ID", "job-1"))
		}
		page := map[string]any{"success": true, "results": out, "moreDataAvailable": from+req.Limit < n}
		if from+req.Limit < n {
			page["nextCursor"] = strconv.Itoa(from + req.Limit)
		} else {
			page["syncToken"] = "sync-1"
		}
		json.NewEncoder(w).Encode(page)
	})
}

// TestAshbyContract: the documented Accept version header; both error
// shapes read (codes and objects); sync_token_expired and
// incremental_sync_too_large ask for a full sync; a key without the
// endpoint's permission is told which.
func TestAshbyContract(t *testing.T) {
	f := newAshbyFake(t, 3)
	src := &veil.Source{Name: "ashby", Vendor: veil.VendorAshby, API: &veil.APIConfig{Key: "ashby-key", Rate: 1000}}
	api := f.client(t, src, nil)
	var recs []ats.AppRecord
	tok, err := api.List(context.Background(), ats.Listing{PerPage: 2}, func(p []ats.AppRecord) error {
		recs = append(recs, p...)
		return nil
	})
	if err != nil || tok != "sync-1" || len(recs) != 3 || recs[0].StageID != "stage-b" || recs[0].CandidateID != "cand-0" {
		t.Fatalf("full sync: %v, token %q, %+v", err, tok, recs)
	}
	for _, a := range f.accept {
		if a != "application/json; version=1" {
			t.Fatalf("Accept %q, want the documented version header", a)
		}
	}
	for file, want := range map[string]error{"ashby/sync_token_expired.json": ats.ErrTokenExpired,
		"ashby/incremental_sync_too_large.json": ats.ErrSyncTooLarge} {
		f.fault(body(200, "application/json", string(fixture(t, file))))
		_, err := api.List(context.Background(), ats.Listing{Token: "sync-0", PerPage: 2}, func([]ats.AppRecord) error { return nil })
		if !errors.Is(err, want) || !ats.FullSyncNeeded(err) {
			t.Errorf("%s: %v, want %v", file, err, want)
		}
	}
	f.fault(body(200, "application/json", `{"success":false,"errors":[{"code":"invalid_input","message":"Canary-Message"}]}`))
	if _, err := api.List(context.Background(), ats.Listing{PerPage: 2}, func([]ats.AppRecord) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "invalid_input") || strings.Contains(err.Error(), "Canary") {
		t.Errorf("another error: %v, want its code and not its message", err)
	}
	f.fault(body(403, "application/json", string(fixture(t, "ashby/missing_endpoint_permission.json"))))
	_, err = api.List(context.Background(), ats.Listing{PerPage: 2}, func([]ats.AppRecord) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "candidatesRead") || !strings.Contains(err.Error(), "application.list") {
		t.Fatalf("403 missing_endpoint_permission: %v", err)
	}
}
