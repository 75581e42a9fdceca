package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeScript is axe-core from npm (testdata/axe: npm ci --prefix
// testdata/axe; .ci/run does it). Without it the check skips, and fails
// under CI.
func axeScript(t *testing.T) string {
	b, err := os.ReadFile("../../testdata/axe/node_modules/axe-core/axe.min.js")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no axe-core: CI installs it (npm ci --prefix testdata/axe)")
		}
		t.Skip("no axe-core (npm ci --prefix testdata/axe)")
	}
	return string(b)
}

// TestConsole_Accessibility runs axe-core inside Chromium on every console
// page, as an admin and as an auditor: no serious or critical violation
// of WCAG 2.x A and AA; and, at 390 px, nothing outside a table's own
// scroll box is wider than the screen.
func TestConsole_Accessibility(t *testing.T) {
	exe := chromiumPath(t)
	axe := axeScript(t)
	s := newSink(t, func(int, http.ResponseWriter) int { return 200 })
	dead := newSink(t, func(int, http.ResponseWriter) int { return 404 })
	dir := t.TempDir()
	config := writeConfigDests(t, dir, "auditor_token: "+auditorToken+"\ndestinations:"+
		destination("bi-warehouse", s.URL+"/bi", 3, "")+destination("flaky-bi", dead.URL+"/flaky", 1, "")+
		destination("offers-review", s.URL+"/offers", 3, "review: true\n    review_ttl: 1h")+"\n")
	p := startVeil(t, config, &syncBuffer{})
	defer p.stop(t)
	code, out, err := postGreenhouse(context.Background(), &http.Client{Timeout: 10 * time.Second}, p.url,
		mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json"), "a11y-1")
	if err != nil || code != 200 {
		t.Fatalf("send: %d %v", code, err)
	}
	eventID := out["event_id"].(string)
	waitFor(t, "the dead letter", func() bool { return len(dead.requests()) == 1 })
	_, held := runVeil(t, "review", "list", "--config", config, "--url", p.url)
	heldID := strings.Fields(held[strings.Index(held, "dlv_"):])[0]

	pages := []string{"/console/", "/console/events", "/console/events?id=88190254", "/console/events/" + eventID,
		"/console/dead", "/console/dead?confirm=1", "/console/review", "/console/review/" + heldID, "/console/policies",
		"/console/policies?event=" + eventID, "/console/audit", "/console/subjects",
		"/console/subjects?ref=greenhouse:candidate:61548830", "/console/subjects/erase?ref=greenhouse:candidate:61548830",
		"/console/consumers", "/console/processing", "/console/events/evt_nosuchevent"}
	for _, who := range []struct{ name, token string }{{"admin", "e2e-admin-token"}, {"auditor", auditorToken}} {
		b := newChrome(t, exe, p.url)
		b.step("login page", chromedp.Navigate(p.url+"/console/login"), chromedp.WaitVisible(chromedp.ID("token")))
		if who.name == "admin" {
			b.audit(axe, "/console/login")
		}
		b.login(who.token)
		for _, path := range pages {
			if who.name == "auditor" && strings.Contains(path, "/erase") {
				continue // an admin page
			}
			b.step(path, chromedp.Navigate(p.url+path), chromedp.WaitReady(chromedp.CSS("main")))
			b.audit(axe, who.name+" "+path)
			if who.name == "admin" {
				b.narrow(path)
			}
		}
	}
}

// audit runs axe-core on the page and fails on a serious or critical
// violation, naming the rule and the elements.
func (c *chrome) audit(axe, what string) {
	c.t.Helper()
	ctx, cancel := c.limit()
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axe+";true")); err != nil {
		c.t.Fatalf("%s: load axe: %v", what, err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}})
		.then(r => JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.html)}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("%s: axe: %v", what, err)
	}
	var vs []struct {
		ID, Impact, Help string
		Nodes            []string
	}
	if err := json.Unmarshal([]byte(res), &vs); err != nil {
		c.t.Fatalf("%s: axe's answer: %v", what, err)
	}
	for _, v := range vs {
		c.t.Errorf("%s: %s (%s): %s\n  %s", what, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
	}
}

// narrow checks the page at a phone's width (390 px): nothing but a
// table's own scroll box is wider than the screen.
func (c *chrome) narrow(what string) {
	c.t.Helper()
	ctx, cancel := c.limit()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		c.t.Fatalf("%s: viewport: %v", what, err)
	}
	defer chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000))
	over, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("main *")]
		.filter(e => !e.closest("table") && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
		.slice(0, 3).map(e => e.outerHTML.slice(0, 120)).join("\n")`))
	if err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
	if over != "" {
		c.t.Errorf("%s at 390 px: wider than the screen:\n%s", what, over)
	}
}
