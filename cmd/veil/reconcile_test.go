package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/internal/testenv"
)

// reconcileConfig writes a config whose source vendor reads the fake ATS
// API and reconciles from since, with the BI destination (every event,
// ids pseudonymised, stages kept) at the sink.
func reconcileConfig(t *testing.T, dir, vendor string, api *fakeATSAPI, sinkURL string, since time.Time, perPage int) string {
	t.Helper()
	config := writeConfigDests(t, dir, fmt.Sprintf(`
destinations:
  - {name: bi-warehouse, url: "%s/bi", sources: [%s], policy: veil.destinations.bi_events, allow_private_network: true}
`, sinkURL, vendor))
	var apiBlock string
	switch vendor {
	case "greenhouse":
		apiBlock = fmt.Sprintf(`{base_url: "%[1]s/v3", token_url: "%[1]s/token", client_id: %s, client_secret: %s, user_id: "%s", allow_private_network: true, rate: 200}`,
			api.URL, fakeClientID, fakeClientSecret, fakeUserID)
	default:
		apiBlock = fmt.Sprintf(`{base_url: "%s", key: %s, allow_private_network: true, rate: 200}`, api.URL, fakeAPIKey)
	}
	text := string(mustRead(t, config))
	line := func(name string) string {
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "  - {name: "+name+",") {
				return l
			}
		}
		t.Fatalf("no source line for %s", name)
		return ""
	}
	old := line(vendor)
	repl := strings.TrimSuffix(old, "}") + fmt.Sprintf(", api: %s, reconcile: {every: 1h, overlap: 10m, since: %q, per_page: %d}}",
		apiBlock, since.UTC().Format(time.RFC3339), perPage)
	text = strings.Replace(text, old, repl, 1)
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return config
}

