package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/veilhq/veil"
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
		var rows []string
		for _, l := range strings.Split(strings.TrimSpace(body), "\n")[1:] { // after the header
			if !strings.Contains(l, ",exported,") { // each export adds its own row
				rows = append(rows, l)
			}
		}
		return rows
	}
	// The sinks have answered; the rows of those answers are written just
	// after. Wait for them so every export below sees the same log.
	waitFor(t, "the delivered and dead rows", func() bool {
		return len(export(url.Values{"event": {eventID}, "action": {"delivered"}})) == 1 &&
			len(export(url.Values{"event": {eventID}, "action": {"dead"}})) == 1
	})
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
		t.Fatalf("the last hour holds %d of %d rows:\n%s\nall:\n%s", len(rows), len(all),
			strings.Join(rows, "\n"), strings.Join(all, "\n"))
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

// TestRecovery_BulkReplayAndPause drives recovery as RecOps would, on the
// real binary: dead letters filtered by reason and HTTP status from the
// CLI and the console, an erased subject's letter marked and not
// selectable, "replay all matching" after a confirmation (each replayed
// delivery arrives once), and a destination paused from the CLI (its
// deliveries wait while another destination's go) and resumed from the
// console; every step audited with its actor.
func TestRecovery_BulkReplayAndPause(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	hris := newSink(t, func(int, http.ResponseWriter) int {
		if broken.Load() {
			return 404
		}
		return 200
	})
	bi := newSink(t, func(int, http.ResponseWriter) int { return 200 })
	dir := t.TempDir()
	config := writeConfigDests(t, dir, "destinations:"+destination("hris-x", hris.URL+"/hris", 1, "")+
		destination("bi-ok", bi.URL+"/bi", 3, "")+"\n")
	p := startVeil(t, config, &syncBuffer{})
	defer p.stop(t)
	client := &http.Client{Timeout: 10 * time.Second}
	samples := []string{"hire_candidate", "candidate_stage_change", "new_candidate_application", "offer_created"}
	for i, name := range samples {
		if code, _, err := postGreenhouse(context.Background(), client, p.url, mustRead(t, "../../testdata/samples/greenhouse/"+name+".json"),
			"recovery-"+name); err != nil || code != 200 {
			t.Fatalf("send %d: %d %v", i, code, err)
		}
	}
	waitFor(t, "four 404s and four deliveries", func() bool { return len(hris.requests()) == 4 && len(bi.requests()) == 4 })
	cli := func(args ...string) (int, string) {
		t.Helper()
		return runVeil(t, append(args, "--config", config, "--url", p.url)...)
	}
	waitFor(t, "four dead letters", func() bool {
		_, out := cli("dlq", "list", "--reason", "http", "--http-status", "404")
		return strings.Contains(out, "4 dead deliveries match, 4 replayable")
	})
	if code, out := cli("dlq", "list", "--reason", "timeout"); code != 0 || !strings.Contains(out, "0 dead deliveries match") {
		t.Fatalf("dlq list --reason timeout: %d %s", code, out)
	}
	if code, out := cli("dlq", "list", "--reason", "nonsense"); code == 0 || !strings.Contains(out, "Unknown reason") {
		t.Fatalf("dlq list --reason nonsense: %d %s", code, out)
	}
	// The new applicant is erased: her dead letter can no longer be replayed.
	if code := adminDo(t, http.MethodDelete, p.url+"/v1/subjects/greenhouse:candidate:61559902", &map[string]any{}); code != 200 {
		t.Fatalf("erase: %d", code)
	}

	admin, _, csrf := consoleClient(t, p.url, "e2e-admin-token")
	code, page := getPage(t, admin, p.url+"/console/dead?destination=hris-x&reason=http")
	if code != 200 || !strings.Contains(page, "<strong>4</strong> dead deliveries match; 3 can be replayed") ||
		strings.Count(page, `name="id"`) != 3 || strings.Count(page, "cannot be replayed</span>") != 1 {
		t.Fatalf("dead letters: %d\n%s", code, page)
	}
	if code, page = getPage(t, admin, p.url+"/console/dead?reason=nonsense"); code != 400 || !strings.Contains(page, "Unknown reason") {
		t.Fatalf("an unknown reason: %d\n%s", code, page)
	}
	if _, page = getPage(t, admin, p.url+"/console/dead?destination=hris-x&reason=http&confirm=1"); !strings.Contains(page, `id="confirm-all"`) ||
		!strings.Contains(page, "Replay 3 deliveries") {
		t.Fatalf("no confirmation:\n%s", page)
	}
	broken.Store(false)
	resp, err := admin.PostForm(p.url+"/console/dead/replay-all", url.Values{"csrf": {csrf}, "destination": {"hris-x"}, "reason": {"http"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("notice") != "3 of 4 matching replayed. 1 cannot be (payload past retention or subject erased)." {
		t.Fatalf("replay all: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	waitFor(t, "the three replays at the sink", func() bool { return len(hris.requests()) == 7 })
	ids := map[string]int{}
	for _, r := range hris.requests()[4:] {
		if r.status != 200 {
			t.Fatalf("a replay answered %d", r.status)
		}
		ids[r.webhookID]++
	}
	if len(ids) != 3 {
		t.Fatalf("the replays were not three different deliveries once each: %v", ids)
	}
	// Again: nothing replayable is left, and a replayed delivery is not replayed twice.
	var bulk struct{ Matched, Replayed, Skipped int }
	if code := adminDoBody(t, http.MethodPost, p.url+"/v1/deliveries/replay", `{"destination": "hris-x"}`, &bulk); code != 200 ||
		bulk.Matched != 1 || bulk.Replayed != 0 || bulk.Skipped != 1 {
		t.Fatalf("replay all again: %d %+v", code, bulk)
	}

	// Pause hris-x from the CLI; a new hire reaches bi-ok but waits for hris-x.
	if code, out := cli("destination", "pause", "hris-x"); code == 0 || !strings.Contains(out, "Say why") {
		t.Fatalf("pause without a reason: %d %s", code, out)
	}
	if code, out := cli("destination", "pause", "hris-x", "--reason", "HRIS maintenance"); code != 0 {
		t.Fatalf("pause: %d %s", code, out)
	}
	another := bytes.ReplaceAll(mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json"), []byte("88190254"), []byte("88190299"))
	another = bytes.ReplaceAll(another, []byte("61548830"), []byte("61548899"))
	if code, _, err := postGreenhouse(context.Background(), client, p.url, another, "recovery-paused"); err != nil || code != 200 {
		t.Fatalf("send while paused: %d %v", code, err)
	}
	// bi-ok's delivery and hris-x's are claimed in the same pass: once
	// bi-ok has it, hris-x's was passed over.
	waitFor(t, "bi-ok's delivery", func() bool { return len(bi.requests()) == 5 })
	if n := len(hris.requests()); n != 7 {
		t.Fatalf("hris-x got a delivery while paused (%d requests)", n)
	}
	if code, out := cli("destination", "list"); code != 0 || !regexp.MustCompile(`hris-x +paused since .* by break-glass:admin: HRIS maintenance`).MatchString(out) ||
		!regexp.MustCompile(`bi-ok +sending`).MatchString(out) {
		t.Fatalf("destination list: %d\n%s", code, out)
	}
	if _, page = getPage(t, admin, p.url+"/console/"); !strings.Contains(page, `<strong class="paused">paused</strong>`) ||
		!strings.Contains(page, "HRIS maintenance") || !strings.Contains(page, `id="resume-hris-x"`) {
		t.Fatalf("the Overview does not show the pause:\n%s", page)
	}
	if resp, err = admin.PostForm(p.url+"/console/destinations/hris-x/resume", url.Values{"csrf": {csrf}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "hris-x's delivery after resume", func() bool { return len(hris.requests()) == 8 })

	var rows []veil.AuditEntry
	var out string
	adminDo(t, http.MethodGet, p.url+"/v1/audit/export?format=jsonl&action=destination_paused,destination_resumed,replayed", &out)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e veil.AuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		rows = append(rows, e)
	}
	actors := map[string]string{}
	for _, e := range rows {
		actors[e.Action] += e.Actor + " "
	}
	if actors["replayed"] != strings.Repeat("break-glass:admin ", 3) || actors["destination_paused"] != "break-glass:admin " ||
		actors["destination_resumed"] != "break-glass:admin " {
		t.Fatalf("audit actors: %v", actors)
	}
}

// adminDoBody is adminDo with a JSON request body.
func adminDoBody(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer e2e-admin-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode
}

// TestConsole_FindEvents: events found by any id a person knows (an
// application's, a candidate's, a job's; through keyed hashes), by either
// type in any case, by source in any case, by a destination's outcome and
// by time; each listed with its destinations' outcomes.
func TestConsole_FindEvents(t *testing.T) {
	p, _, flaky, healthy, hireID := consoleSetup(t)
	defer p.stop(t)
	healthy.Store(true) // the hire is dead at flaky-bi; the rest arrive
	client := &http.Client{Timeout: 10 * time.Second}
	ids := map[string]string{"hire_candidate": hireID}
	for _, name := range []string{"candidate_stage_change", "new_candidate_application", "offer_created"} {
		code, out, err := postGreenhouse(context.Background(), client, p.url, mustRead(t, "../../testdata/samples/greenhouse/"+name+".json"), "find-"+name)
		if err != nil || code != 200 {
			t.Fatalf("send %s: %d %v", name, code, err)
		}
		ids[name] = out["event_id"].(string)
	}
	waitFor(t, "every delivery", func() bool { return len(flaky.requests()) == 4 })
	admin, _, _ := consoleClient(t, p.url, "e2e-admin-token")
	listed := regexp.MustCompile(`<tr id="e-(evt_[0-9a-v]+)">`)
	find := func(q string) []string {
		t.Helper()
		var got []string
		waitFor(t, "the events page for "+q, func() bool {
			code, page := getPage(t, admin, p.url+"/console/events?"+q)
			if code != 200 {
				t.Fatalf("%s: %d\n%s", q, code, page)
			}
			got = nil
			for _, m := range listed.FindAllStringSubmatch(page, -1) {
				got = append(got, m[1])
			}
			return !strings.Contains(page, "status pending") && !strings.Contains(page, "status sending")
		})
		return got
	}
	same := func(q string, want ...string) {
		t.Helper()
		got := find(q)
		var names []string
		for _, id := range got {
			for n, e := range ids {
				if e == id {
					names = append(names, n)
				}
			}
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s: found %v, want %v", q, names, want)
		}
	}
	same("id=88190254", "hire_candidate")                          // the hire's application
	same("id=61548830", "hire_candidate")                          // her candidate record
	same("id=88213407", "offer_created", "candidate_stage_change") // the application and its offer, newest first
	same("id=4409871", "offer_created", "candidate_stage_change")  // a job
	same("id=greenhouse:candidate:61559902", "new_candidate_application")
	same("id=99999999")
	same("type=application.hired", "hire_candidate")
	same("type=HIRE_CANDIDATE", "hire_candidate")
	same("source=GreenHouse&outcome=dead&destination=flaky-bi", "hire_candidate")
	same("outcome=delivered&destination=flaky-bi", "offer_created", "new_candidate_application", "candidate_stage_change")
	same("since=" + url.QueryEscape(time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")))
	if got := find("source=greenhouse"); len(got) != 4 {
		t.Errorf("source greenhouse: %d events", len(got))
	}
	// The list shows each destination's outcome.
	if _, page := getPage(t, admin, p.url+"/console/events?id=88190254"); !strings.Contains(page, `<span class="status dead">flaky-bi: dead</span>`) ||
		!strings.Contains(page, `<span class="status delivered">bi-warehouse: delivered</span>`) {
		t.Errorf("no outcomes on the list:\n%s", page)
	}
	// An event's own id, or a delivery's, opens the event.
	resp, err := admin.Get(p.url + "/console/events?id=" + hireID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/events/"+hireID {
		t.Errorf("an event id: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, page := getPage(t, admin, p.url+"/console/events?source=workday"); code != 400 || !strings.Contains(page, "No such source") {
		t.Errorf("an unknown source: %d", code)
	}
}

// TestConsole_LiveOverview: the Overview, open in Chromium, shows a
// destination's breaker go open (red, and the word "open") when its sink
// starts failing, without the page being reloaded; its live updates can
// be paused.
func TestConsole_LiveOverview(t *testing.T) {
	exe := chromiumPath(t)
	var failing atomic.Bool
	s := newSink(t, func(int, http.ResponseWriter) int {
		if failing.Load() {
			return 503
		}
		return 200
	})
	dir := t.TempDir()
	config := writeConfigDests(t, dir, "destinations:"+destination("hris-x", s.URL+"/hris", 2, "")+"\n")
	p := startVeil(t, config, &syncBuffer{})
	defer p.stop(t)
	b := newChrome(t, exe, p.url)
	b.login("e2e-admin-token")
	// A mark on the page that a reload would wipe.
	markCtx, cancelMark := b.limit()
	_, err := chromedp.Run(markCtx, chromedp.Evaluate[bool](`window.veilMark = true`))
	cancelMark()
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	client := &http.Client{Timeout: 10 * time.Second}
	body := mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json")
	for i := range 6 {
		b := bytes.ReplaceAll(body, []byte("88190254"), []byte(fmt.Sprint(88190300+i)))
		if code, _, err := postGreenhouse(context.Background(), client, p.url, b, fmt.Sprint("live-", i)); err != nil || code != 200 {
			t.Fatalf("send: %d %v", code, err)
		}
	}
	start := time.Now()
	waitFor(t, "the breaker open on the Overview", func() bool { return b.count("#h-hris-x .breaker.open") == 1 })
	t.Logf("the Overview showed the breaker open %s after the sink began failing", time.Since(start).Round(100*time.Millisecond))
	if b.count("#h-hris-x .breaker.open") != 1 {
		t.Fatal("no open breaker")
	}
	ctx, cancel := b.limit()
	marked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.veilMark === true`))
	cancel()
	if err != nil || !marked {
		t.Fatalf("the page was reloaded (%v)", err)
	}
	b.shot("overview-breaker-open")
	b.step("pause live updates", chromedp.Click(chromedp.ID("live-toggle")))
	if got := b.text("live-state"); got != "Live updates are paused." {
		t.Fatalf("after pausing: %q", got)
	}
}

// TestConsole_RecOpsBrowser is RecOps at the console in Chromium:
// find a Greenhouse hire by its application id, filter the events by
// application.hired and a time range, then, with the sink back, replay all
// matching dead letters after the confirmation and see each delivered
// once. Screenshots of each step go to consoleScreens.
func TestConsole_RecOpsBrowser(t *testing.T) {
	exe := chromiumPath(t)
	p, _, flaky, healthy, hireID := consoleSetup(t)
	defer p.stop(t)
	client := &http.Client{Timeout: 10 * time.Second}
	if code, _, err := postGreenhouse(context.Background(), client, p.url,
		mustRead(t, "../../testdata/samples/greenhouse/candidate_stage_change.json"), "recops-stage"); err != nil || code != 200 {
		t.Fatalf("send: %d %v", code, err)
	}
	waitFor(t, "two dead letters", func() bool { return len(flaky.requests()) == 2 })
	b := newChrome(t, exe, p.url)
	b.login("e2e-admin-token")

	b.step("find by application id", chromedp.Navigate(p.url+"/console/events"), chromedp.WaitVisible(chromedp.ID("f-id")),
		chromedp.SendKeys(chromedp.ID("f-id"), "88190254"), chromedp.Click(chromedp.ID("search")),
		// The answer's field carries the id as its value attribute (typing
		// sets only the property): the results page, not the one before.
		chromedp.WaitVisible(chromedp.CSS(`#f-id[value="88190254"]`)), chromedp.WaitVisible(chromedp.ID("e-"+hireID)))
	if n := b.count("#events tbody tr[id^=e-]"); n != 1 {
		t.Fatalf("the application id finds %d events, want the hire", n)
	}
	b.shot("events-by-application-id")

	from := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")
	b.step("filter by type and time", chromedp.Navigate(p.url+"/console/events?type=application.hired&since="+url.QueryEscape(from)),
		chromedp.WaitVisible(chromedp.ID("e-"+hireID)))
	if n := b.count("#events tbody tr[id^=e-]"); n != 1 || !strings.Contains(b.text("e-"+hireID), "flaky-bi: dead") {
		t.Fatalf("application.hired in the last hour: %d events; row %q", n, b.text("e-"+hireID))
	}
	b.shot("events-hired-last-hour")

	healthy.Store(true)
	b.step("dead letters", chromedp.Navigate(p.url+"/console/dead?destination=flaky-bi"), chromedp.WaitVisible(chromedp.ID("dead-count")))
	if c := b.text("dead-count"); !strings.Contains(c, "2 dead deliveries match; 2 can be replayed") {
		t.Fatalf("dead letters: %q", c)
	}
	b.step("replay all", chromedp.Click(chromedp.ID("replay-all")), chromedp.WaitVisible(chromedp.ID("replay-all-confirm")))
	b.shot("dead-letters-confirm")
	b.step("confirm", chromedp.Click(chromedp.ID("replay-all-confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	if n := b.text("notice"); n != "2 of 2 matching replayed." {
		t.Fatalf("notice: %q", n)
	}
	waitFor(t, "both replays at the sink", func() bool { return len(flaky.requests()) == 4 })
	seen := map[string]int{}
	for _, r := range flaky.requests()[2:] {
		seen[r.webhookID]++
		if r.status != 200 {
			t.Fatalf("a replay answered %d", r.status)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("replays: %v", seen)
	}
	b.step("after", chromedp.Navigate(p.url+"/console/dead?destination=flaky-bi"), chromedp.WaitVisible(chromedp.ID("dead-count")))
	if c := b.text("dead-count"); !strings.Contains(c, "0 dead deliveries match") {
		t.Fatalf("after the replays: %q", c)
	}
	b.shot("dead-letters-after-replay")
}

// TestConsole_Processing: the records of processing (Art. 30) in the
// console, for an auditor too, name each destination with its purpose,
// legal basis and categories, and no value of a payload.
func TestConsole_Processing(t *testing.T) {
	p, _, _, _, _ := consoleSetup(t)
	defer p.stop(t)
	auditor, _, _ := consoleClient(t, p.url, auditorToken)
	code, page := getPage(t, auditor, p.url+"/console/processing")
	if code != 200 || !strings.Contains(page, `<h2 id="pr-bi-warehouse">bi-warehouse</h2>`) || !strings.Contains(page, `<h2 id="pr-flaky-bi">`) ||
		!strings.Contains(page, "Security measures (Art. 30(1)(g))") || !strings.Contains(page, "(1 deliveries)") {
		t.Fatalf("records of processing: %d\n%s", code, page)
	}
	for _, canary := range consoleCanaries {
		if strings.Contains(page, canary) {
			t.Fatalf("the records of processing show %q", canary)
		}
	}
	if code, _ = getPage(t, auditor, p.url+"/console/processing?since=tomorrow"); code != 400 {
		t.Fatalf("a bad time: %d", code)
	}
}

// TestConsole_OverviewFromTheStore: the Overview's counts come from the
// audit log, for a chosen range: inbound per source, final deliveries per
// destination, each destination's last error, the review backlog.
func TestConsole_OverviewFromTheStore(t *testing.T) {
	p, _, _, _, _ := consoleSetup(t)
	defer p.stop(t)
	admin, _, _ := consoleClient(t, p.url, "e2e-admin-token")
	for _, rng := range []string{"1h", "24h", "7d"} {
		var page string
		for i := 0; ; i++ {
			_, page = getPage(t, admin, p.url+"/console/?range="+rng)
			if strings.Contains(page, "1 delivered, 0 dead") && strings.Contains(page, "0 delivered, 1 dead") {
				break
			}
			if i == 100 {
				t.Fatalf("%s: the Overview does not count the deliveries:\n%s", rng, page)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, want := range []string{`<tr id="in-greenhouse"><td>greenhouse</td><td>1</td><td>0</td><td>none</td></tr>`,
			`id="range-` + rng + `" aria-current="true"`, `Held for review: <strong>0</strong>`, `fill="url(#hatch-dead)"`} {
			if !strings.Contains(page, want) {
				t.Fatalf("%s: the Overview lacks %s:\n%s", rng, want, page)
			}
		}
		if !regexp.MustCompile(`<tr id="h-flaky-bi">.*<td class="last-error">http 500; gave up after 1 attempts \(<time`).MatchString(page) {
			t.Fatalf("%s: no last error for flaky-bi:\n%s", rng, page)
		}
	}
}
