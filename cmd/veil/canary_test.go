package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/veilhq/veil"
)

// canaries are values planted in payloads; none may appear in any output.
var canaries = []string{
	"Zephyrine",                       // first name
	"Quillfeather-Okonkwo",            // last name
	"zephyrine.q@canary-fixture.test", // email
	"+44 7700 900777",                 // phone
	"17 Lanternmaker Row",             // address
	"https://files.canary-fixture.test/resume-zq.pdf",
	"prefers calls after nine, canary note", // free text
}

// plantCanaries puts the canaries into the Greenhouse hire sample.
func plantCanaries(t *testing.T) []byte {
	t.Helper()
	b := mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json")
	repl := []struct{ old, new string }{
		{`"first_name": "Mateus"`, `"first_name": "Zephyrine"`},
		{`"last_name": "Albuquerque Ferreira"`, `"last_name": "Quillfeather-Okonkwo"`},
		{`"email_addresses": [`, `"email_addresses": [{"value": "zephyrine.q@canary-fixture.test", "type": "personal"},`},
		{`"phone_numbers": [`, `"phone_numbers": [{"value": "+44 7700 900777", "type": "mobile"},`},
		{`"addresses": [`, `"addresses": [{"value": "17 Lanternmaker Row", "type": "home"},`},
		{`"attachments": [`, `"attachments": [{"filename": "cv.pdf", "url": "https://files.canary-fixture.test/resume-zq.pdf", "type": "resume"},`},
		{`"custom_fields": {`, `"custom_fields": {"canary_note": {"name": "Note", "type": "long_text", "value": "prefers calls after nine, canary note"},`},
	}
	for _, r := range repl {
		if !bytes.Contains(b, []byte(r.old)) {
			t.Fatalf("sample has no %q to plant a canary at", r.old)
		}
		b = bytes.Replace(b, []byte(r.old), []byte(r.new), 1)
	}
	for _, c := range canaries {
		if !bytes.Contains(b, []byte(c)) {
			t.Fatalf("canary %q not planted", c)
		}
	}
	return b
}

// vendorCanary is a value planted in one vendor's sample; allowed says the
// HRIS (the one destination with a DPA) may receive it for a hire: names,
// emails and phone numbers. Nothing else may carry any canary.
type vendorCanary struct {
	value   string
	allowed bool
}

// plantVendorCanaries returns, per source, a payload carrying canaries
// (every vendor, SmartRecruiters and a generic hmac source included), and
// the canaries planted.
func plantVendorCanaries(t *testing.T) (map[string][]byte, []vendorCanary) {
	t.Helper()
	var all []vendorCanary
	for i, c := range canaries {
		all = append(all, vendorCanary{c, i < 4})
	}
	out := map[string][]byte{"greenhouse": plantCanaries(t)}
	replace := func(file string, repl []vendorCanary, olds ...string) []byte {
		b := mustRead(t, "../../testdata/samples/"+file)
		for i, old := range olds {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("%s has no %q to plant a canary at", file, old)
			}
			b = bytes.ReplaceAll(b, []byte(old), []byte(repl[i].value))
		}
		all = append(all, repl...)
		return b
	}
	out["ashby"] = replace("ashby/candidateHire.json",
		[]vendorCanary{{"Oriel Brackenbury", true}, {"oriel.b@canary-ashby.test", true}, {"+1 415 555 0999", true}, {"9 Thistlewick Lane, Canarytown", false}},
		"Amara Nwachukwu", "amara.nwachukwu@example.org", "+1 415 555 0182", "2217 Alder Street, Apt 3B, Oakland, CA 94612")
	out["standard"] = replace("standard-webhooks/candidate.hired.json",
		[]vendorCanary{{"Tamsin", true}, {"Wrenfield-Obi", true}, {"tamsin.w@canary-std.test", true}, {"3 Gullwing Terrace", false},
			{"1988-07-14", false}, {"Percival Danemoor", false}},
		"Elif", "Yılmaz-Carter", "elif.yilmaz.carter@example.com", "480 Bergen Street, Apt 2R", "1993-02-27", "Daniel Carter")
	lever, err := sjson.SetBytes(mustRead(t, "../../testdata/samples/lever/candidateHired.json"), "data.note", "call Ottoline Fairbairn-Canary")
	if err != nil {
		t.Fatal(err)
	}
	out["lever"] = lever
	sr, err := sjson.SetBytes(mustRead(t, "../../testdata/samples/smartrecruiters/application.created.json"), "note", "Bartholomew Quince-Canary")
	if err != nil {
		t.Fatal(err)
	}
	out["smartrecruiters"] = sr
	out["workable"] = []byte(`{"event":"candidate_moved","data":{"id":"wk-9","firstname":"Seraphina","lastname":"Vantongeren","email":"seraphina.v@canary-wk.test","stage":"Phone screen"}}`)
	all = append(all, vendorCanary{"call Ottoline Fairbairn-Canary", false}, vendorCanary{"Bartholomew Quince-Canary", false},
		vendorCanary{"Seraphina", false}, vendorCanary{"Vantongeren", false}, vendorCanary{"seraphina.v@canary-wk.test", false})
	return out, all
}

