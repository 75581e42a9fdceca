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

// TestCanary_NoPayloadValueAtRestOrInLogs ingests payloads carrying canary
// values through the real binary (accepted, duplicate, forged, malformed) and
// searches the SQLite files (with -wal and -shm), the logs and /metrics.
func TestCanary_NoPayloadValueAtRestOrInLogs(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	p := startVeil(t, writeConfig(t, dir, ""), logs)
	body := plantCanaries(t)
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
	// Forged, malformed and oversized requests carrying the canaries.
	for _, b := range [][]byte{body[:len(body)-3], append(bytes.Clone(body), bytes.Repeat([]byte(" "), 2<<20)...)} {
		postGreenhouse(ctx, client, p.url, b, "canary-2")
	}
	req, _ := http.NewRequest(http.MethodPost, p.url+"/hooks/greenhouse", bytes.NewReader(body))
	req.Header.Set("Signature", "sha256 "+strings.Repeat("0", 64))
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
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
	for _, c := range canaries {
		if !bytes.Contains(e.Payload, []byte(c)) {
			t.Errorf("decrypted payload lacks canary %q: the test would not see a leak", c)
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
	for _, d := range []string{"hris-onboarding", "slack-hiring"} {
		// Allowed: queued, or being retried (the e2e destinations refuse connections).
		if s := statuses[d]; s != veil.DeliveryPending && s != veil.DeliverySending {
			t.Errorf("delivery statuses: got %v, want %s allowed (pending or sending)", statuses, d)
		}
	}

	// The auditor's outputs: both export formats, verification, erasure.
	config := filepath.Join(dir, "veil.yaml")
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
	_, eraseOut := runVeil(t, "erase", "--config", config, "--subject", "greenhouse:candidate:61548830")
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
	for name, b := range stopped {
		outputs["stopped/"+name] = b
	}
	for name, b := range outputs {
		for _, c := range canaries {
			if bytes.Contains(b, []byte(c)) {
				t.Errorf("%s contains canary %q", name, c)
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
