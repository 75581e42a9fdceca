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
	"strconv"
	"strings"
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
	// Requests counts the requests sent, 429s included (for tests and logs).
	Requests int64
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
}

// Envelope returns a listed record in the shape the vendor's Normalize
// reads (and Fetch returns): what a reconciled event keeps as its payload.
func (a *API) Envelope(rec AppRecord) []byte { return a.vendor.envelope(rec) }

// UpstreamIDs returns the ids Fetch needs for rec (upstream lookup mode).
func (a *API) UpstreamIDs(rec AppRecord) map[string]string { return a.vendor.upstream(rec) }

// defaultRate is under each vendor's documented request rate (Lever:
// 10/s, so 9/s: arrivals jitter; Greenhouse and Ashby publish windows,
// 5/s stays well inside them).
var defaultRate = map[string]float64{veil.VendorLever: 9, veil.VendorGreenhouse: 5, veil.VendorAshby: 5}

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
		r = defaultRate[src.Vendor]
	}
	a := &API{src: src, base: base, limiter: rate.NewLimiter(rate.Limit(r), 1), Sleep: sleepCtx,
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
// names the status or the fault, never a record value.
func (a *API) List(ctx context.Context, l Listing, page func([]AppRecord) error) (string, error) {
	return a.vendor.list(ctx, a, l, page)
}

// Fetch returns the record of a stored event from its upstream ids.
func (a *API) Fetch(ctx context.Context, ids map[string]string) ([]byte, error) {
	return a.vendor.fetch(ctx, a, ids)
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
// body and headers. 429 and 502/503/504 are retried after Retry-After (or
// a growing pause); any other non-200 is an *APIError.
func (a *API) do(ctx context.Context, method, target string, body []byte) ([]byte, http.Header, error) {
	for attempt := 1; ; attempt++ {
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
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "veil-reconcile")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if err := a.vendor.authorize(a, req); err != nil {
			return nil, nil, err
		}
		a.Requests++
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
		switch {
		case err != nil:
			return nil, nil, &APIError{Status: resp.StatusCode, Reason: "the answer could not be read"}
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusBadGateway ||
			resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
			if attempt >= maxAttempts {
				return nil, nil, &APIError{Status: resp.StatusCode, Reason: fmt.Sprintf("still refused after %d tries", attempt)}
			}
			if err := a.Sleep(ctx, retryAfter(resp.Header.Get("Retry-After"), attempt)); err != nil {
				return nil, nil, err
			}
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

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped
// at a minute; without one, 1 s, 2 s, 4 s….
func retryAfter(v string, attempt int) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, time.Minute)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), time.Minute)
	}
	return time.Duration(1<<min(attempt-1, 5)) * time.Second
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// sameHost reports whether next (a page link the API gave) points at the
// API's own scheme and host: a link elsewhere would carry our bearer.
func (a *API) sameHost(next *url.URL) bool {
	return next.Scheme == a.base.Scheme && strings.EqualFold(next.Host, a.base.Host)
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
