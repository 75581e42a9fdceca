package ats

// The HTTP plumbing every ATS API client shares. Each vendor's half (its
// auth, its listing and paging, its record shape) lives in the vendor's
// file; this file holds what none of them should do differently: a rate
// limit, 429 with Retry-After, a timeout per request, a cap on pages,
// redirects refused, next-page links only to the API's own host, and
// errors that carry a status and never a record value.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"golang.org/x/time/rate"

	"github.com/veilhq/veil"
)

// MaxPage is the largest API answer Veil reads: a page over it ends the pass.
const MaxPage = 10 << 20

// AppRecord is one application as an ATS API lists it. The ids, stage and
// outcome are what reconciliation compares; Raw is the record itself
// (personal data: it is sealed in the store like a webhook's payload).
type AppRecord struct {
	ID, CandidateID, JobID string
	StageID, StageName     string
	Outcome                string // veil.OutcomeHired, veil.OutcomeRejected or veil.OutcomeActive
	CreatedAt, UpdatedAt   time.Time
	Raw                    []byte
}

// Listing asks for the applications changed since Since (a vendor with a
// sync token lists from Token when it has one; "" is a full pass).
type Listing struct {
	Since   time.Time
	Token   string
	PerPage int
}

// ErrTokenExpired is returned by List when the vendor says the sync token
// expired: the caller starts a full pass.
var ErrTokenExpired = errors.New("the ATS says the sync token expired: a full pass is needed")

// ErrSyncTooLarge is returned by List when the vendor refuses an
// incremental sync as too large (Ashby's incremental_sync_too_large): the
// caller discards the token and starts a full pass.
var ErrSyncTooLarge = errors.New("the ATS says the incremental sync is too large: a full pass is needed")

// FullSyncNeeded reports whether err asks for a full pass without the
// sync token.
func FullSyncNeeded(err error) bool {
	return errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrSyncTooLarge)
}

// RateLimits is what the API's last answer said of its rate limit, as
// sent ("" when a header was absent): X-RateLimit-Limit, -Remaining and
// -Reset (Greenhouse, Lever), Retry-After.
type RateLimits struct {
	Limit, Remaining, Reset, RetryAfter string
}

// API is one source's ATS API client, shared by upstream lookups and
// reconciliation. Create it with NewAPI.
type API struct {
	src     *veil.Source
	base    *url.URL
	http    *http.Client
	limiter *rate.Limiter
	vendor  apiVendor
	// Sleep waits for d or until ctx ends (tests shorten it).
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock token lifetimes and rate-limit pauses are read
	// against (tests inject one).
	Now func() time.Time

	// Upstream lookups share the client: mu guards what answers taught it.
	mu         sync.Mutex
	limits     RateLimits // what the last answer's rate-limit headers said
	pauseUntil time.Time  // the API said its window is spent until then
}

// LastLimits returns what the last answer's rate-limit headers said.
func (a *API) LastLimits() RateLimits {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limits
}

// pause returns how long the next request waits for a window the API
// said is spent.
func (a *API) pause() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pauseUntil.Sub(a.Now())
}

func (a *API) setPause(until time.Time) {
	a.mu.Lock()
	a.pauseUntil = until
	a.mu.Unlock()
}

// apiVendor is a vendor's half of its API client.
type apiVendor interface {
	// authorize sets the request's credentials.
	authorize(a *API, req *http.Request) error
	// list calls page with each page of applications changed since l,
	// in order, and returns the vendor's new sync token ("" if none).
	list(ctx context.Context, a *API, l Listing, page func([]AppRecord) error) (string, error)
	// fetch returns the record behind a stored event's upstream ids.
	fetch(ctx context.Context, a *API, ids map[string]string) ([]byte, error)
	// envelope wraps a listed record as fetch returns it, the shape the
	// vendor's Normalize reads; upstream names it for a later fetch.
	envelope(rec AppRecord) []byte
	upstream(rec AppRecord) map[string]string
	// refused says what a 403 from endpoint (its body is data, read for
	// the vendor's error code only) means: which permission is missing.
	refused(endpoint string, body []byte) string
}

// tokenDropper is a vendor whose bearer tokens can be revoked or expire
// early: after a 401 the token is dropped and one new one tried.
type tokenDropper interface{ dropToken() }

