package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veilhq/veil/console"
	"github.com/veilhq/veil/internal/storetest"
)

// TestSession_Expires: a session ends SessionTTL after login (the clock is
// the console's own, injected), and the next page is the login page.
func TestSession_Expires(t *testing.T) {
	st := storetest.MustOpenStore(t, "", make([]byte, 32), make([]byte, 32), nil)
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC).UnixNano())
	c := &console.Console{Store: st, Consumers: st, Counts: st, Sessions: st, AdminToken: "admin-token", SessionMax: time.Hour, SessionIdle: time.Hour,
		Now: func() time.Time { return time.Unix(0, now.Load()) }}
	srv := httptest.NewServer(c)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)[1]
	if resp, err = client.PostForm(srv.URL+"/console/login", url.Values{"token": {"admin-token"}, "csrf": {string(csrf)}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	status := func() (int, string) {
		resp, err := client.Get(srv.URL + "/console/events")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	if code, _ := status(); code != http.StatusOK {
		t.Fatalf("after login: %d", code)
	}
	now.Add(int64(59 * time.Minute))
	if code, _ := status(); code != http.StatusOK {
		t.Fatalf("59 minutes in: %d", code)
	}
	now.Add(int64(2 * time.Minute))
	if code, loc := status(); code != http.StatusSeeOther || loc != "/console/login" {
		t.Fatalf("61 minutes in: %d to %q, want the login page", code, loc)
	}
	// A form sent after the session ended is kept through a new login,
	// and sent again only when confirmed.
	resp, err = client.PostForm(srv.URL+"/console/dead/replay", url.Values{"csrf": {"stale"}, "id": {"dlv_kept1", "dlv_kept2"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(page), `name="kept_action" value="/console/dead/replay"`) ||
		strings.Count(string(page), `name="kept_value" value="dlv_kept`) != 2 || strings.Contains(string(page), `value="stale"`) {
		t.Fatalf("the form sent after the session ended: %d\n%s", resp.StatusCode, page)
	}
	form := url.Values{"token": {"admin-token"}}
	for _, m := range regexp.MustCompile(`name="(csrf|kept_action|kept_name|kept_value)" value="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		form.Add(m[1], m[2])
	}
	if resp, err = client.PostForm(srv.URL+"/console/login", form); err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `<form method="post" action="/console/dead/replay" id="resume-form">`) ||
		!strings.Contains(string(page), `<input type="hidden" name="id" value="dlv_kept2">`) {
		t.Fatalf("after logging in again: %d\n%s", resp.StatusCode, page)
	}
	// A kept action outside the console's own forms is not offered.
	resp, _ = client.Get(srv.URL + "/console/login")
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)[1]
	if resp, err = client.PostForm(srv.URL+"/console/login", url.Values{"token": {"admin-token"}, "csrf": {string(csrf)},
		"kept_action": {"https://evil.example/x"}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a foreign kept action: %d", resp.StatusCode)
	}

	// A wrong token gets no session.
	if resp, err = client.PostForm(srv.URL+"/console/login", url.Values{"token": {"admin-tokeN"}, "csrf": {string(csrf)}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
