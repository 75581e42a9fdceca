package console_test

import (
	"context"
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

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/auth"
	"github.com/veilhq/veil/console"
	"github.com/veilhq/veil/internal/oidctest"
	"github.com/veilhq/veil/internal/storetest"
)

// peopleConsole is a console over a real SQLite store, with local users
// and single sign-on through a provider on loopback, on an injected clock.
type peopleConsole struct {
	st    *audit.Store
	c     *console.Console
	srv   *httptest.Server
	idp   *oidctest.Provider
	now   atomic.Int64
	guard *auth.Guard
}

func newPeopleConsole(t *testing.T) *peopleConsole {
	t.Helper()
	pc := &peopleConsole{}
	pc.now.Store(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, pc.now.Load()).UTC() }
	pc.st = storetest.MustOpenStore(t, "", make([]byte, 32), make([]byte, 32), clock)
	pc.idp = oidctest.Start(t, "veil-console", "client-secret", "",
		oidctest.User{Subject: "u-alice", Email: "alice@example.com", Password: "alice-pw", Groups: []string{"veil-reviewers"}},
		oidctest.User{Subject: "u-audrey", Email: "audrey@example.com", Password: "audrey-pw", Groups: []string{"veil-auditors", "staff"}},
		oidctest.User{Subject: "u-nobody", Email: "nobody@example.com", Password: "nobody-pw", Groups: []string{"staff"}})
	pc.idp.Now = clock
	pc.guard = auth.NewGuard()
	pc.guard.Now, pc.guard.Record = clock, pc.st.Record
	pc.c = &console.Console{Store: pc.st, Consumers: pc.st, Counts: pc.st, Sessions: pc.st, Users: pc.st, Record: pc.st.Record, Guard: pc.guard,
		AdminToken: "admin-token", Now: clock}
	pc.srv = httptest.NewServer(pc.c)
	t.Cleanup(pc.srv.Close)
	pc.idp.SetRedirect(pc.srv.URL + "/console/oidc/callback")
	pc.c.OIDC = &console.OIDC{Pending: pc.st, Config: veil.OIDCConfig{Issuer: pc.idp.Issuer, ClientID: "veil-console",
		ClientSecret: "client-secret", RedirectURL: pc.srv.URL + "/console/oidc/callback", RolesClaim: "groups",
		RoleMap: map[string][]string{"veil-reviewers": {veil.RoleReviewer}, "veil-auditors": {veil.RoleAuditor}},
		Scopes:  []string{"email"}, Label: "Log in with the test provider"}}
	return pc
}

func (pc *peopleConsole) advance(d time.Duration) { pc.now.Add(int64(d)) }

