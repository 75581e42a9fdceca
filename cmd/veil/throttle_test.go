package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// loginForm fetches a login form with c and returns its CSRF token.
func loginForm(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := c.Get(base + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the login page:\n%s", page)
	}
	return string(m[1])
}

// postLogin posts the login form and returns the status and Location.
func postLogin(t *testing.T, c *http.Client, base, csrf, token string, h http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/console/login",
		strings.NewReader(url.Values{"token": {token}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

func newJarClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestThrottle_BruteForce: 200 wrong console tokens from one address in a
// minute are refused once the budget is spent, and so is the right token
// after them; 200 wrong admin API tokens likewise. The audit log holds a
// few aggregated auth_failed rows (at most 10), never a token tried.
func TestThrottle_BruteForce(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	p := startVeil(t, writeConfig(t, dir, ""), logs)
	c := newJarClient()
	const wrong = "wrong-token-guess-"
	throttled := 0
	for i := range 200 {
		status, loc := postLogin(t, c, p.url, loginForm(t, c, p.url), wrong+string(rune('a'+i%26)), nil)
		switch {
		case status == http.StatusTooManyRequests:
			throttled++
		case status != http.StatusSeeOther || loc != "/console/login?failed=1":
			t.Fatalf("wrong login %d: %d to %q", i, status, loc)
		}
	}
	if throttled < 180 {
		t.Errorf("%d of 200 wrong logins throttled, want all but the first few", throttled)
	}
	if status, _ := postLogin(t, c, p.url, loginForm(t, c, p.url), "e2e-admin-token", nil); status != http.StatusTooManyRequests {
		t.Errorf("the right token after the flood: %d, want 429 (throttled)", status)
	}

	api := &http.Client{Timeout: 10 * time.Second}
	apiThrottled := 0
	for range 200 {
		req, _ := http.NewRequest(http.MethodGet, p.url+"/v1/deliveries?status=dead", nil)
		req.Header.Set("Authorization", "Bearer "+wrong+"api")
		resp, err := api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" && e.Error == veil.ERATELIMITED {
			apiThrottled++
		} else if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong API token: %d", resp.StatusCode)
		}
	}
	// The address shares one budget: the console's flood spent it already.
	if apiThrottled != 200 {
		t.Errorf("%d of 200 wrong API tokens throttled, want 200", apiThrottled)
	}
	p.stop(t)

	st := openE2EStore(t, dir)
	rows, attempts := 0, 0
	st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), wrong) {
			t.Errorf("an audit row holds a token tried: %s", b)
		}
		if e.Action == veil.ActionAuthFailed {
			rows++
			attempts += e.Attempt
		}
		return nil
	})
	if rows == 0 || rows > 10 {
		t.Errorf("%d auth_failed rows, want 1 to 10", rows)
	}
	if attempts != 401 {
		t.Errorf("auth_failed rows count %d attempts, want 401", attempts)
	}
	if strings.Contains(string(logs.Bytes()), wrong) {
		t.Error("the log holds a token tried")
	}
	if !strings.Contains(string(logs.Bytes()), `"msg":"failed authentication attempts"`) {
		t.Error("the failed attempts are not logged")
	}
}

// TestThrottle_LoginCSRF: a login is accepted only with a form this
// server handed out, once, from the console's own origin: not with a
// cookie and token pair someone chose, not twice, not cross-site.
func TestThrottle_LoginCSRF(t *testing.T) {
	dir := t.TempDir()
	p := startVeil(t, writeConfig(t, dir, ""), &syncBuffer{})
	defer p.stop(t)
	const admin = "e2e-admin-token"
	u, _ := url.Parse(p.url)

	// An attacker's own pair: cookie and field of its choosing.
	c := newJarClient()
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "veil_console_login", Value: "aaaa", Path: "/console/login"}})
	if status, _ := postLogin(t, c, p.url, "aaaa", admin, nil); status != http.StatusForbidden {
		t.Errorf("chosen cookie and token: %d, want 403", status)
	}
	// Cross-site, with a form the server did hand out.
	c = newJarClient()
	csrf := loginForm(t, c, p.url)
	if status, _ := postLogin(t, c, p.url, csrf, admin, http.Header{"Origin": {"https://evil.example"}}); status != http.StatusForbidden {
		t.Errorf("cross-site Origin: %d, want 403", status)
	}
	csrf = loginForm(t, c, p.url)
	if status, _ := postLogin(t, c, p.url, csrf, admin, http.Header{"Sec-Fetch-Site": {"same-site"}}); status != http.StatusForbidden {
		t.Errorf("Sec-Fetch-Site same-site: %d, want 403", status)
	}
	// The real thing works once; the same form a second time does not.
	csrf = loginForm(t, c, p.url)
	cookies := c.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host, Path: "/console/login"})
	if status, loc := postLogin(t, c, p.url, csrf, admin, http.Header{"Sec-Fetch-Site": {"same-origin"}}); status != http.StatusSeeOther || loc != "/console/" {
		t.Fatalf("login: %d to %q, want 303 to /console/", status, loc)
	}
	again := newJarClient()
	again.Jar.SetCookies(u, cookies)
	if status, _ := postLogin(t, again, p.url, csrf, admin, nil); status != http.StatusForbidden {
		t.Errorf("the same form twice: %d, want 403", status)
	}
}
