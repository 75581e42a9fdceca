package main

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestUpstreamLookup: a source in upstream mode leaves no payload in the
// store; a lookup returns the upstream record minimised by the policy; an
// outage answers 502 without the upstream's body, a stall 504.
func TestUpstreamLookup(t *testing.T) {
	gh, lv := newFakeATSAPI(t, "greenhouse"), newFakeATSAPI(t, "lever")
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	cfgText := string(mustRead(t, config))
	cfgText = strings.Replace(cfgText, "  - {name: greenhouse, vendor: greenhouse, secret: gh-fixture-secret-Qm7v2Lx9}",
		"  - {name: greenhouse, vendor: greenhouse, secret: gh-fixture-secret-Qm7v2Lx9, lookup: upstream, api: {base_url: \""+gh.URL+"/v3\", token_url: \""+gh.URL+"/token\", client_id: "+fakeClientID+", client_secret: "+fakeClientSecret+", user_id: \""+fakeUserID+"\", timeout: 300ms, allow_private_network: true}}", 1)
	cfgText = strings.Replace(cfgText, "  - {name: lever, vendor: lever, secret: lever-fixture-sigtoken-8d2e6a51}",
		"  - {name: lever, vendor: lever, secret: lever-fixture-sigtoken-8d2e6a51, lookup: upstream, api: {base_url: \""+lv.URL+"\", key: "+fakeAPIKey+", timeout: 300ms, allow_private_network: true}}", 1)
	os.WriteFile(config, []byte(cfgText), 0o600)
	_, keyOut := runVeil(t, "consumer", "add", "onboarding", "--purpose", "onboarding", "--config", config)
	key := strings.TrimSpace(keyOut[strings.LastIndex(strings.TrimSpace(keyOut), "\n")+1:])

	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	status, out, err := postGreenhouse(context.Background(), client, p.url, mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json"), "up-1")
	if err != nil || status != 200 {
		t.Fatalf("send: %d %v", status, err)
	}
	ghEvent := out["event_id"].(string)
	code, sendOut := runVeil(t, "send", "--source", "lever", "--config", config, "--url", p.url, "../../testdata/samples/lever/candidateHired.json")
	if code != 0 {
		t.Fatalf("send lever: %s", sendOut)
	}
	lvEvent := sendOut[strings.Index(sendOut, "evt_") : strings.Index(sendOut, "evt_")+30]

	lookup := func(event string) (int, string) { return lookupRecord(t, p.url, event, key, "onboarding") }
	code, body := lookup(ghEvent)
	// The fetched record is normalised like a webhook: the normal form's
	// fields, whatever the API's shape.
	if code != 200 || !strings.Contains(body, `"type":"application.hired"`) || !strings.Contains(body, `"first_name":"Mateus-Upstream"`) || !strings.Contains(body, "mateus.upstream@example.com") ||
		strings.Contains(body, "+351") || strings.Contains(body, "Rua das Flores") {
		t.Fatalf("greenhouse upstream lookup: %d %s", code, body)
	}
	code, body = lookup(lvEvent)
	if code != 200 || !strings.Contains(body, `"type":"application.hired"`) || !strings.Contains(body, `"name":"Lena Upstream-Vogt"`) || strings.Contains(body, "+49") {
		t.Fatalf("lever upstream lookup: %d %s", code, body)
	}
	gh.set(func(f *fakeATSAPI) { f.mode = "outage" })
	if code, body := lookup(ghEvent); code != 502 || strings.Contains(body, "upstream-secret-stacktrace") || !strings.Contains(body, `"error":"upstream_error"`) {
		t.Fatalf("outage: %d %s, want 502 without the upstream's body", code, body)
	}
	gh.set(func(f *fakeATSAPI) { f.mode = "stall" })
	if code, body := lookup(ghEvent); code != 504 || !strings.Contains(body, `"error":"upstream_timeout"`) {
		t.Fatalf("stall: %d %s, want 504", code, body)
	}
	p.stop(t)

	// The store holds no payload for either source: only ids.
	db, err := sql.Open("sqlite", filepath.Join(dir, "data", "veil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var held, upstream int
	db.QueryRow(`SELECT count(p.sealed), count(e.upstream) FROM events e LEFT JOIN payloads p ON p.event_id = e.id
		WHERE e.source IN ('greenhouse', 'lever')`).Scan(&held, &upstream)
	if held != 0 || upstream != 2 {
		t.Fatalf("upstream sources: %d payloads and %d id sets stored, want 0 and 2", held, upstream)
	}
	for _, f := range []string{"veil.db", "veil.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, "data", f))
		for _, v := range []string{"Albuquerque", "Mateus", "mateus.a.ferreira", "upstream-secret"} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds %q", f, v)
			}
		}
	}
}