// withoutReconcile writes a copy of config without its reconcile block
// (same data folder) and returns its path: a serve that runs no scheduled
// pass, so only the test's `veil reconcile run` reconciles.
func withoutReconcile(t *testing.T, config string) string {
	t.Helper()
	text := regexp.MustCompile(`, reconcile: \{[^}]*\}`).ReplaceAll(mustRead(t, config), nil)
	path := filepath.Join(filepath.Dir(config), "serve.yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// stageWebhook is a signed-to-be webhook saying application app moved to
// stage, in the vendor's own shape (from the samples).
func stageWebhook(t *testing.T, vendor, app, stage string) []byte {
	t.Helper()
	var body []byte
	var err error
	set := func(path string, v any) {
		if err == nil {
			body, err = sjson.SetBytes(body, path, v)
		}
	}
	switch vendor {
	case "greenhouse":
		body = mustRead(t, "../../testdata/samples/greenhouse/candidate_stage_change.json")
		set("payload.application.id", num(app))
		set("payload.application.current_stage.id", num(stage))
	case "lever":
		body = mustRead(t, "../../testdata/samples/lever/candidateStageChange.json")
		set("data.opportunityId", app)
		set("data.toStageId", stage)
		set("token", veil.NewID("")) // a new delivery, a new signature
	case "ashby":
		body = mustRead(t, "../../testdata/samples/ashby/candidateStageChange.json")
		set("data.application.id", app)
		set("data.application.currentInterviewStage.id", stage)
		set("webhookActionId", veil.NewID(""))
	}
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// stagesAtSink counts, per stage id, the bodies the sink got naming it.
func stagesAtSink(s *bodySink, stages ...string) map[string]int {
	out := map[string]int{}
	for _, b := range s.got("/bi") {
		for _, st := range stages {
			if bytes.Contains(b, []byte(`"id":"`+st+`"`)) {
				out[st]++
			}
		}
	}
	return out
}

// TestReconcile_EachVendor: through the real binary and a sink, for
// Greenhouse (Harvest v3 records), Lever and Ashby: four applications
// change in the fake API (a stage, a stage and a hire, a rejection) and a
// webhook arrives for one; the pass delivers exactly the other three, once
// each, with the types the records say; the next pass delivers nothing; a
// webhook arriving late for a reconciled change is stored but not
// delivered again.
func TestReconcile_EachVendor(t *testing.T) {
	for _, vendor := range []string{"greenhouse", "lever", "ashby"} {
		t.Run(vendor, func(t *testing.T) {
			t.Parallel()
			api := newFakeATSAPI(t, vendor)
			old := time.Now().Add(-2 * time.Hour).UTC()
			api.add(&fakeApp{ID: "7001", Candidate: "6001", Job: "5001", Stage: "8000", Status: "active", Created: old, Updated: old},
				&fakeApp{ID: "7002", Candidate: "6002", Job: "5001", Stage: "8000", Status: "active", Created: old, Updated: old},
				&fakeApp{ID: "7003", Candidate: "6003", Job: "5001", Stage: "8000", Status: "active", Created: old, Updated: old},
				&fakeApp{ID: "7004", Candidate: "6004", Job: "5001", Stage: "8000", Status: "active", Created: old, Updated: old})
			sink := newBodySink(t)
			dir := t.TempDir()
			config := reconcileConfig(t, dir, vendor, api, sink.URL, time.Now().Add(-time.Hour), 2)
			cfg, err := loadConfig(config)
			if err != nil {
				t.Fatal(err)
			}
			logs := &syncBuffer{}
			p := startVeil(t, withoutReconcile(t, config), logs)
			defer p.stop(t)

			api.change("7001", "8101", "active")
			api.change("7002", "8102", "active")
			hired, rejected := "hired", "rejected"
			// The types each vendor's records say: Lever archives a hire
			// and a rejection alike, with the customer's own reasons.
			types := []string{"application.stage_changed: 1", "application.hired: 1", "application.rejected: 1"}
			switch vendor {
			case "ashby":
				hired, rejected = "Hired", "Archived"
			case "lever":
				hired, rejected = "archived", "archived"
				types = []string{"application.stage_changed: 1", "application.updated: 2"}
			}
			api.change("7003", "8103", hired)
			api.change("7004", "8104", rejected)
			post(t, cfg, p.url, vendor, stageWebhook(t, vendor, "7001", "8101"))
			waitFor(t, "the webhook's delivery", func() bool { return stagesAtSink(sink, "8101")["8101"] == 1 })

			code, out := runVeil(t, "reconcile", "run", "--source", vendor, "--config", config)
			if code != 0 || !strings.Contains(out, "listed 4 applications") || !strings.Contains(out, "sent 3 changes") {
				t.Fatalf("first pass: exit %d\n%s", code, out)
			}
			for _, ty := range types {
				if !strings.Contains(out, ty) {
					t.Errorf("first pass does not report %q:\n%s", ty, out)
				}
			}
			waitFor(t, "the three reconciled deliveries", func() bool {
				n := stagesAtSink(sink, "8102", "8103", "8104")
				return n["8102"] == 1 && n["8103"] == 1 && n["8104"] == 1
			})
			for _, b := range sink.got("/bi") {
				if bytes.Contains(b, []byte(`"id":"8102"`)) && !bytes.Contains(b, []byte(`"reconciled":true`)) {
					t.Errorf("a reconciled delivery does not say so: %s", b)
				}
			}

			code, out = runVeil(t, "reconcile", "run", "--source", vendor, "--config", config)
			if code != 0 || !strings.Contains(out, "sent 0 changes") {
				t.Fatalf("second pass: exit %d\n%s", code, out)
			}
			// The webhook for 7002's change arrives late: stored, answered
			// 200, not delivered a second time.
			late := post(t, cfg, p.url, vendor, stageWebhook(t, vendor, "7002", "8102"))
			if late["duplicate"] == true {
				t.Fatalf("the late webhook is a new event: %v", late)
			}
			db, err := sql.Open("sqlite", filepath.Join(dir, "data", "veil.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var status, detail string
			waitFor(t, "the late webhook's decision", func() bool {
				return db.QueryRow(`SELECT status, detail FROM deliveries WHERE event_id = ?`, late["event_id"]).Scan(&status, &detail) == nil
			})
			if status != veil.DeliveryFiltered || !strings.Contains(detail, "reconciliation reported") {
				t.Fatalf("late webhook's delivery: %s %q, want filtered as already reconciled", status, detail)
			}
			var reconciled int
			db.QueryRow(`SELECT count(*) FROM audit WHERE action = 'reconciled' AND outcome = 'gap'`).Scan(&reconciled)
			if reconciled != 3 {
				t.Fatalf("%d reconciled audit rows, want 3", reconciled)
			}
			time.Sleep(300 * time.Millisecond) // anything sent twice would have arrived
			if n := stagesAtSink(sink, "8101", "8102", "8103", "8104"); n["8101"] != 1 || n["8102"] != 1 || n["8103"] != 1 || n["8104"] != 1 {
				t.Fatalf("deliveries per stage: %v, want one each", n)
			}
			if code, out := runVeil(t, "audit", "verify", "--config", config); code != 0 {
				t.Fatalf("audit verify: %s", out)
			}
			// The listed records' personal values (the fake plants
			// Canary-… in each) reach no log, no CLI output, no file of
			// the store in plain text, and no destination (ids only).
			places := dataFiles(t, filepath.Join(dir, "data"))
			places["serve logs"] = logs.Bytes()
			places["cli output"] = []byte(out)
			for _, b := range sink.got("/bi") {
				places["sink"] = append(places["sink"], b...)
			}
			for where, b := range places {
				if bytes.Contains(b, []byte("Canary-")) || bytes.Contains(b, []byte("canary-7")) {
					t.Errorf("%s holds a listed record's value", where)
				}
			}
		})
	}
}

// TestReconcile_KillMidPass: for each vendor, `veil serve` killed (-9)
// during its own scheduled pass, after some changes were committed; the
// restarted serve's pass sends the rest, and nothing twice.
func TestReconcile_KillMidPass(t *testing.T) {
	testenv.Slow(t, "kill -9 mid-pass for each vendor")
	for _, vendor := range []string{"greenhouse", "lever", "ashby"} {
		t.Run(vendor, func(t *testing.T) {
			t.Parallel()
			testKillMidPass(t, vendor)
		})
	}
}

func testKillMidPass(t *testing.T, vendor string) {
	api := newFakeATSAPI(t, vendor)
	old := time.Now().Add(-2 * time.Hour).UTC()
	const n = 60
	var stages []string
	for i := range n {
		id := fmt.Sprint(9000 + i)
		api.add(&fakeApp{ID: id, Candidate: fmt.Sprint(6000 + i), Job: "5001", Stage: "8000", Status: "active", Created: old, Updated: old})
	}
	sink := newBodySink(t)
	dir := t.TempDir()
	config := reconcileConfig(t, dir, vendor, api, sink.URL, time.Now().Add(-time.Hour), 5)
	// Slow the API to 4 pages a second, so the kill lands mid-pass.
	os.WriteFile(config, bytes.Replace(mustRead(t, config), []byte("rate: 200"), []byte("rate: 4"), 1), 0o600)
	for i := range n {
		stage := fmt.Sprint(20000 + i)
		stages = append(stages, stage)
		api.change(fmt.Sprint(9000+i), stage, "active")
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "data", "veil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reconciled := func() int {
		var c int
		db.QueryRow(`SELECT count(*) FROM audit WHERE action = 'reconciled' AND outcome = 'gap'`).Scan(&c)
		return c
	}

	p := startVeil(t, config, &syncBuffer{}) // its first pass starts 5 s after the start
	waitFor(t, "some reconciled events", func() bool { return reconciled() >= 10 })
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	before := reconciled()
	if before >= n {
		t.Fatalf("the pass finished before the kill (%d reconciled): nothing tested", before)
	}

	p = startVeil(t, config, &syncBuffer{})
	defer p.stop(t)
	waitFor(t, "the restarted serve's pass", func() bool { return reconciled() == n })
	waitFor(t, "every change at the sink", func() bool { return len(stagesAtSink(sink, stages...)) == n })
	time.Sleep(300 * time.Millisecond)
	// A delivery in flight at the kill may be sent again after its lease
	// ends (at least once, under the same webhook-id); a change reconciled
	// twice would arrive under two.
	bodies, ids := sink.got("/bi"), sink.webhookIDs("/bi")
	for _, st := range stages {
		seen := map[string]bool{}
		for i, b := range bodies {
			if bytes.Contains(b, []byte(`"id":"`+st+`"`)) {
				seen[ids[i]] = true
			}
		}
		if len(seen) != 1 {
			t.Errorf("stage %s delivered under %d webhook-ids, want 1", st, len(seen))
		}
	}
	if got := reconciled(); got != n {
		t.Fatalf("%d reconciled rows after the kill at %d, want %d", got, before, n)
	}
	// The console's Overview shows the source's last good pass.
	waitFor(t, "the pass's watermark", func() bool {
		var c int
		db.QueryRow(`SELECT count(*) FROM reconcile_state WHERE source = ?`, vendor).Scan(&c)
		return c == 1
	})
	admin, _, _ := consoleClient(t, p.url, "e2e-admin-token")
	resp, err := admin.Get(p.url + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	overview, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`<tr><td>` + vendor + `</td><td><time datetime="[^"]+">\d{4}-\d\d-\d\d `).Match(overview) {
		t.Fatalf("the Overview shows no pass of %s:\n%s", vendor, overview)
	}
}

// TestReconcile_BadPages: an HTML page, a truncated page, a next link to
// another host and a page over 10 MiB each end the pass with an error
// row; nothing of it is sent and the watermark stays, so the next good
// pass sends the change.
func TestReconcile_BadPages(t *testing.T) {
	api := newFakeATSAPI(t, "greenhouse")
	old := time.Now().Add(-2 * time.Hour).UTC()
	api.add(&fakeApp{ID: "7001", Candidate: "6001", Job: "5001", Stage: "8000", Status: "active", Created: old, Updated: old})
	sink := newBodySink(t)
	dir := t.TempDir()
	config := reconcileConfig(t, dir, "greenhouse", api, sink.URL, time.Now().Add(-time.Hour), 10)
	api.change("7001", "8101", "active")
	for _, fault := range []string{"html", "truncated", "foreign_link", "huge"} {
		api.set(func(f *fakeATSAPI) { f.fault = fault })
		code, out := runVeil(t, "reconcile", "run", "--source", "greenhouse", "--config", config)
		if code == 0 || strings.Contains(out, "Canary") || strings.Contains(out, "<html") {
			t.Fatalf("%s: exit %d\n%s", fault, code, out)
		}
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "data", "veil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var failed, sent int
	db.QueryRow(`SELECT count(*) FILTER (WHERE outcome = 'pass_failed'), count(*) FILTER (WHERE outcome = 'gap')
		FROM audit WHERE action = 'reconciled'`).Scan(&failed, &sent)
	if failed != 4 || sent != 0 {
		t.Fatalf("%d pass_failed rows and %d sent, want 4 and 0", failed, sent)
	}
	code, out := runVeil(t, "reconcile", "run", "--source", "greenhouse", "--config", config)
	if code != 0 || !strings.Contains(out, "sent 1 changes") {
		t.Fatalf("the good pass: exit %d\n%s", code, out)
	}
}

// TestReconcile_LeverDeletion: Lever deleted two opportunities; the
// candidateDeleted web hook of one arrived, the other's was lost. The pass
// reconciles the lost one, once, as candidate.deleted (its delivery and its
// audit row say so), links it to the person the earlier web hooks named,
// and does not report the one whose web hook came; the next pass reports
// nothing.
func TestReconcile_LeverDeletion(t *testing.T) {
	api := newFakeATSAPI(t, "lever")
	sink := newBodySink(t)
	dir := t.TempDir()
	config := reconcileConfig(t, dir, "lever", api, sink.URL, time.Now().Add(-time.Hour), 10)
	cfg, err := loadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	p := startVeil(t, withoutReconcile(t, config), &syncBuffer{})
	defer p.stop(t)

	// Web hooks before: a stage change of each opportunity, then the
	// deletion of the second.
	post(t, cfg, p.url, "lever", stageWebhook(t, "lever", "opp-lost", "8101"))
	post(t, cfg, p.url, "lever", stageWebhook(t, "lever", "opp-seen", "8102"))
	deleted := stageWebhook(t, "lever", "opp-seen", "8102")
	for _, path := range []string{"data.toStageId", "data.fromStageId"} {
		deleted, _ = sjson.DeleteBytes(deleted, path)
	}
	deleted, _ = sjson.SetBytes(deleted, "event", "candidateDeleted")
	deleted, _ = sjson.SetBytes(deleted, "data.candidateId", "opp-seen")
	post(t, cfg, p.url, "lever", deleted)
	waitFor(t, "the web hooks' deliveries", func() bool { return len(sink.got("/bi")) == 3 })

	at := time.Now().Add(-5 * time.Minute)
	api.set(func(f *fakeATSAPI) { f.deleted = []fakeDeleted{{"opp-lost", at}, {"opp-seen", at}} })
	code, out := runVeil(t, "reconcile", "run", "--source", "lever", "--config", config)
	if code != 0 || !strings.Contains(out, "sent 1 changes") || !strings.Contains(out, "candidate.deleted: 1") {
		t.Fatalf("the pass: exit %d\n%s", code, out)
	}
	waitFor(t, "the reconciled deletion", func() bool { return len(sink.got("/bi")) == 4 })
	last := sink.got("/bi")[3]
	if !bytes.Contains(last, []byte(`"type":"candidate.deleted"`)) || !bytes.Contains(last, []byte(`"reconciled":true`)) {
		t.Fatalf("the reconciled delivery: %s", last)
	}
	code, out = runVeil(t, "reconcile", "run", "--source", "lever", "--config", config)
	if code != 0 || !strings.Contains(out, "sent 0 changes") {
		t.Fatalf("the second pass: exit %d\n%s", code, out)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, "data", "veil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.QueryRow(`SELECT count(*) FROM audit WHERE action = 'reconciled' AND outcome = 'gap' AND event_type = 'candidate.deleted'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d reconciled candidate.deleted audit rows, want 1", n)
	}
	// The deletion is hers: the access report of the person the first
	// stage change named lists it.
	code, out = runVeil(t, "report", "subject", "lever:candidate:opp-lost", "--config", config, "--format", "json")
	if code != 0 || strings.Count(out, "candidate.deleted") == 0 {
		t.Fatalf("her access report: exit %d\n%s", code, out)
	}
}

// TestSourceCheck: `veil source check` makes one authenticated call and
// prints what Veil can see, stores nothing, and names the missing
// permission when the API refuses.
func TestSourceCheck(t *testing.T) {
	gh, lv := newFakeATSAPI(t, "greenhouse"), newFakeATSAPI(t, "lever")
	old := time.Now().Add(-2 * time.Hour).UTC()
	gh.add(&fakeApp{ID: "7001", Candidate: "6001", Job: "5001", Stage: "8000", Status: "active", Created: old, Updated: old},
		&fakeApp{ID: "7002", Candidate: "6002", Job: "5001", Stage: "8000", Status: "active", Created: old, Updated: old})
	dir := t.TempDir()
	config := reconcileConfig(t, dir, "greenhouse", gh, "http://127.0.0.1:1", time.Now().Add(-time.Hour), 50)
	text := strings.Replace(string(mustRead(t, config)), "  - {name: lever, vendor: lever, secret: lever-fixture-sigtoken-8d2e6a51}",
		"  - {name: lever, vendor: lever, secret: lever-fixture-sigtoken-8d2e6a51, api: {base_url: \""+lv.URL+"\", key: "+fakeAPIKey+", allow_private_network: true}}", 1)
	os.WriteFile(config, []byte(text), 0o600)

	code, out := runVeil(t, "source", "check", "greenhouse", "--config", config)
	for _, want := range []string{"credentials: accepted", "first page of applications: 2 records (asked for 50)",
		"X-RateLimit-Limit 50, X-RateLimit-Remaining 48", "nothing was stored"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("greenhouse: exit %d, want %q:\n%s", code, want, out)
		}
	}
	if strings.Contains(out, "Canary") {
		t.Fatalf("a record value in the output:\n%s", out)
	}
	code, out = runVeil(t, "source", "check", "lever", "--config", config)
	if code != 0 || !strings.Contains(out, "first page of applications: 0 records") || !strings.Contains(out, "confidential opportunities: left out") ||
		!strings.Contains(out, "no rate-limit headers") {
		t.Fatalf("lever: exit %d\n%s", code, out)
	}
	gh.set(func(f *fakeATSAPI) { f.mode = "forbidden" })
	code, out = runVeil(t, "source", "check", "greenhouse", "--config", config)
	if code != 1 || !strings.Contains(out, "403") || !strings.Contains(out, "harvest:applications:list") {
		t.Fatalf("forbidden: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "veil.db")); !os.IsNotExist(err) {
		t.Fatalf("source check created the store: %v", err)
	}
}