// vendorAPI is what the client knows of each vendor's API from its
// reference: the Accept header it documents, the largest page it
// serves, the hosts it answers on (a next-page link to another of them
// is followed; anywhere else ends the pass), and the default rate, under
// its documented limit (Lever: 10/s, so 9/s: arrivals jitter; Greenhouse
// and Ashby publish windows, 5/s stays well inside them).
var vendorAPI = map[string]struct {
	accept  string
	maxPage int
	hosts   []string
	rate    float64
}{
	// Harvest v3: per_page up to 500; the reference's examples use both hosts.
	veil.VendorGreenhouse: {"application/json", 500, []string{"harvest.greenhouse.io", "api.greenhouse.io"}, 5},
	// Lever: limit 1 to 100; the EU instance answers on its own host.
	veil.VendorLever: {"application/json", 100, []string{"api.lever.co", "api.eu.lever.co"}, 9},
	// Ashby: its examples send the version in Accept; pages of up to 100.
	veil.VendorAshby: {"application/json; version=1", 100, []string{"api.ashbyhq.com"}, 5},
}

// Envelope returns a listed record in the shape the vendor's Normalize
// reads (and Fetch returns): what a reconciled event keeps as its payload.
func (a *API) Envelope(rec AppRecord) []byte { return a.vendor.envelope(rec) }

// UpstreamIDs returns the ids Fetch needs for rec (upstream lookup mode).
func (a *API) UpstreamIDs(rec AppRecord) map[string]string { return a.vendor.upstream(rec) }