// TestCanary_NoPayloadValueAtRestOrInLogs ingests payloads of every vendor
// carrying canary values through the real binary (accepted, duplicate,
// forged, malformed) to real sinks, and searches the sink bodies, the
// SQLite files (with -wal and -shm), the logs, /metrics and every
// auditor's output. Only the HRIS may receive a hire's name, email and
// phone, as its policy says.
func TestCanary_NoPayloadValueAtRestOrInLogs(t *testing.T) {
	sinks := newBodySink(t)
	dir := t.TempDir()
	logs := &syncBuffer{}
	config := writeConfigDests(t, dir, sinkDestinations(sinks.URL))
	os.WriteFile(filepath.Join(dir, "policies", "hris_notes.rego"), []byte(hrisNotes), 0o644)
	os.WriteFile(filepath.Join(dir, "policies", "hris_notes_test.rego"), []byte(hrisNotesTest), 0o644)
	cfg, err := loadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	p := startVeil(t, config, logs)
	bodies, planted := plantVendorCanaries(t)
	body := bodies["greenhouse"]
	ctx := context.Background()
	client := &http.Client{Timeout: 10 * time.Second}

	status, out, err := postGreenhouse(ctx, client, p.url, body, "canary-1")
	if err != nil || status != 200 {
		t.Fatalf("got %d %v, want 200", status, err)
	}
	id := out["event_id"].(string)
	if status, _, _ := postGreenhouse(ctx, client, p.url, body, "canary-1"); status != 200 {
		t.Fatalf("duplicate: got %d, want 200", status)
	}
	for _, src := range []string{"ashby", "standard", "lever", "workable"} {
		post(t, cfg, p.url, src, bodies[src])
	}
	postSmartRecruiters(t, p.url, "sr-fixture-secret-7Hq2Lm4x", "application.created", bodies["smartrecruiters"])
	// Forged, malformed and oversized requests carrying the canaries.
	for _, b := range [][]byte{body[:len(body)-3], append(bytes.Clone(body), bytes.Repeat([]byte(" "), 2<<20)...)} {
		postGreenhouse(ctx, client, p.url, b, "canary-2")
	}
	req, _ := http.NewRequest(http.MethodPost, p.url+"/hooks/greenhouse", bytes.NewReader(body))
	req.Header.Set("Signature", "sha256 "+strings.Repeat("0", 64))
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
	}
	// Every delivery made: hires to the HRIS (Greenhouse, Ashby, Standard,
	// Lever), every event to BI, the stage change and hires to Slack.
	waitFor(t, "the deliveries", func() bool {
		return len(sinks.got("/hris")) == 4 && len(sinks.got("/bi")) == 6 && len(sinks.got("/slack")) == 5
	})
	hris := bytes.Join(sinks.got("/hris"), []byte("\n"))
	others := bytes.Join([][]byte{bytes.Join(sinks.got("/bi"), nil), bytes.Join(sinks.got("/slack"), nil), bytes.Join(sinks.got("/notes"), nil)}, nil)
	for _, c := range planted {
		if bytes.Contains(others, []byte(c.value)) {
			t.Errorf("a sink other than the HRIS received canary %q", c.value)
		}
		if bytes.Contains(hris, []byte(c.value)) != c.allowed {
			t.Errorf("HRIS sink: canary %q received %v, its policy allows %v", c.value, !c.allowed, c.allowed)
		}
	}
	resp, err := client.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	dataDir := filepath.Join(dir, "data")
	running := dataFiles(t, dataDir) // the WAL still holds the recent pages
	if _, ok := running["veil.db-wal"]; !ok {
		t.Fatalf("no WAL file while running: %v", keys(running))
	}
	p.stop(t)
	stopped := dataFiles(t, dataDir)

	// Positive control: the search works, and the event is really stored
	// (encrypted) with every canary inside.
	st := openE2EStore(t, dir)
	e, err := st.Event(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	stored := bytes.Clone(e.Payload)
	if err := st.Events(ctx, func(e *veil.Event) error { stored = append(stored, e.Payload...); return nil }, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range planted {
		if !bytes.Contains(stored, []byte(c.value)) {
			t.Errorf("the decrypted payloads lack canary %q: the test would not see a leak", c.value)
		}
	}
	// The HRIS destination (the one with a DPA) was given the name: that
	// outbound copy is stored too, and was searched above in its sealed form.
	ds, err := st.EventDeliveries(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[string]string{}
	for _, d := range ds {
		statuses[d.Destination] = d.Status
		if d.Destination == "hris-onboarding" && !bytes.Contains(d.Body, []byte("Zephyrine")) {
			t.Errorf("hris-onboarding body lacks the planted first name: %s", d.Body)
		}
	}
	if statuses["hris-onboarding"] != veil.DeliveryDelivered {
		t.Errorf("delivery statuses: got %v, want hris-onboarding delivered", statuses)
	}

	// The auditor's outputs: both export formats, verification, erasure.
	code, csvOut := runVeil(t, "audit", "export", "--config", config, "--format", "csv")
	code2, jsonlOut := runVeil(t, "audit", "export", "--config", config, "--format", "jsonl")
	if code != 0 || code2 != 0 || !strings.HasPrefix(csvOut, strings.Join(veil.AuditColumns, ",")) {
		t.Fatalf("export: exit %d/%d\n%s", code, code2, csvOut)
	}
	jsonlPath := filepath.Join(dir, "audit.jsonl")
	os.WriteFile(jsonlPath, []byte(jsonlOut), 0o600)
	if code, out := runVeil(t, "audit", "verify", "--config", config); code != 0 || !strings.Contains(out, "OK:") {
		t.Fatalf("verify database: exit %d\n%s", code, out)
	}
	if code, out := runVeil(t, "audit", "verify", jsonlPath); code != 0 {
		t.Fatalf("verify export: exit %d\n%s", code, out)
	}
	tampered := strings.Replace(jsonlOut, `"outcome":"accepted"`, `"outcome":"rejected"`, 1)
	os.WriteFile(jsonlPath, []byte(tampered), 0o600)
	if code, out := runVeil(t, "audit", "verify", jsonlPath); code != 1 || !strings.Contains(out, "first bad seq") {
		t.Fatalf("verify tampered export: exit %d, want 1 naming the seq\n%s", code, out)
	}
	// The access report in every format, and the copy of Art. 15(3): the
	// one file that may hold the person's data.
	reports := map[string]string{}
	for _, f := range []string{"md", "json", "html"} {
		code, out := runVeil(t, "report", "subject", "greenhouse:candidate:61548830", "--format", f, "--config", config)
		if code != 0 || !strings.Contains(out, "Art. 15") && f != "json" {
			t.Fatalf("report subject --format %s: exit %d\n%s", f, code, out)
		}
		reports["report subject "+f] = out
	}
	copyFile := filepath.Join(t.TempDir(), "copy.json")
	if code, out := runVeil(t, "report", "subject", "greenhouse:candidate:61548830", "--copy", copyFile, "--config", config); code != 0 {
		t.Fatalf("report --copy: %s", out)
	}
	if cp := mustRead(t, copyFile); !bytes.Contains(cp, []byte("Zephyrine")) || !bytes.Contains(cp, []byte("17 Lanternmaker Row")) {
		t.Errorf("the Art. 15(3) copy lacks the person's data")
	}
	receiptFile := filepath.Join(t.TempDir(), "receipt.json")
	_, eraseOut := runVeil(t, "erase", "--config", config, "--subject", "greenhouse:candidate:61548830", "--receipt", receiptFile)
	reports["receipt"] = string(mustRead(t, receiptFile))
	// The notice to the HRIS (notify_erasure) goes out once serve runs.
	p = startVeil(t, config, logs)
	waitFor(t, "the subject.erased notice", func() bool { return len(sinks.got("/hris")) == 5 })
	reports["notice"] = string(sinks.got("/hris")[4])
	if _, again, _ := postGreenhouse(ctx, client, p.url, body, "canary-after-erasure"); again["duplicate"] != false {
		t.Errorf("the hire sent again after the erasure: %v", again)
	}
	p.stop(t)
	for name, b := range dataFiles(t, dataDir) { // with the tombstone
		reports["erased/"+name] = string(b)
	}
	_, purgeOut := runVeil(t, "audit", "purge", "--config", config, "--dry-run")
	_, reportOut := runVeil(t, "report", "processing", "--config", config, "--samples", t.TempDir())
	code, subjectOut := runVeil(t, "audit", "export", "--config", config, "--subject", "greenhouse:candidate:61548830")
	if code != 0 || !strings.Contains(subjectOut, `"action":"erased"`) {
		t.Fatalf("export --subject: exit %d, want the erased row\n%s", code, subjectOut)
	}

	outputs := map[string][]byte{"logs": logs.Bytes(), "metrics": metrics, "export.csv": []byte(csvOut),
		"export.jsonl": []byte(jsonlOut), "erase": []byte(eraseOut), "purge": []byte(purgeOut), "export --subject": []byte(subjectOut), "report": []byte(reportOut)}
	for name, b := range running {
		outputs["running/"+name] = b
	}
	for name, b := range reports {
		outputs[name] = []byte(b)
	}
	for name, b := range stopped {
		outputs["stopped/"+name] = b
	}
	for name, b := range outputs {
		for _, c := range planted {
			if bytes.Contains(b, []byte(c.value)) {
				t.Errorf("%s contains canary %q", name, c.value)
			}
		}
	}

}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
