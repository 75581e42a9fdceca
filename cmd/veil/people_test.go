package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/veilhq/veil/internal/oidctest"
)

// freeAddr is a loopback address nothing listens on (the console's
// callback must be registered at the provider before veil starts).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ssoLogin logs the browser in through the provider's own login form.
func (c *chrome) ssoLogin(email, password string) {
	c.t.Helper()
	c.step("single sign-on as "+email, chromedp.Navigate(c.base+"/console/login"), chromedp.Click(chromedp.ID("sso")),
		chromedp.WaitVisible(chromedp.ID("idp-email")), chromedp.SendKeys(chromedp.ID("idp-email"), email),
		chromedp.SendKeys(chromedp.ID("idp-password"), password), chromedp.Click(chromedp.ID("idp-login")),
		chromedp.WaitVisible(chromedp.ID("queue")))
	if got := c.text("actor"); got != "user:"+email {
		c.t.Fatalf("logged in as %q, want user:%s", got, email)
	}
}

func (c *chrome) logout() {
	c.t.Helper()
	c.step("log out", chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitReady(chromedp.CSS("body")))
}

// ssoClient logs an HTTP client in through the provider (without its
// form) and returns it with a CSRF token of its session.
func ssoClient(t *testing.T, idp *oidctest.Provider, base, email string) (*http.Client, string) {
	t.Helper()
	idp.Set(func(p *oidctest.Provider) { p.AutoLogin = email })
	defer idp.Set(func(p *oidctest.Provider) { p.AutoLogin = "" })
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(base + "/console/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	code, page := getPage(t, c, base+"/console/audit")
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if code != http.StatusOK || m == nil || !strings.Contains(page, "user:"+email) {
		t.Fatalf("%s's single sign-on: %d\n%s", email, code, page)
	}
	return c, m[1]
}

// TestPeople_FourEyesThroughSSO is the review of a destination that needs
// two people, in Chromium against the real binary and an OpenID Connect
// provider on loopback: alice (admin and reviewer) reloads the changed
// policy from the console and may then not approve what it releases; bob
// approves (1 of 2, nothing is sent), logs out, carol logs in and
// approves: the sink receives it, and the audit rows name each of them.
// An auditor logged in through the provider sees no held body and no
// payload value on any page, and every admin, privacy and reviewer POST
// is 403 for her, and every admin and privacy POST for a reviewer, with
// or without the session's CSRF token. A reviewer at a terminal (her own
// API token) sees the body, its categories and who approved.
func TestPeople_FourEyesThroughSSO(t *testing.T) {
	exe := chromiumPath(t)
	addr := freeAddr(t)
	base := "http://" + addr
	idp := oidctest.Start(t, "veil-console", "e2e-client-secret", base+"/console/oidc/callback",
		oidctest.User{Subject: "u-alice", Email: "alice@example.com", Password: "alice-pw", Groups: []string{"veil-admins", "veil-reviewers"}},
		oidctest.User{Subject: "u-bob", Email: "bob@example.com", Password: "bob-pw", Groups: []string{"veil-reviewers"}},
		oidctest.User{Subject: "u-carol", Email: "carol@example.com", Password: "carol-pw", Groups: []string{"veil-reviewers"}},
		oidctest.User{Subject: "u-audrey", Email: "audrey@example.com", Password: "audrey-pw", Groups: []string{"veil-auditors"}})
	s := newSink(t, func(int, http.ResponseWriter) int { return 200 })
	dir := t.TempDir()
	config := writeConfigDests(t, dir, fmt.Sprintf(`auditor_token: %s
policy_watch: false
auth:
  oidc:
    issuer: %q
    client_id: veil-console
    client_secret: e2e-client-secret
    redirect_url: %q
    role_map:
      veil-admins: [admin]
      veil-reviewers: [reviewer]
      veil-auditors: [auditor]
destinations:`, auditorToken, idp.Issuer, base+"/console/oidc/callback")+
		destination("hris-4eyes", s.URL+"/hris", 3, "review: {approvers: 2}")+"\n")
	cfgText, _ := os.ReadFile(config)
	os.WriteFile(config, []byte(strings.Replace(string(cfgText), `listen: "127.0.0.1:0"`, fmt.Sprintf("listen: %q", addr), 1)), 0o600)
	p := startVeil(t, config, &syncBuffer{})
	defer p.stop(t)
	client := &http.Client{Timeout: 10 * time.Second}
	for n := range 2 {
		if status, _, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, 900+n), fmt.Sprint("four-eyes-", n)); err != nil || status != 200 {
			t.Fatalf("send: %d %v", status, err)
		}
	}
	var ids []string
	waitFor(t, "two held deliveries", func() bool {
		code, out := runVeil(t, "review", "list", "--config", config, "--url", p.url)
		ids = regexp.MustCompile(`dlv_[0-9a-v]+`).FindAllString(out, -1)
		return code == 0 && len(ids) == 2
	})
	first := ids[0]

	// alice changes the destination's policy (a comment will do) and
	// reloads it from the console: the load is hers.
	rego := filepath.Join(dir, "policies", "bi_events.rego")
	src, _ := os.ReadFile(rego)
	os.WriteFile(rego, append(src, []byte("\n# reviewed with the works council\n")...), 0o644)
	alice := newChrome(t, exe, p.url)
	alice.ssoLogin("alice@example.com", "alice-pw")
	alice.step("reload the policies", chromedp.Navigate(p.url+"/console/policies"), chromedp.Click(chromedp.ID("reload")),
		chromedp.WaitVisible(chromedp.ID("notice")))
	if n := alice.text("notice"); !strings.Contains(n, "Policies reloaded") {
		t.Fatalf("reload: %q", n)
	}
	alice.step("alice approves", chromedp.Navigate(p.url+"/console/review/"+first), chromedp.Click(chromedp.ID("approve-"+first)),
		chromedp.WaitVisible(chromedp.ID("notice")))
	if n := alice.text("notice"); !strings.Contains(n, "You changed hris-4eyes's policy") {
		t.Fatalf("the policy's author approving: %q", n)
	}

	bob := newChrome(t, exe, p.url)
	bob.ssoLogin("bob@example.com", "bob-pw")
	bob.step("bob approves", chromedp.Navigate(p.url+"/console/review/"+first), chromedp.WaitVisible(chromedp.ID("approvals")),
		chromedp.Click(chromedp.ID("approve-"+first)), chromedp.WaitVisible(chromedp.ID("notice")))
	bob.step("the list", chromedp.Navigate(p.url+"/console/review"), chromedp.WaitVisible(chromedp.ID("r-"+first)))
	if row := bob.text("r-" + first); !strings.Contains(row, "user:bob@example.com") || !strings.Contains(row, "1 of 2") {
		t.Fatalf("the review list after bob's approval: %q", row)
	}
	bob.shot("review-four-eyes")
	bob.logout()
	time.Sleep(300 * time.Millisecond)
	if n := len(s.requests()); n != 0 {
		t.Fatalf("the sink got %d deliveries after one of two approvals", n)
	}

	carol := newChrome(t, exe, p.url)
	carol.ssoLogin("carol@example.com", "carol-pw")
	carol.step("carol approves", chromedp.Navigate(p.url+"/console/review/"+first), chromedp.Click(chromedp.ID("approve-"+first)),
		chromedp.WaitVisible(chromedp.ID("notice")))
	waitFor(t, "the approved delivery at the sink", func() bool { return len(s.requests()) == 1 })
	if got := s.requests(); got[0].webhookID != first {
		t.Fatalf("the sink got %s, want %s", got[0].webhookID, first)
	}

	// A reviewer at a terminal, with her own token: the body, its
	// categories, who approved; her approval is audited under her token.
	code, out := runVeil(t, "token", "create", "--name", "dana-cli", "--role", "reviewer", "--expires", "1d", "--config", config)
	secret := regexp.MustCompile(`vt_[A-Za-z0-9_-]+`).FindString(out)
	if code != 0 || secret == "" {
		t.Fatalf("token create: %d\n%s", code, out)
	}
	t.Setenv("VEIL_TOKEN", secret)
	code, out = runVeil(t, "review", "show", ids[1], "--config", config, "--url", p.url)
	if code != 0 || !strings.Contains(out, "categories: ") || !strings.Contains(out, "user.unique_id") || !strings.Contains(out, "body:") ||
		!strings.Contains(out, "approved by: nobody yet (0 of 2)") {
		t.Fatalf("review show: %d\n%s", code, out)
	}
	if code, out := runVeil(t, "review", "show", "dlv_nosuch", "--config", config, "--url", p.url); code == 0 ||
		!strings.Contains(out, "No delivery dlv_nosuch is held for review") {
		t.Fatalf("review show of a delivery not held: %d\n%s", code, out)
	}
	if code, out = runVeil(t, "review", "approve", ids[1], "--config", config, "--url", p.url); code != 0 || !strings.Contains(out, "1 of 2") {
		t.Fatalf("the token's approval: %d\n%s", code, out)
	}
	t.Setenv("VEIL_TOKEN", "")

	// The auditor: no held body, no payload value, on any page.
	audrey := newChrome(t, exe, p.url)
	audrey.ssoLogin("audrey@example.com", "audrey-pw")
	pages := []string{"/console/", "/console/events", "/console/dead", "/console/review", "/console/review/" + ids[1], "/console/policies",
		"/console/audit", "/console/processing", "/console/consumers", "/console/subjects?ref=greenhouse:candidate:70000901"}
	_, evOut := runVeil(t, "review", "list", "--config", config, "--url", p.url)
	for _, id := range regexp.MustCompile(`evt_[0-9a-v]+`).FindAllString(evOut, -1) {
		pages = append(pages, "/console/events/"+id, "/console/policies?event="+id)
	}
	for _, pg := range pages {
		audrey.step("auditor "+pg, chromedp.Navigate(p.url+pg), chromedp.WaitReady(chromedp.CSS("main")))
		h := audrey.html()
		if audrey.count("pre.body") != 0 {
			t.Errorf("the auditor sees a body on %s", pg)
		}
		canaries := consoleCanaries
		if !strings.Contains(pg, "70000901") { // the reference she asked for, echoed in its own form
			canaries = append(canaries, "70000901")
		}
		for _, c := range canaries {
			if strings.Contains(h, c) {
				t.Errorf("the auditor sees %q on %s", c, pg)
			}
		}
	}

	// Every admin, privacy and reviewer POST, as the auditor and as a
	// reviewer, with and without the session's CSRF token: 403.
	auditorHTTP, auditorCSRF := ssoClient(t, idp, p.url, "audrey@example.com")
	reviewerHTTP, reviewerCSRF := ssoClient(t, idp, p.url, "bob@example.com")
	adminPosts := []string{"/console/dead/replay", "/console/dead/replay-all", "/console/destinations/hris-4eyes/pause",
		"/console/consumers", "/console/consumers/x/revoke", "/console/policies/reload", "/console/policies/impact",
		"/console/subjects/erase"}
	reviewPosts := []string{"/console/review/" + ids[1] + "/approve", "/console/review/" + ids[1] + "/reject", "/console/review/bulk"}
	for _, tc := range []struct {
		who    string
		c      *http.Client
		csrf   string
		routes []string
	}{{"auditor", auditorHTTP, auditorCSRF, append(adminPosts, reviewPosts...)}, {"reviewer", reviewerHTTP, reviewerCSRF, adminPosts}} {
		for _, route := range tc.routes {
			for _, csrf := range []string{tc.csrf, ""} {
				resp, err := tc.c.PostForm(p.url+route, url.Values{"csrf": {csrf}, "id": {ids[1]}, "verb": {"approve"}, "name": {"x"},
					"purposes": {"x"}, "ref": {"greenhouse:candidate:70000901"}, "reason": {"x"}, "rego": {"package x"}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s POST %s (csrf %t): %d, want 403", tc.who, route, csrf != "", resp.StatusCode)
				}
			}
		}
	}

	// Who did what, by name.
	code, out = runVeil(t, "audit", "export", "--format", "csv", "--config", config)
	if code != 0 {
		t.Fatalf("export: %d\n%s", code, out)
	}
	for _, want := range []string{
		",policy_loaded,user:alice@example.com,", ",review_approved,user:bob@example.com,", ",review_approved,user:carol@example.com,",
		",review_approved,token:dana-cli,", ",login,user:audrey@example.com,", ",logout,user:bob@example.com,", ",token_created,break-glass:cli,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit log has no %s row", strings.Trim(want, ","))
		}
	}
	if strings.Contains(out, ",review_approved,user:alice@example.com,") {
		t.Error("alice's refused approval was recorded as an approval")
	}
	for _, c := range consoleCanaries {
		if strings.Contains(out, c) {
			t.Errorf("the audit log holds %q", c)
		}
	}
	if !strings.Contains(out, "changed=veil.destinations.bi_events") {
		t.Error("the policy load does not name the changed package")
	}
}
