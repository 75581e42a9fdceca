package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// getPage GETs a console page with a logged-in client.
func getPage(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsole_AuditFilters: the audit page filters by action, event,
// actor, subject (the person's rows under every reference) and a time
// range, and its export gives exactly the rows the filter selects.
func TestConsole_AuditFilters(t *testing.T) {
	p, _, _, _, eventID := consoleSetup(t)
	defer p.stop(t)
	admin, _, _ := consoleClient(t, p.url, "e2e-admin-token")
	export := func(q url.Values) []string {
		t.Helper()
		code, body := getPage(t, admin, p.url+"/console/audit/export?format=csv&"+q.Encode())
		if code != 200 {
			t.Fatalf("export %v: %d %s", q, code, body)
		}
		lines := strings.Split(strings.TrimSpace(body), "\n")
		return lines[1:] // after the header
	}
	all := export(url.Values{})
	ofEvent := export(url.Values{"event": {eventID}})
	if len(ofEvent) == 0 || len(ofEvent) >= len(all) {
		t.Fatalf("event filter: %d of %d rows", len(ofEvent), len(all))
	}
	for _, l := range ofEvent {
		if !strings.Contains(l, ","+eventID+",") {
			t.Fatalf("a row of another event: %s", l)
		}
	}
	if rows := export(url.Values{"event": {eventID}, "action": {"dead"}}); len(rows) != 1 || !strings.Contains(rows[0], "flaky-bi") {
		t.Fatalf("event and action: %q", rows)
	}
	if rows := export(url.Values{"actor": {"nobody"}}); len(rows) != 0 {
		t.Fatalf("actor nobody: %q", rows)
	}
	if rows := export(url.Values{"actor": {"veil"}}); len(rows) == 0 {
		t.Fatal("no row by the actor veil")
	}
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	if rows := export(url.Values{"since": {future}}); len(rows) != 0 {
		t.Fatalf("rows after %s: %q", future, rows)
	}
	past := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")
	if rows := export(url.Values{"since": {past}, "until": {future}}); len(rows) != len(all) {
		t.Fatalf("the last hour holds %d of %d rows", len(rows), len(all))
	}
	// The candidate and her application are one person: either finds her rows.
	byCandidate := export(url.Values{"subject": {"greenhouse:candidate:61548830"}})
	byApplication := export(url.Values{"subject": {"greenhouse:application:88190254"}})
	if len(byCandidate) == 0 || strings.Join(byCandidate, "\n") != strings.Join(byApplication, "\n") {
		t.Fatalf("subject: %d rows by the candidate, %d by the application", len(byCandidate), len(byApplication))
	}

	// The page shows the same, and links its export and next page with the filter.
	code, page := getPage(t, admin, p.url+"/console/audit?action=dead&event="+eventID)
	if code != 200 || strings.Count(page, "<tr><td>") != 1 ||
		!strings.Contains(page, `/console/audit/export?format=csv&amp;action=dead&amp;event=`+eventID) {
		t.Fatalf("filtered audit page: %d\n%s", code, page)
	}
	if code, page = getPage(t, admin, p.url+"/console/audit?since=yesterday"); code != 400 || !strings.Contains(page, "From is not a time") {
		t.Fatalf("a bad time: %d\n%s", code, page)
	}
	if code, page = getPage(t, admin, p.url+"/console/audit?subject=greenhouse:candidate:1"); code != 404 || !strings.Contains(page, `id="audit-error"`) {
		t.Fatalf("an unknown subject: %d\n%s", code, page)
	}
}
