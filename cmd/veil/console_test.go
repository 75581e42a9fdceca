package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/internal/testenv"
)

// consoleScreens is where the browser test leaves a screenshot of each
// console page (README names it), for a person to look at.
func consoleScreens(t *testing.T) string {
	dir := os.Getenv("VEIL_CONSOLE_SCREENS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "veil-console-screens")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chromiumPath finds Debian's chromium; without it the browser tests skip,
// and fail under CI (.ci/run installs it).
func chromiumPath(t *testing.T) string {
	testenv.Slow(t, "drives Chromium")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium: CI installs Debian's chromium package (.ci/run)")
	}
	t.Skip("no chromium on this machine (apt-get install chromium)")
	return ""
}

// chrome is one headless Chromium tab on the console under test; each
// step is bounded, the browser lives as long as the test.
type chrome struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func newChrome(t *testing.T, exe, base string) *chrome {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // starts the browser, without a timeout
		t.Fatal(err)
	}
	return &chrome{t: t, ctx: ctx, base: base}
}

func (c *chrome) limit() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, 30*time.Second)
}

func (c *chrome) step(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := c.limit()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// text is the text of the element with id.
func (c *chrome) text(id string) string {
	c.t.Helper()
	ctx, cancel := c.limit()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		c.t.Fatalf("text of #%s: %v", id, err)
	}
	return v
}