func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// sso logs client in as email through the provider (its AutoLogin) and
// reports whether a console page then opens.
func (pc *peopleConsole) sso(t *testing.T, client *http.Client, email string) bool {
	t.Helper()
	pc.idp.Set(func(p *oidctest.Provider) { p.AutoLogin = email })
	resp, err := client.Get(pc.srv.URL + "/console/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return pc.opens(t, client, "/console/events")
}

// opens reports whether GET path answers a console page (200), not the
// login page.
func (pc *peopleConsole) opens(t *testing.T, client *http.Client, path string) bool {
	t.Helper()
	noFollow := *client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(pc.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (pc *peopleConsole) rows(t *testing.T, action string) []veil.AuditEntry {
	t.Helper()
	pc.st.Flush(context.Background())
	rows, err := pc.st.AuditPage(context.Background(), veil.AuditFilter{Actions: []string{action}})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestOIDC_RefusesWhatItMust: single sign-on logs a person in with the
// roles her groups map to, bound to her (the audit row names her); a
// tampered ID token, another audience, an expired token, a key not in the
// issuer's set, another nonce, a replayed state, a callback in another
// browser and a person with no mapped group are each refused; a session
// cookie used after logout is refused.
func TestOIDC_RefusesWhatItMust(t *testing.T) {
	pc := newPeopleConsole(t)
	alice := newBrowser()
	if !pc.sso(t, alice, "alice@example.com") {
		t.Fatal("alice's single sign-on did not log her in")
	}
	resp, err := alice.Get(pc.srv.URL + "/console/events")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `id="actor">user:alice@example.com<`) || !strings.Contains(string(page), `id="roles">reviewer<`) {
		t.Fatalf("the session is not alice's, as a reviewer:\n%s", page)
	}
	if rows := pc.rows(t, veil.ActionLogin); len(rows) != 1 || rows[0].Actor != "user:alice@example.com" || !strings.Contains(rows[0].Detail, "via=oidc") {
		t.Fatalf("login rows: %+v", rows)
	}
	// A reviewer is not an admin.
	if pc.opens(t, alice, "/console/subjects") {
		t.Fatal("a reviewer opened the subjects page (privacy and auditors only)")
	}

	for name, knob := range map[string]func(p *oidctest.Provider){
		"tampered signature": func(p *oidctest.Provider) { p.Tamper = true },
		"wrong audience":     func(p *oidctest.Provider) { p.Audience = "another-client" },
		"expired token":      func(p *oidctest.Provider) { p.Lifetime = -time.Minute },
		"foreign key":        func(p *oidctest.Provider) { p.ForeignKey = true },
		"nonce mismatch":     func(p *oidctest.Provider) { p.Nonce = "not-the-one-sent" },
	} {
		pc.idp.Set(knob)
		if pc.sso(t, newBrowser(), "alice@example.com") {
			t.Errorf("%s: logged in", name)
		}
		pc.idp.Reset()
	}
	if pc.sso(t, newBrowser(), "nobody@example.com") {
		t.Error("a person none of whose groups has a role logged in")
	}

	// A replayed state: the callback URL used once works, a second time
	// it is refused (even by a provider that would take its code again);
	// and a callback taken to another browser is refused.
	pc.idp.Set(func(p *oidctest.Provider) { p.ReusableCodes = true })
	defer pc.idp.Reset()
	for _, replay := range []bool{true, false} {
		b := newBrowser()
		b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if req.URL.Path == "/console/oidc/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		}
		pc.idp.Set(func(p *oidctest.Provider) { p.AutoLogin = "alice@example.com" })
		resp, err := b.Get(pc.srv.URL + "/console/oidc/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		callback := resp.Header.Get("Location")
		if !strings.Contains(callback, "/console/oidc/callback?code=") {
			t.Fatalf("no callback: %d %q", resp.StatusCode, callback)
		}
		if !replay {
			other := newBrowser()
			if resp, err = other.Get(callback); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if pc.opens(t, other, "/console/events") {
				t.Error("a callback opened in another browser logged it in")
			}
			continue
		}
		cb, _ := url.Parse(callback)
		bound := b.Jar.Cookies(cb) // the cookie that binds the login to this browser
		b.CheckRedirect = nil
		if resp, err = b.Get(callback); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !pc.opens(t, b, "/console/events") {
			t.Fatal("the callback's first use did not log in")
		}
		again := newBrowser()
		again.Jar.SetCookies(cb, bound) // even with the binding cookie the first use had
		if len(bound) == 0 {
			t.Fatal("no cookie binds the login to its browser")
		}
		if resp, err = again.Get(callback); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if strings.Contains(resp.Request.URL.String(), "failed=sso") == false {
			t.Errorf("a replayed state was not refused: ended at %s", resp.Request.URL)
		}
	}
	if n := len(pc.rows(t, veil.ActionLogin)); n != 2 {
		t.Errorf("%d login rows, want 2 (alice, and the callback's first use)", n)
	}
	pc.idp.Reset()

	// Logout ends the session server-side: the same cookie, sent again,
	// is refused.
	u, _ := url.Parse(pc.srv.URL)
	kept := alice.Jar.Cookies(u)
	resp, err = alice.Get(pc.srv.URL + "/console/events")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
	noFollow := *alice
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, err = noFollow.PostForm(pc.srv.URL+"/console/logout", url.Values{"csrf": {string(csrf[1])}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, pc.idp.Issuer+"/logout") {
		t.Errorf("logout went to %q, want the provider's end_session_endpoint", loc)
	}
	replayed := newBrowser()
	replayed.Jar.SetCookies(u, kept)
	if pc.opens(t, replayed, "/console/events") {
		t.Fatal("the session cookie still works after logout")
	}
	if rows := pc.rows(t, veil.ActionLogout); len(rows) != 1 || rows[0].Actor != "user:alice@example.com" {
		t.Fatalf("logout rows: %+v", rows)
	}
	// A session ends when unused for session_idle (30 minutes), however
	// long it has left before session_max.
	idle := newBrowser()
	if !pc.sso(t, idle, "audrey@example.com") {
		t.Fatal("audrey's single sign-on did not log her in")
	}
	for range 3 {
		pc.advance(29 * time.Minute)
		if !pc.opens(t, idle, "/console/audit") {
			t.Fatal("a session used every 29 minutes ended")
		}
	}
	pc.advance(31 * time.Minute)
	if pc.opens(t, idle, "/console/audit") {
		t.Fatal("a session unused for 31 minutes still works")
	}
}

// TestLocalLogin_BruteForce: 200 wrong passwords for one user within a
// minute lock her out (the right password is refused too) and cost at
// most 10 audit rows; after the lockout the one-time password logs in and
// must be changed before anything else.
func TestLocalLogin_BruteForce(t *testing.T) {
	pc := newPeopleConsole(t)
	ctx := context.Background()
	if err := pc.st.AddUser(ctx, "priya@example.com", []string{veil.RolePrivacy}, auth.HashPassword("one-time-password"), "break-glass:cli"); err != nil {
		t.Fatal(err)
	}
	before := pc.auditRows(t)
	login := func(client *http.Client, password string) int {
		t.Helper()
		resp, err := client.Get(pc.srv.URL + "/console/login")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
		noFollow := *client
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err = noFollow.PostForm(pc.srv.URL+"/console/login", url.Values{"user": {"priya@example.com"}, "password": {password},
			"csrf": {string(csrf[1])}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	attacker := newBrowser()
	codes := map[int]int{}
	for i := range 200 {
		codes[login(attacker, "guess-"+string(rune('a'+i%26)))]++
		pc.advance(250 * time.Millisecond) // 200 in 50 seconds
	}
	if codes[http.StatusSeeOther] == 0 || codes[http.StatusTooManyRequests] == 0 {
		t.Fatalf("answers to 200 wrong passwords: %v, want some failures and then throttling", codes)
	}
	users, err := pc.st.Users(ctx)
	if err != nil || len(users) != 1 || !users[0].LockedUntil.After(time.Unix(0, pc.now.Load())) {
		t.Fatalf("priya is not locked out: %+v %v", users, err)
	}
	pc.advance(2 * time.Minute) // past the address's throttle, not the lockout
	if code := login(newBrowser(), "one-time-password"); code != http.StatusForbidden {
		t.Fatalf("the right password while locked out: %d, want 403", code)
	}
	pc.guard.Flush(true)
	if n := pc.auditRows(t) - before; n > 10 {
		t.Fatalf("200 wrong passwords cost %d audit rows, want at most 10", n)
	}
	if rows := pc.rows(t, veil.ActionUserLocked); len(rows) != 1 || rows[0].Actor != "user:priya@example.com" {
		t.Fatalf("user_locked rows: %+v", rows)
	}

	pc.advance(auth.LockFor)
	priya := newBrowser()
	if code := login(priya, "one-time-password"); code != http.StatusSeeOther {
		t.Fatalf("the one-time password after the lockout: %d", code)
	}
	if pc.opens(t, priya, "/console/subjects") {
		t.Fatal("a one-time password's session opened a page before choosing a new password")
	}
	resp, err := priya.Get(pc.srv.URL + "/console/password")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
	if resp, err = priya.PostForm(pc.srv.URL+"/console/password", url.Values{"csrf": {string(csrf[1])}, "current": {"one-time-password"},
		"new": {"a long passphrase of hers"}, "again": {"a long passphrase of hers"}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !pc.opens(t, priya, "/console/subjects") {
		t.Fatal("after choosing a password, the privacy officer cannot open the subjects page")
	}
	if code := login(newBrowser(), "a long passphrase of hers"); code != http.StatusSeeOther {
		t.Fatalf("the new password: %d", code)
	}
}

func (pc *peopleConsole) auditRows(t *testing.T) int {
	t.Helper()
	pc.st.Flush(context.Background())
	rows, err := pc.st.AuditPage(context.Background(), veil.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// TestOIDC_LoginFloodIsBounded: login starts nobody finishes cost at most
// MaxPending rows; past it a start is refused (503) until they expire.
func TestOIDC_LoginFloodIsBounded(t *testing.T) {
	pc := newPeopleConsole(t)
	pc.st.MaxPending = 20
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	codes := map[int]int{}
	for range 50 {
		resp, err := client.Get(pc.srv.URL + "/console/oidc/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusSeeOther] != 20 || codes[http.StatusServiceUnavailable] != 30 {
		t.Fatalf("50 login starts: %v, want 20 sent to the provider and 30 refused", codes)
	}
	pc.advance(11 * time.Minute) // they expire and are swept
	if !pc.sso(t, newBrowser(), "alice@example.com") {
		t.Fatal("a login after the flood expired did not work")
	}
}