// NewAPI returns the API client of src (whose api block was validated),
// sending its requests through transport: the caller's SSRF-guarded one.
func NewAPI(src *veil.Source, transport http.RoundTripper) (*API, error) {
	if src.API == nil {
		return nil, fmt.Errorf("source %s has no api block", src.Name)
	}
	base, err := url.Parse(strings.TrimSuffix(src.API.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("source %s: api.base_url: %w", src.Name, err)
	}
	r := src.API.Rate
	if r == 0 {
		r = vendorAPI[src.Vendor].rate
	}
	a := &API{src: src, base: base, limiter: rate.NewLimiter(rate.Limit(r), 1), Sleep: sleepCtx, Now: time.Now,
		http: &http.Client{Transport: transport, Timeout: time.Duration(src.API.Timeout),
			// A redirect is an answer like any other: never followed, so
			// credentials never travel to another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	switch src.Vendor {
	case veil.VendorGreenhouse:
		a.vendor = newHarvest(a, transport)
	case veil.VendorLever:
		a.vendor = leverAPI{}
	case veil.VendorAshby:
		a.vendor = ashbyAPI{}
	default:
		return nil, fmt.Errorf("source %s: Veil has no API client for %s", src.Name, src.Vendor)
	}
	return a, nil
}

// List calls page with each page of applications changed since l, in the
// order the ATS gives them, and returns the new sync token. An error
// names the status or the fault, never a record value. PerPage is
// clamped to the vendor's largest page.
func (a *API) List(ctx context.Context, l Listing, page func([]AppRecord) error) (string, error) {
	l.PerPage = a.perPage(l.PerPage)
	return a.vendor.list(ctx, a, l, page)
}

// perPage clamps n to the pages the vendor serves.
func (a *API) perPage(n int) int { return max(1, min(n, vendorAPI[a.src.Vendor].maxPage)) }

// Fetch returns the record of a stored event from its upstream ids.
func (a *API) Fetch(ctx context.Context, ids map[string]string) ([]byte, error) {
	return a.vendor.fetch(ctx, a, ids)
}

// Check is what one authenticated call showed of the API: how many
// records its first page held, what its rate-limit headers said, and the
// token's scopes when the vendor names them.
type Check struct {
	FirstPage int
	PerPage   int
	Limits    RateLimits
	Scopes    string
}

// Check makes the smallest authenticated call reconciliation makes (the
// first page of the applications listing, nothing stored) and reports
// what the API showed.
func (a *API) Check(ctx context.Context, perPage int) (Check, error) {
	c := Check{PerPage: a.perPage(perPage)}
	errFirst := errors.New("first page read")
	_, err := a.List(ctx, Listing{Since: time.Unix(0, 0).UTC(), PerPage: c.PerPage}, func(recs []AppRecord) error {
		c.FirstPage = len(recs)
		return errFirst
	})
	if err != nil && !errors.Is(err, errFirst) {
		return c, err
	}
	c.Limits = a.LastLimits()
	if s, ok := a.vendor.(interface{ scopes() string }); ok {
		c.Scopes = s.scopes()
	}
	return c, nil
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// APIError is an ATS API failure: what went wrong, never a record value.
type APIError struct {
	Status int    // the HTTP status, 0 when the request got no answer
	Reason string // what went wrong, in words
}

func (e *APIError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("ATS API answered %d: %s", e.Status, e.Reason)
	}
	return "ATS API: " + e.Reason
}

// maxAttempts bounds the tries of one request that meets 429 or a 5xx.
const maxAttempts = 5

// do sends one API request (rate-limited, authorised) and returns its JSON
// body and headers. It waits out a window the API's headers said is
// spent; 429 and 502/503/504 are retried after Retry-After (or
// X-RateLimit-Reset, or a growing pause); a 401 drops a bearer token and
// tries one new one; any other non-200 is an *APIError.
func (a *API) do(ctx context.Context, method, target string, body []byte) ([]byte, http.Header, error) {
	renewed := false
	for attempt := 1; ; attempt++ {
		if wait := a.pause(); wait > 0 {
			if err := a.Sleep(ctx, min(wait, time.Minute)); err != nil {
				return nil, nil, err
			}
			a.setPause(time.Time{})
		}
		if err := a.limiter.Wait(ctx); err != nil {
			return nil, nil, err
		}
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(string(body))
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			return nil, nil, fmt.Errorf("ATS API request: %w", err)
		}
		req.Header.Set("Accept", vendorAPI[a.src.Vendor].accept)
		req.Header.Set("User-Agent", "veil-reconcile")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if err := a.vendor.authorize(a, req); err != nil {
			return nil, nil, err
		}
		resp, err := a.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				return nil, nil, &APIError{Reason: "no answer within api.timeout"}
			}
			// The transport's error names the host and the guard's refusal; not a value.
			return nil, nil, &APIError{Reason: "unreachable: " + err.Error()}
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxPage+1))
		resp.Body.Close()
		a.noteLimits(resp.Header)
		switch {
		case err != nil:
			return nil, nil, &APIError{Status: resp.StatusCode, Reason: "the answer could not be read"}
		case resp.StatusCode == http.StatusUnauthorized:
			if d, ok := a.vendor.(tokenDropper); ok && !renewed {
				d.dropToken() // expired early or revoked: one new token, once
				renewed = true
				attempt--
				continue
			}
			return nil, nil, &APIError{Status: resp.StatusCode, Reason: "the ATS refused the credentials"}
		case resp.StatusCode == http.StatusForbidden:
			return nil, nil, &APIError{Status: resp.StatusCode, Reason: a.vendor.refused(endpointOf(a.base, req.URL), data)}
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusBadGateway ||
			resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
			if attempt >= maxAttempts {
				return nil, nil, &APIError{Status: resp.StatusCode, Reason: fmt.Sprintf("still refused after %d tries", attempt)}
			}
			if err := a.Sleep(ctx, retryAfter(resp.Header, attempt, a.Now())); err != nil {
				return nil, nil, err
			}
			a.setPause(time.Time{}) // the wait above covered it
			continue
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			return nil, nil, &APIError{Status: resp.StatusCode, Reason: "a redirect, not followed"}
		case resp.StatusCode != http.StatusOK:
			return nil, nil, &APIError{Status: resp.StatusCode, Reason: http.StatusText(resp.StatusCode)}
		case len(data) > MaxPage:
			return nil, nil, &APIError{Status: resp.StatusCode, Reason: fmt.Sprintf("a page over %d MiB", MaxPage>>20)}
		case !gjson.ValidBytes(data):
			return nil, nil, &APIError{Status: resp.StatusCode, Reason: "the answer is not JSON (truncated, or an HTML page)"}
		}
		return data, resp.Header, nil
	}
}