func (c *chrome) html() string {
	c.t.Helper()
	ctx, cancel := c.limit()
	defer cancel()
	h, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

// count is how many elements match the CSS selector sel.
func (c *chrome) count(sel string) int {
	c.t.Helper()
	ctx, cancel := c.limit()
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// shot leaves a screenshot of the page in consoleScreens.
func (c *chrome) shot(name string) {
	c.t.Helper()
	ctx, cancel := c.limit()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(consoleScreens(c.t), name+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chrome) login(token string) {
	c.t.Helper()
	c.step("log in", chromedp.Navigate(c.base+"/console/"), chromedp.Click(chromedp.CSS("form.login summary")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("queue")))
}

const auditorToken = "e2e-auditor-token"

// consoleSetup starts veil serve with two destinations (one whose sink
// fails until told otherwise, one attempt only: its delivery goes dead)
// and sends a Greenhouse hire.
func consoleSetup(t *testing.T) (p *veilProc, ok, flaky *sink, healthy *atomic.Bool, eventID string) {
	t.Helper()
	healthy = &atomic.Bool{}
	ok = newSink(t, func(int, http.ResponseWriter) int { return 200 })
	flaky = newSink(t, func(int, http.ResponseWriter) int {
		if healthy.Load() {
			return 200
		}
		return 500
	})
	dir := t.TempDir()
	config := writeConfigDests(t, dir, "auditor_token: "+auditorToken+"\ndestinations:"+
		destination("bi-warehouse", ok.URL+"/bi", 3, "")+destination("flaky-bi", flaky.URL+"/flaky", 1, "")+"\n")
	p = startVeil(t, config, &syncBuffer{})
	status, out, err := postGreenhouse(context.Background(), &http.Client{Timeout: 10 * time.Second}, p.url,
		mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json"), "console-1")
	if err != nil || status != 200 {
		t.Fatalf("send: %d %v", status, err)
	}
	eventID = out["event_id"].(string)
	waitFor(t, "the delivery and the dead letter", func() bool {
		return len(ok.requests()) == 1 && len(flaky.requests()) == 1
	})
	return p, ok, flaky, healthy, eventID
}

// consoleCanaries are the hire's personal values: no console page may show one.
var consoleCanaries = []string{"Mateus", "Albuquerque", "mateus.a.ferreira", "mferreira@oldco"}

// TestConsole_Browser drives the console in headless Chromium against the
// real binary: log in, see a delivered event's body and categories, replay
// a dead delivery and see it arrive, download a CSV export; an auditor
// sees no replay button. A screenshot of each page goes to
// consoleScreens.
func TestConsole_Browser(t *testing.T) {
	exe := chromiumPath(t)
	p, _, flaky, healthy, eventID := consoleSetup(t)
	defer p.stop(t)
	downloads := t.TempDir()
	b := newChrome(t, exe, p.url)
	b.step("login page", chromedp.Navigate(p.url+"/console/login"), chromedp.WaitVisible(chromedp.ID("token")))
	b.shot("login")
	b.login("e2e-admin-token")
	// The Overview is live (it reloads itself): wait for the flaky
	// destination's failed attempt to show.
	waitFor(t, "both destinations' attempts on the Overview", func() bool {
		b.step("overview", chromedp.Navigate(p.url+"/console/"), chromedp.WaitVisible(chromedp.ID("queue")))
		return strings.Contains(b.text("h-flaky-bi"), "0.0% of 1") && strings.Contains(b.text("h-bi-warehouse"), "100.0% of 1")
	})
	if h := b.html(); !strings.Contains(h, `id="live-toggle"`) || !strings.Contains(h, `class="breaker closed"`) ||
		!strings.Contains(h, `<polyline points="0,60`) {
		t.Fatalf("the Overview has no live updates, breaker state or charts:\n%s", h)
	}
	b.shot("overview")
	b.step("events", chromedp.Navigate(p.url+"/console/events"), chromedp.WaitVisible(chromedp.ID("events")))
	if !strings.Contains(b.html(), eventID) {
		t.Fatalf("the events page does not list %s", eventID)
	}
	b.shot("events")
	b.step("event", chromedp.Click(chromedp.CSS(`a[href="/console/events/`+eventID+`"]`)),
		chromedp.WaitVisible(chromedp.ID("d-bi-warehouse")))
	if h := b.html(); !strings.Contains(h, "Outbound body: what bi-warehouse receives") || !strings.Contains(h, "user.unique_id") ||
		!strings.Contains(h, `status delivered">delivered`) {
		t.Fatalf("the event page shows no delivered body with its categories:\n%s", h)
	}
	b.shot("event")

	// Replay the dead delivery once its destination is back.
	healthy.Store(true)
	b.step("dead letters", chromedp.Navigate(p.url+"/console/dead"), chromedp.WaitVisible(chromedp.ID("dead")))
	b.shot("dead-letters")
	b.step("replay", chromedp.Click(chromedp.CSS(`#dead input[type=checkbox]`)), chromedp.Click(chromedp.ID("replay")),
		chromedp.WaitVisible(chromedp.ID("notice")))
	if n := b.text("notice"); !strings.Contains(n, "1 replayed") {
		t.Fatalf("replay notice: %q", n)
	}
	waitFor(t, "the replayed delivery at its sink", func() bool {
		rs := flaky.requests()
		return len(rs) == 2 && rs[1].status == 200
	})

	// Download the audit log as CSV.
	b.step("audit", chromedp.Navigate(p.url+"/console/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	b.shot("audit")
	b.step("download", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
		return err
	}), chromedp.Click(chromedp.ID("export-csv")))
	var csv []byte
	waitFor(t, "the CSV download", func() bool {
		files, _ := filepath.Glob(filepath.Join(downloads, "veil-audit-*.csv"))
		if len(files) == 1 {
			csv, _ = os.ReadFile(files[0])
		}
		return strings.Contains(string(csv), ",replayed,")
	})
	if !strings.HasPrefix(string(csv), "seq,time,action,") {
		t.Fatalf("the download is not the CSV export: %.200s", csv)
	}
	b.step("verify", chromedp.Click(chromedp.ID("verify")), chromedp.WaitVisible(chromedp.ID("chain")))
	if c := b.text("chain"); !strings.Contains(c, "The chain verifies") {
		t.Fatalf("chain status: %q", c)
	}

	// An auditor: read-only, no replay controls.
	a := newChrome(t, exe, p.url)
	a.login(auditorToken)
	a.step("auditor dead letters", chromedp.Navigate(p.url+"/console/dead"), chromedp.WaitVisible(chromedp.ID("dead")))
	if n := a.count("#replay, #dead input[type=checkbox]"); n != 0 {
		t.Fatalf("an auditor sees %d replay controls", n)
	}
	a.shot("dead-letters-auditor")
}

// consoleClient logs in over HTTP with token and returns a client holding
// the session cookie, the login answer's cookies, and the CSRF token the
// pages carry.
func consoleClient(t *testing.T, base, token string) (*http.Client, []*http.Cookie, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
	resp, err = c.PostForm(base+"/console/login", url.Values{"token": {token}, "csrf": {string(csrf[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	resp, err = c.Get(base + "/console/dead")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the dead-letter page:\n%s", page)
	}
	return c, cookies, string(m[1])
}

// TestConsole_Security: the session cookie's flags, the CSP on every page,
// CSRF on every state-changing request, the auditor's POSTs refused, an
// unauthenticated request sent to the login page, and no payload value on
// any console page (the canary sweep).
func TestConsole_Security(t *testing.T) {
	p, _, _, _, eventID := consoleSetup(t)
	defer p.stop(t)
	admin, cookies, csrf := consoleClient(t, p.url, "e2e-admin-token")
	var session *http.Cookie
	for _, c := range cookies {
		if c.Name == "veil_console" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.MaxAge <= 0 {
		t.Fatalf("session cookie: %+v, want HttpOnly, SameSite=Strict, expiring", session)
	}
	// Behind TLS (a proxy that says so) the cookie is Secure.
	_, tlsCookies, _ := func() (*http.Client, []*http.Cookie, string) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest(http.MethodGet, p.url+"/console/login", nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tok := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)[1]
		form := url.Values{"token": {"e2e-admin-token"}, "csrf": {string(tok)}}
		req, _ = http.NewRequest(http.MethodPost, p.url+"/console/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-Proto", "https")
		for _, c := range resp.Cookies() {
			req.AddCookie(c)
		}
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return nil, resp.Cookies(), ""
	}()
	for _, c := range tlsCookies {
		if c.Name == "veil_console" && !c.Secure {
			t.Fatalf("behind TLS the session cookie is not Secure: %+v", c)
		}
	}

	pages := []string{"/console/", "/console/events", "/console/events/" + eventID, "/console/dead", "/console/audit",
		"/console/consumers", "/console/policies", "/console/policies?event=" + eventID, "/console/review", "/console/subjects",
		"/console/audit/export?format=csv", "/console/audit/export?format=jsonl", "/console/login",
		"/console/?range=1h", "/console/?range=7d", "/console/events?id=88190254", "/console/events?type=application.hired",
		"/console/dead?reason=http", "/console/dead?confirm=1", "/console/processing",
		"/console/audit?subject=greenhouse:candidate:61548830", "/console/audit/export?format=csv&subject=greenhouse:candidate:61548830"}
	for _, path := range pages {
		resp, err := admin.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Fatalf("%s: CSP %q", path, csp)
		}
		for _, v := range consoleCanaries {
			if strings.Contains(string(body), v) {
				t.Errorf("%s shows a payload value (%q)", path, v)
			}
		}
	}

	post := func(c *http.Client, path string, form url.Values) int {
		resp, err := c.PostForm(p.url+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	dead := func() string {
		resp, _ := admin.Get(p.url + "/console/dead")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="id" value="(dlv_[0-9a-v]+)"`).FindStringSubmatch(string(b))
		if m == nil {
			t.Fatal("no dead delivery listed")
		}
		return m[1]
	}
	id := dead()
	// Every state-changing form of the console, with what it needs but a
	// valid CSRF token.
	forms := map[string]url.Values{
		"/console/dead/replay":                 {"id": {id}},
		"/console/logout":                      {},
		"/console/review/dlv_x/approve":        {},
		"/console/review/dlv_x/reject":         {"reason": {"no"}},
		"/console/subjects/erase":              {"ref": {"greenhouse:candidate:70000001"}},
		"/console/consumers":                   {"name": {"sneaky"}, "purposes": {"onboarding"}},
		"/console/consumers/sneaky/revoke":     {},
		"/console/policies/impact":             {"dir": {"policies"}},
		"/console/dead/replay-all":             {"destination": {"flaky-bi"}},
		"/console/destinations/flaky-bi/pause": {"reason": {"no"}},
		"/console/review/bulk":                 {"id": {"dlv_x"}, "verb": {"reject"}, "reason": {"no"}},
	}
	for path, form := range forms {
		for name, token := range map[string][]string{"no token": nil, "wrong token": {"0123"}} {
			f := url.Values{"csrf": token}
			for k, v := range form {
				f[k] = v
			}
			if code := post(admin, path, f); code != http.StatusForbidden {
				t.Fatalf("%s with %s: %d, want 403", path, name, code)
			}
		}
	}
	if code := post(&http.Client{}, "/console/login", url.Values{"token": {"e2e-admin-token"}}); code != http.StatusForbidden {
		t.Fatalf("login without its CSRF token: %d, want 403", code)
	}
	auditor, _, auditorCSRF := consoleClient(t, p.url, auditorToken)
	for path, form := range forms {
		if path == "/console/logout" {
			continue // an auditor may log out
		}
		f := url.Values{"csrf": {auditorCSRF}}
		for k, v := range form {
			f[k] = v
		}
		if code := post(auditor, path, f); code != http.StatusForbidden {
			t.Fatalf("an auditor's POST %s: %d, want 403", path, code)
		}
	}
	if dead() != id {
		t.Fatal("a refused replay replayed")
	}
	if resp, err := admin.Get(p.url + "/console/consumers"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "sneaky") {
			t.Fatal("a refused POST added a consumer")
		}
	}
	if code := post(admin, "/console/dead/replay", url.Values{"id": {id}, "csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("the admin's replay with the token: %d, want 303", code)
	}
	// Without a session: the login page, not the console.
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(p.url + "/console/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("no session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_ = fmt.Sprint
}

// TestConsole_Review: a destination with review: true holds both events'
// deliveries; in the browser one is approved and the other rejected with a
// reason; the sink receives only the approved one; `veil review list`
// shows the queue empty afterwards.
func TestConsole_Review(t *testing.T) {
	exe := chromiumPath(t)
	s := newSink(t, func(int, http.ResponseWriter) int { return 200 })
	dir := t.TempDir()
	config := writeConfigDests(t, dir, "auditor_token: "+auditorToken+"\ndestinations:"+
		destination("offers-review", s.URL+"/offers", 3, "review: true\n    review_ttl: 1h")+"\n")
	p := startVeil(t, config, &syncBuffer{})
	defer p.stop(t)
	client := &http.Client{Timeout: 10 * time.Second}
	for n := range 2 {
		status, _, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, 500+n), fmt.Sprint("review-", n))
		if err != nil || status != 200 {
			t.Fatalf("send: %d %v", status, err)
		}
	}
	code, out := runVeil(t, "review", "list", "--config", config, "--url", p.url)
	if code != 0 || !strings.Contains(out, "2 deliveries held for review") {
		t.Fatalf("review list: %d\n%s", code, out)
	}
	ids := regexp.MustCompile(`dlv_[0-9a-v]+`).FindAllString(out, -1)
	time.Sleep(300 * time.Millisecond)
	if n := len(s.requests()); n != 0 {
		t.Fatalf("the sink got %d held deliveries before any decision", n)
	}

	// An auditor sees what waits, and no control to decide it.
	a := newChrome(t, exe, p.url)
	a.login(auditorToken)
	a.step("auditor review page", chromedp.Navigate(p.url+"/console/review"), chromedp.WaitVisible(chromedp.ID("r-"+ids[0])))
	if n := a.count("[id^=pick-], #bulk-approve, #bulk-reject"); n != 0 {
		t.Fatalf("an auditor sees %d review controls", n)
	}
	// ...and never the body a held delivery would send: its page is a
	// reviewer's.
	a.step("auditor review item", chromedp.Navigate(p.url+"/console/review/"+ids[0]), chromedp.WaitVisible(chromedp.CSS("main")))
	if h := a.html(); !strings.Contains(h, "This needs the reviewer role") || strings.Contains(h, "would receive") ||
		a.count("[id^=approve-], [id^=reject-], [id^=reason-]") != 0 {
		t.Fatalf("an auditor opened a held delivery's page:\n%s", h)
	}
	b := newChrome(t, exe, p.url)
	b.login("e2e-admin-token")
	b.step("review page", chromedp.Navigate(p.url+"/console/review"), chromedp.WaitVisible(chromedp.ID("r-"+ids[0])))
	if n := b.count("#review input[type=checkbox]"); n != 2 || !strings.Contains(b.text("review-count"), "2 waiting") ||
		!strings.Contains(b.text("r-"+ids[0]), "offers-review") || !strings.Contains(b.text("r-"+ids[0]), "59m") ||
		!strings.Contains(b.text("r-"+ids[0]), "user.unique_id") {
		t.Fatalf("the review list: %d checkboxes, count %q, row %q", n, b.text("review-count"), b.text("r-"+ids[0]))
	}
	b.shot("review")
	// Open the first and approve it; reject the second from the list.
	b.step("open one", chromedp.Click(chromedp.ID("open-"+ids[0])), chromedp.WaitVisible(chromedp.ID("approve-"+ids[0])))
	if h := b.html(); !strings.Contains(h, "What offers-review would receive") || !strings.Contains(h, "user.unique_id") {
		t.Fatalf("the held delivery's page shows no body or categories:\n%s", h)
	}
	b.shot("review-one")
	b.step("approve", chromedp.Click(chromedp.ID("approve-"+ids[0])), chromedp.WaitVisible(chromedp.ID("notice")))
	b.step("bulk reject without a reason", chromedp.Navigate(p.url+"/console/review"), chromedp.Click(chromedp.ID("pick-"+ids[1])), chromedp.Click(chromedp.ID("bulk-reject")),
		chromedp.WaitVisible(chromedp.ID("notice")))
	if n := b.text("notice"); !strings.Contains(n, "Say why") {
		t.Fatalf("a rejection without a reason: %q", n)
	}
	b.step("bulk reject", chromedp.Click(chromedp.ID("pick-"+ids[1])), chromedp.SendKeys(chromedp.ID("bulk-reason"), "not for this tool"),
		chromedp.Click(chromedp.ID("bulk-reject")), chromedp.WaitVisible(chromedp.ID("empty")))
	waitFor(t, "the approved delivery at the sink", func() bool { return len(s.requests()) == 1 })
	time.Sleep(500 * time.Millisecond)
	got := s.requests()
	if len(got) != 1 || got[0].webhookID != ids[0] {
		t.Fatalf("the sink got %+v, want only %s", got, ids[0])
	}
	code, out = runVeil(t, "review", "list", "--config", config, "--url", p.url)
	if code != 0 || !strings.Contains(out, "0 deliveries held") {
		t.Fatalf("review list after: %d\n%s", code, out)
	}
	if code, out := runVeil(t, "review", "approve", ids[1], "--config", config, "--url", p.url); code == 0 || !strings.Contains(out, "not waiting for review") {
		t.Fatalf("approving a rejected delivery: %d\n%s", code, out)
	}
}

// TestConsole_Subject: an access report and an erasure, in the browser.
// The report (console, `veil report subject`) lists exactly the transfers
// the sink received and the consumer's lookup; the erasure's receipt names
// both recipients and verifies with `veil audit verify-receipt` (and not
// once altered); the event's lookup then answers 410.
func TestConsole_Subject(t *testing.T) {
	exe := chromiumPath(t)
	s := newBodySink(t)
	dir := t.TempDir()
	config := writeConfigDests(t, dir, fmt.Sprintf(`auditor_token: `+auditorToken+`
destinations:
  - {name: bi-warehouse, url: "%s/bi", sources: [greenhouse], policy: veil.destinations.bi_events, allow_private_network: true,
     processor: {name: Warehouse Co, dpa: DPA-9, purpose: pipeline analytics, legal_basis: legitimate interest}}
`, s.URL))
	code, out := runVeil(t, "consumer", "add", "onboarding", "--purpose", "onboarding", "--config", config)
	if code != 0 {
		t.Fatal(out)
	}
	key := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	p := startVeil(t, config, &syncBuffer{})
	defer p.stop(t)
	client := &http.Client{Timeout: 10 * time.Second}
	const ref = "greenhouse:candidate:70000077"
	var events []string
	for n := range 2 {
		body := greenhouseBody(t, 77)
		if n == 1 {
			body = bytes.Replace(body, []byte(`"hire_candidate"`), []byte(`"candidate_stage_change"`), 1)
		}
		status, out, err := postGreenhouse(context.Background(), client, p.url, body, fmt.Sprint("subject-", n))
		if err != nil || status != 200 {
			t.Fatalf("send: %d %v", status, err)
		}
		events = append(events, out["event_id"].(string))
	}
	waitFor(t, "both deliveries", func() bool { return len(s.got("/bi")) == 2 })
	lookup := func() int {
		code, _ := lookupRecord(t, p.url, events[0], key, "onboarding")
		return code
	}
	if c := lookup(); c != 200 {
		t.Fatalf("lookup: %d", c)
	}

	// The CLI report against what the sink received.
	code, out = runVeil(t, "report", "subject", ref, "--format", "json", "--config", config)
	if code != 0 {
		t.Fatalf("report subject: %s", out)
	}
	var rep veil.SubjectReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	bodies := s.got("/bi")
	if rep.Events != 2 || len(rep.Transfers) != len(bodies) || len(rep.Lookups) != 1 || rep.Lookups[0].Recipient != "onboarding" {
		t.Fatalf("report: %d events, %d transfers (sink got %d), %d lookups", rep.Events, len(rep.Transfers), len(bodies), len(rep.Lookups))
	}
	for i, tr := range rep.Transfers {
		if tr.Recipient != "bi-warehouse" || tr.Processor != "Warehouse Co" || tr.LegalBasis != "legitimate interest" || len(tr.Categories) == 0 {
			t.Fatalf("transfer %d: %+v", i, tr)
		}
		var got map[string]any
		json.Unmarshal(bodies[i], &got)
		for _, f := range tr.FieldsKept {
			if _, ok := got[strings.SplitN(f, ".", 2)[0]]; !ok {
				t.Fatalf("the report says %s left, the sink's body has no %q: %s", f, f, bodies[i])
			}
		}
	}

	// An auditor reads the report and finds no way to erase.
	a := newChrome(t, exe, p.url)
	a.login(auditorToken)
	a.step("auditor report", chromedp.Navigate(p.url+"/console/subjects?ref="+ref), chromedp.WaitVisible(chromedp.ID("subject-report")))
	if n := a.count("#erase, #confirm-erase"); n != 0 {
		t.Fatalf("an auditor sees %d erase controls", n)
	}
	b := newChrome(t, exe, p.url)
	b.login("e2e-admin-token")
	b.step("report", chromedp.Navigate(p.url+"/console/subjects"), chromedp.SendKeys(chromedp.ID("ref"), ref),
		chromedp.Click(chromedp.ID("report")), chromedp.WaitVisible(chromedp.ID("subject-report")))
	page := b.text("subject-report")
	if !strings.Contains(page, "Transfers to destinations (2)") || !strings.Contains(page, "Lookups by consumers (1)") {
		t.Fatalf("the report page: %q", page)
	}
	b.shot("subjects")
	b.step("erase", chromedp.Click(chromedp.ID("erase")), chromedp.WaitVisible(chromedp.ID("confirm-erase")),
		chromedp.Click(chromedp.ID("confirm-erase")), chromedp.WaitVisible(chromedp.ID("receipt")))
	b.shot("erasure-receipt")
	recipients := b.text("recipients")
	if recipients != "bi-warehouse, consumer:onboarding" {
		t.Fatalf("recipients: %q", recipients)
	}
	receipt := b.text("receipt")
	file := filepath.Join(dir, "receipt.json")
	os.WriteFile(file, []byte(receipt), 0o600)
	if code, out := runVeil(t, "audit", "verify-receipt", file, "--config", config); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("verify-receipt: %d %s", code, out)
	}
	os.WriteFile(file, []byte(strings.Replace(receipt, `"payloads_shredded": 2`, `"payloads_shredded": 1`, 1)), 0o600)
	if code, _ := runVeil(t, "audit", "verify-receipt", file, "--config", config); code == 0 {
		t.Fatal("an altered receipt verifies")
	}
	if c := lookup(); c != http.StatusGone {
		t.Fatalf("lookup after the erasure: %d, want 410", c)
	}
}
