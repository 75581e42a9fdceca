package ats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/delivery"
)

// harvestFake is Harvest v3 as testdata/upstream/README.md describes it,
// cut to what these timing tests need (contract_test.go has the rest): POST /token (client credentials, HTTP Basic, sub),
// bearer tokens that stop working when they expire, and
// GET /v3/applications?updated_at[gte]=… with per_page on the first call and the cursor
// alone in the Link rel="next" after it. every429 answers every Nth list
// request 429 with Retry-After: 1.
type harvestFake struct {
	*httptest.Server
	mu        sync.Mutex
	total     int
	tokenLife time.Duration
	tokens    map[string]time.Time
	issued    int
	unauth    int            // requests with an expired or unknown token
	pages     map[string]int // cursor -> times served with 200
	every429  int
	lists     int
	throttled int
}

func newHarvestFake(t *testing.T, total int, tokenLife time.Duration) *harvestFake {
	f := &harvestFake{total: total, tokenLife: tokenLife, tokens: map[string]time.Time{}, pages: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.URL.Path == "/token" {
			id, secret, _ := r.BasicAuth()
			r.ParseForm()
			if id != "cid" || secret != "csecret" || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("sub") != "77" {
				w.WriteHeader(401)
				return
			}
			f.issued++
			tok := fmt.Sprint("t", f.issued)
			f.tokens[tok] = time.Now().Add(f.tokenLife)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": int(f.tokenLife / time.Second)})
			return
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if exp, ok := f.tokens[tok]; !ok || time.Now().After(exp) {
			f.unauth++
			w.WriteHeader(401)
			return
		}
		f.lists++
		if f.every429 > 0 && f.lists%f.every429 == 0 {
			f.throttled++
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		q := r.URL.Query()
		from, per := 0, 0
		if c := q.Get("cursor"); c != "" {
			if len(q) != 1 {
				w.WriteHeader(422)
				return
			}
			fmt.Sscanf(c, "%d.%d", &from, &per)
		} else {
			if q.Get("updated_at[gte]") == "" {
				w.WriteHeader(422)
				return
			}
			per, _ = strconv.Atoi(q.Get("per_page"))
		}
		f.pages[fmt.Sprint(from)]++
		var out []map[string]any
		for i := from; i < min(from+per, f.total); i++ {
			out = append(out, map[string]any{"id": 1000 + i, "candidate_id": 2000 + i, "job_interview_stage_id": 3000 + i,
				"status": "in_process", "updated_at": "2026-11-27T10:00:00Z"})
		}
		if from+per < f.total {
			w.Header().Set("Link", fmt.Sprintf(`<%s/v3/applications?cursor=%d.%d>; rel="next"`, f.URL, from+per, per))
		}
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(f.Close)
	return f
}

func harvestSource(base string, rate float64) *veil.Source {
	return &veil.Source{Name: "greenhouse", Vendor: veil.VendorGreenhouse, API: &veil.APIConfig{BaseURL: base + "/v3",
		TokenURL: base + "/token", ClientID: "cid", ClientSecret: "csecret", UserID: "77", Timeout: veil.Duration(5 * time.Second), Rate: rate}}
}

// TestAPI_RetryAfter: a 429 is retried after its Retry-After, and the
// pass completes with every page once.
func TestAPI_RetryAfter(t *testing.T) {
	f := newHarvestFake(t, 30, time.Hour)
	f.every429 = 3
	api, err := ats.NewAPI(harvestSource(f.URL, 1000), http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	api.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	var listed int
	if _, err := api.List(context.Background(), ats.Listing{Since: time.Now(), PerPage: 5}, func(recs []ats.AppRecord) error {
		listed += len(recs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if listed != 30 || f.throttled == 0 || len(waits) != f.throttled {
		t.Fatalf("listed %d after %d 429s and %d waits", listed, f.throttled, len(waits))
	}
	for _, w := range waits {
		if w != time.Second {
			t.Fatalf("waited %v, want the Retry-After of 1s", w)
		}
	}
}

// TestAPI_RateLimit: the client never sends more than its rate.
func TestAPI_RateLimit(t *testing.T) {
	f := newHarvestFake(t, 50, time.Hour)
	var mu sync.Mutex
	var at []time.Time
	inner := f.Config.Handler
	f.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	})
	api, err := ats.NewAPI(harvestSource(f.URL, 10), http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.List(context.Background(), ats.Listing{Since: time.Now(), PerPage: 5}, func([]ats.AppRecord) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// 10 requests at 10/s with a burst of 1: 9 gaps of at least 100 ms
	// (the limiter's own clock; the fake's arrivals may bunch by a little).
	if len(at) != 10 {
		t.Fatalf("%d list requests, want 10", len(at))
	}
	for i := 2; i < len(at); i++ {
		if d := at[i].Sub(at[i-2]); d < 150*time.Millisecond {
			t.Fatalf("requests %d and %d %v apart: faster than 10/s", i-2, i, d)
		}
	}
}

// TestAPI_SSRFGuard: an API base URL resolving to a private, link-local
// or metadata address is never dialled (the guard refuses it first).
func TestAPI_SSRFGuard(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "10.0.0.8", "169.254.169.254", "192.168.1.1", "::1", "fd00::1"} {
		var dialled []string
		guard := &delivery.Guard{
			Lookup: func(context.Context, string) ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr(ip)}, nil },
			Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
				dialled = append(dialled, addr)
				return nil, errors.New("the test dials nothing")
			},
		}
		src := &veil.Source{Name: "lever", Vendor: veil.VendorLever, API: &veil.APIConfig{BaseURL: "https://api.lever.example",
			Key: "k", Timeout: veil.Duration(time.Second), Rate: 100}}
		api, err := ats.NewAPI(src, &http.Transport{DialContext: guard.DialContext})
		if err != nil {
			t.Fatal(err)
		}
		_, err = api.List(context.Background(), ats.Listing{Since: time.Now(), PerPage: 10}, func([]ats.AppRecord) error { return nil })
		if err == nil || len(dialled) != 0 {
			t.Fatalf("%s: err %v, dialled %v; want refused before any dial", ip, err, dialled)
		}
	}
}

// TestAPI_RedirectNotFollowed: a redirect is an error, never followed
// (credentials would travel with it).
func TestAPI_RedirectNotFollowed(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere++ }))
	defer other.Close()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v1/opportunities", http.StatusFound)
	}))
	defer s.Close()
	src := &veil.Source{Name: "lever", Vendor: veil.VendorLever, API: &veil.APIConfig{BaseURL: s.URL, Key: "k",
		Timeout: veil.Duration(time.Second), Rate: 100}}
	api, _ := ats.NewAPI(src, http.DefaultTransport)
	_, err := api.List(context.Background(), ats.Listing{Since: time.Now(), PerPage: 10}, func([]ats.AppRecord) error { return nil })
	var ae *ats.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusFound || elsewhere != 0 {
		t.Fatalf("err %v, %d requests elsewhere; want a 302 error and none", err, elsewhere)
	}
}
