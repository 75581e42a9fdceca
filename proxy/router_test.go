package proxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRouter_AnswersInJSON: what no route serves is a JSON error, not the
// mux's text: 404 for an unknown path, 405 with Allow for a known path's
// wrong method, and 404 (not a redirect) for a path with // or .. in it.
func TestRouter_AnswersInJSON(t *testing.T) {
	ts, _ := newTestServer(t, time.Now())
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", 404, "not_found", ""},
		{"GET", "/hooks/greenhouse", 405, "method_not_allowed", "POST"},
		{"POST", "/healthz", 405, "method_not_allowed", "GET, HEAD"},
		{"POST", "/hooks//greenhouse", 404, "not_found", ""},
		{"GET", "/v1/../healthz", 404, "not_found", ""},
		{"GET", "/healthz/", 404, "not_found", ""},
		{"GET", "/healthz", 200, "", ""},
	} {
		req, _ := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader("{}"))
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		jerr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || jerr != nil || body["error"] != c.code && c.code != "" {
			t.Errorf("%s %s: got %d %v (%v), want %d %s", c.method, c.path, resp.StatusCode, body, jerr, c.status, c.code)
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
}