// noteLimits keeps what an answer's rate-limit headers said, and when
// they say the window is spent (X-RateLimit-Remaining: 0), the time the
// next request waits for: X-RateLimit-Reset, or Retry-After.
func (a *API) noteLimits(h http.Header) {
	l := RateLimits{Limit: h.Get("X-RateLimit-Limit"), Remaining: h.Get("X-RateLimit-Remaining"),
		Reset: h.Get("X-RateLimit-Reset"), RetryAfter: h.Get("Retry-After")}
	if l == (RateLimits{}) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.limits = l
	if n, err := strconv.Atoi(strings.TrimSpace(l.Remaining)); err == nil && n <= 0 {
		now := a.Now()
		if at, ok := resetAt(l.Reset, now); ok {
			a.pauseUntil = at
		} else if l.RetryAfter != "" {
			a.pauseUntil = now.Add(retryAfter(h, 1, now))
		}
	}
}

// retryAfter is how long to wait before trying again: Retry-After
// (seconds or an HTTP date), else X-RateLimit-Reset, capped at a minute;
// without either, 1 s, 2 s, 4 s….
func retryAfter(h http.Header, attempt int, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, time.Minute)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), time.Minute)
	}
	if at, ok := resetAt(h.Get("X-RateLimit-Reset"), now); ok {
		return min(max(at.Sub(now), 0), time.Minute)
	}
	return time.Duration(1<<min(attempt-1, 5)) * time.Second
}

// resetAt reads X-RateLimit-Reset: a Unix time in seconds (Greenhouse),
// or seconds from now where a vendor sends a small number.
func resetAt(v string, now time.Time) (time.Time, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	switch {
	case err != nil || n < 0:
		return time.Time{}, false
	case n > 1_000_000_000:
		return time.Unix(n, 0), true
	}
	return now.Add(time.Duration(n) * time.Second), true
}

// endpointOf names the API route of u, relative to the base URL
// (/applications, /application.list), for a permission message.
func endpointOf(base, u *url.URL) string {
	return strings.TrimPrefix(u.Path, strings.TrimSuffix(base.Path, "/"))
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// followable reports whether next (a page link the API gave) may be
// followed with our credentials: the API's own scheme, and its own host
// or another host the vendor's API answers on (when the base URL is one
// of them). A link anywhere else would carry our bearer to it.
func (a *API) followable(next *url.URL) bool {
	if !next.IsAbs() || next.Scheme != a.base.Scheme || next.User != nil {
		return false
	}
	if strings.EqualFold(next.Host, a.base.Host) {
		return true
	}
	hosts := vendorAPI[a.src.Vendor].hosts
	return next.Port() == "" && a.base.Port() == "" && slices.Contains(hosts, strings.ToLower(a.base.Hostname())) &&
		slices.Contains(hosts, strings.ToLower(next.Hostname()))
}

// endpoint returns the API's base URL joined with path and query.
func (a *API) endpoint(path string, q url.Values) string {
	u := *a.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// parseTime reads an RFC 3339 time or Unix milliseconds (Lever).
func parseTime(r gjson.Result) time.Time {
	switch r.Type {
	case gjson.Number:
		return time.UnixMilli(r.Int()).UTC()
	case gjson.String:
		if t, err := time.Parse(time.RFC3339Nano, r.Str); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// lookupError turns an API failure into the lookup's answer.
func lookupError(err error) error {
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return veil.Errorf(veil.EGONE, "The ATS no longer has this record.")
	case errors.As(err, &ae) && ae.Status == 0 && strings.HasPrefix(ae.Reason, "no answer"):
		return veil.Errorf(veil.EUPSTREAMTIMEOUT, "The ATS API did not answer in time.")
	case errors.Is(err, context.DeadlineExceeded):
		return veil.Errorf(veil.EUPSTREAMTIMEOUT, "The ATS API did not answer in time.")
	case errors.As(err, &ae) && ae.Status != 0:
		return veil.Errorf(veil.EUPSTREAM, "The ATS API answered %d.", ae.Status)
	case errors.As(err, &ae):
		return veil.Errorf(veil.EUPSTREAM, "The ATS API could not be reached.")
	}
	return veil.Errorf(veil.EUPSTREAM, "The ATS API could not be reached.")
}
