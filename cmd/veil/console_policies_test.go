package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsole_PoliciesAndConsumers drives the Policies and Consumers pages
// in headless Chromium against the real binary: the running set with each
// destination's policy as written; a preview of a stored event; a draft
// folder's impact; a consumer added (its key shown once, and it works),
// then revoked (its key stops working), both audited with the session's
// role. An auditor sees none of the controls.
func TestConsole_PoliciesAndConsumers(t *testing.T) {
	exe := chromiumPath(t)
	p, _, _, _, eventID := consoleSetup(t)
	defer p.stop(t)
	b := newChrome(t, exe, p.url)
	b.login("e2e-admin-token")

	b.step("policies", chromedp.Navigate(p.url+"/console/policies"), chromedp.WaitVisible(chromedp.ID("policy-set")))
	if s := b.text("policy-set"); !strings.Contains(s, "tests passed") {
		t.Fatalf("the running set: %q", s)
	}
	if h := b.html(); !strings.Contains(h, "package veil.destinations.bi_events") || strings.Contains(h, "bi_events_test") {
		t.Fatalf("the page does not show bi-warehouse's policy as written (tests left out):\n%s", h)
	}
	b.shot("policies")

	b.step("preview", chromedp.SendKeys(chromedp.ID("preview-event"), eventID), chromedp.Click(chromedp.ID("preview")),
		chromedp.WaitVisible(chromedp.ID("preview-result")))
	if s := b.text("p-bi-warehouse"); !strings.Contains(s, "allowed: would be sent") || !strings.Contains(s, "user.unique_id") {
		t.Fatalf("the preview for bi-warehouse: %q", s)
	}
	h := b.html()
	for _, v := range consoleCanaries {
		if strings.Contains(h, v) {
			t.Errorf("the preview shows a payload value (%q)", v)
		}
	}
	b.shot("policy-preview")

	// A draft that releases first names and no longer pseudonymises ids.
	draft := filepath.Join(t.TempDir(), "draft")
	os.MkdirAll(draft, 0o755)
	os.WriteFile(filepath.Join(draft, "bi_events.rego"), []byte(`package veil.destinations.bi_events

format := "event"

allow := true

keep_categories := {"system.operations", "user.name.first"}
`), 0o644)
	b.step("impact", chromedp.SendKeys(chromedp.ID("draft-dir"), draft), chromedp.Click(chromedp.ID("impact")),
		chromedp.WaitVisible(chromedp.ID("impact-result")))
	im := b.text("impact-result")
	if !strings.Contains(im, "Compared 1 stored events") || !strings.Contains(im, "first_name: newly leaves (1 events)") ||
		!strings.Contains(im, "(pseudonymised): stops leaving (1 events)") {
		t.Fatalf("the draft's impact: %q", im)
	}
	b.shot("policy-impact")

	// The same draft pasted: the module replaces the running bi_events,
	// the other destinations keep theirs; category changes and the body
	// before and after for the event.
	b.step("paste a draft", chromedp.Navigate(p.url+"/console/policies"), chromedp.WaitVisible(chromedp.ID("draft-rego")),
		chromedp.SendKeys(chromedp.ID("draft-rego"), "package veil.destinations.bi_events\n\nformat := \"event\"\n\nallow := true\n\n"+
			"keep_categories := {\"system.operations\", \"user.name.first\"}\n\npseudonymize_categories := {\"user.unique_id\"}\n"),
		chromedp.Click(chromedp.ID("impact")), chromedp.WaitVisible(chromedp.CSS("#impact-result, #policy-error, #error")))
	if b.count("#impact-result") == 0 {
		t.Fatalf("no comparison:\n%s", b.html())
	}
	im = b.text("impact-result")
	if !strings.Contains(im, "first_name: newly leaves (1 events)") || !strings.Contains(im, "category user.name.first: newly released (1 events)") ||
		strings.Contains(im, "stops leaving") || !strings.Contains(im, "before and after") {
		t.Fatalf("the pasted draft's impact: %q", im)
	}
	if n := b.count("#impact-result details.sample"); n != 2 {
		t.Fatalf("%d before-and-after samples, want 2 (bi-warehouse and flaky-bi share the policy)", n)
	}
	b.shot("policy-impact-pasted")

	// A consumer: its key once, working; then revoked.
	b.step("add consumer", chromedp.Navigate(p.url+"/console/consumers"), chromedp.WaitVisible(chromedp.ID("consumer-name")),
		chromedp.SendKeys(chromedp.ID("consumer-name"), "onboarding"), chromedp.SendKeys(chromedp.ID("consumer-purposes"), "onboarding"),
		chromedp.Click(chromedp.ID("add-consumer")), chromedp.WaitVisible(chromedp.ID("consumer-key")))
	key := strings.TrimSpace(b.text("consumer-key"))
	b.shot("consumers")
	lookup := func() int {
		code, _ := lookupRecord(t, p.url, eventID, key, "onboarding")
		return code
	}
	if c := lookup(); c != 200 {
		t.Fatalf("a lookup with the console's new key: %d", c)
	}
	b.step("consumers again", chromedp.Navigate(p.url+"/console/consumers"), chromedp.WaitVisible(chromedp.ID("consumers")))
	if strings.Contains(b.html(), key) {
		t.Fatal("the key is shown a second time")
	}
	b.step("revoke", chromedp.Click(chromedp.ID("revoke-onboarding")), chromedp.WaitVisible(chromedp.ID("notice")))
	if c := lookup(); c != http.StatusUnauthorized {
		t.Fatalf("a lookup with the revoked key: %d, want 401", c)
	}
	admin, _, _ := consoleClient(t, p.url, "e2e-admin-token")
	for _, action := range []string{"consumer_added", "consumer_revoked"} {
		resp, err := admin.Get(p.url + "/console/audit/export?format=csv&action=" + action)
		if err != nil {
			t.Fatal(err)
		}
		csv, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(csv), ","+action+",break-glass:admin,") {
			t.Fatalf("no %s row by break-glass:admin:\n%s", action, csv)
		}
		if strings.Contains(string(csv), key) {
			t.Fatal("the key is in the audit log")
		}
	}

	// An auditor reads both pages and finds no control.
	a := newChrome(t, exe, p.url)
	a.login(auditorToken)
	a.step("auditor policies", chromedp.Navigate(p.url+"/console/policies"), chromedp.WaitVisible(chromedp.ID("policy-set")))
	if n := a.count("#impact, #draft-dir"); n != 0 {
		t.Fatalf("an auditor sees %d draft controls", n)
	}
	a.step("auditor consumers", chromedp.Navigate(p.url+"/console/consumers"), chromedp.WaitVisible(chromedp.ID("consumers")))
	if n := a.count("#add-consumer, [id^=revoke-]"); n != 0 {
		t.Fatalf("an auditor sees %d consumer controls", n)
	}
}
