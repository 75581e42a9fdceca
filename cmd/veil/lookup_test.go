package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLookup runs every status of GET /v1/events/{id}/record against the
// real binary, then checks the audit row each one left, and that no key is
// written anywhere.
func TestLookup(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "lookup: {rate: 1, burst: 30}\n")
	addConsumer := func(name, purposes string) string {
		code, out := runVeil(t, "consumer", "add", name, "--purpose", purposes, "--config", config)
		if code != 0 {
			t.Fatalf("consumer add: exit %d\n%s", code, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}
	onboarding := addConsumer("onboarding", "onboarding")
	analytics := addConsumer("analytics", "analytics")
	old := addConsumer("old", "onboarding")
	if code, out := runVeil(t, "consumer", "revoke", "old", "--config", config); code != 0 {
		t.Fatalf("revoke: exit %d\n%s", code, out)
	}
	logs := &syncBuffer{}
	p := startVeil(t, config, logs)
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	_, out, _ := postGreenhouse(ctx, client, p.url, greenhouseBody(t, 1), "lookup-hire")
	hire := out["event_id"].(string)
	stageBody := mustRead(t, "../../testdata/samples/greenhouse/candidate_stage_change.json")
	_, out, _ = postGreenhouse(ctx, client, p.url, stageBody, "lookup-stage")
	stage := out["event_id"].(string)
	_, out, _ = postGreenhouse(ctx, client, p.url, greenhouseBody(t, 2), "lookup-erased")
	erased := out["event_id"].(string)
	if code, out := runVeil(t, "erase", "--subject", "greenhouse:candidate:70000002", "--config", config); code != 0 {
		t.Fatalf("erase: exit %d\n%s", code, out)
	}

	get := func(event, key, purpose string) (int, http.Header, string) {
		req, _ := http.NewRequest(http.MethodGet, p.url+"/v1/events/"+event+"/record", nil)
		if raw, ok := strings.CutPrefix(key, "raw:"); ok {
			req.Header.Set("Authorization", raw)
		} else if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if purpose != "" {
			req.Header.Set("Veil-Purpose", purpose)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	cases := []struct {
		name, event, key, purpose string
		status                    int
		action, outcome           string
		has, hasNot               []string
	}{
		{"no key", hire, "", "onboarding", 401, "", "", nil, nil},
		{"unknown key", hire, "vk_not-a-key", "onboarding", 401, "", "", nil, nil},
		{"key without Bearer", hire, "raw:" + onboarding, "onboarding", 401, "", "", nil, nil},
		{"revoked key", hire, old, "onboarding", 401, "", "", nil, nil},
		{"no purpose", hire, onboarding, "", 403, "lookup_denied", "forbidden", nil, nil},
		{"purpose not granted", hire, onboarding, "analytics", 403, "lookup_denied", "forbidden", nil, nil},
		{"policy denies", stage, onboarding, "onboarding", 403, "lookup_denied", "forbidden", nil, nil},
		{"unknown event", "evt_nosuchevent", onboarding, "onboarding", 404, "lookup_denied", "not_found", nil, nil},
		{"erased", erased, onboarding, "onboarding", 410, "lookup_denied", "gone", nil, nil},
		{"onboarding a hire", hire, onboarding, "onboarding", 200, "lookup", "released",
			[]string{`"first_name":"Mateus"`, `mateus.a.ferreira@example.com`}, []string{"+351", "Rua das Flores", "phone_numbers"}},
		{"analytics", stage, analytics, "analytics", 200, "lookup", "released",
			[]string{`"candidate":{"id":"ps_`, "Technical Interview"}, []string{"Priya", "Raman", "@", "+44"}},
	}
	for _, c := range cases {
		code, h, body := get(c.event, c.key, c.purpose)
		if code != c.status {
			t.Errorf("%s: got %d %s, want %d", c.name, code, body, c.status)
			continue
		}
		if code != 200 {
			var e struct{ Error, Message string }
			if json.Unmarshal([]byte(body), &e) != nil || e.Message == "" {
				t.Errorf("%s: error body %q is not {error, message}", c.name, body)
			}
		} else if h.Get("Veil-Event-Id") != c.event {
			t.Errorf("%s: Veil-Event-Id %q", c.name, h.Get("Veil-Event-Id"))
		}
		for _, s := range c.has {
			if !strings.Contains(body, s) {
				t.Errorf("%s: body lacks %q: %s", c.name, s, body)
			}
		}
		for _, s := range c.hasNot {
			if strings.Contains(body, s) {
				t.Errorf("%s: body holds %q: %s", c.name, s, body)
			}
		}
	}
	// Rate limit: the bucket (burst 30, 1/s) is nearly spent; a burst is refused.
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		code, h, _ := get(hire, onboarding, "onboarding")
		if code == 429 {
			limited = h.Get("Retry-After") != ""
		}
	}
	if !limited {
		t.Error("no 429 with Retry-After after a burst over the limit")
	}
	// A key revoked while serving is refused at once.
	runVeil(t, "consumer", "revoke", "analytics", "--config", config)
	if code, _, _ := get(stage, analytics, "analytics"); code != 401 {
		t.Errorf("revoked while serving: got %d, want 401", code)
	}
	p.stop(t)

	// Each case left its audit row, in order.
	code, jsonl := runVeil(t, "audit", "export", "--config", config, "--format", "jsonl")
	if code != 0 {
		t.Fatal(jsonl)
	}
	var got []string
	failed := 0
	for _, line := range strings.Split(strings.TrimSpace(jsonl), "\n") {
		var e struct {
			Action, Outcome, Actor, Detail string
			Attempt                        int
		}
		json.Unmarshal([]byte(line), &e)
		if e.Action == "lookup" || e.Action == "lookup_denied" {
			got = append(got, e.Action+"/"+e.Outcome)
		}
		if e.Action == "auth_failed" && e.Actor == "lookup" && e.Outcome == "invalid_credential" {
			failed += e.Attempt
		}
	}
	// Requests that name no consumer are counted in aggregate, not a row
	// each: the four cases and the key revoked while serving.
	if failed != 5 {
		t.Errorf("auth_failed rows of the lookup count %d attempts, want 5", failed)
	}
	var want []string
	for _, c := range cases {
		if c.action != "" {
			want = append(want, c.action+"/"+c.outcome)
		}
	}
	for i, w := range want {
		if i >= len(got) || got[i] != w {
			t.Fatalf("audit rows: got %v, want %s at %d", got, w, i)
		}
	}
	// Keys are in no log line, audit row or database file.
	files := map[string][]byte{"logs": logs.Bytes(), "export": []byte(jsonl)}
	ents, _ := os.ReadDir(filepath.Join(dir, "data"))
	for _, e := range ents {
		files[e.Name()] = mustRead(t, filepath.Join(dir, "data", e.Name()))
	}
	for name, b := range files {
		for _, k := range []string{onboarding, analytics, old} {
			if bytes.Contains(b, []byte(k)) || bytes.Contains(b, []byte(k[3:])) {
				t.Errorf("%s holds a consumer key", name)
			}
		}
	}
}

// lookupRecord asks base's gated lookup for event's record with a
// consumer's key and purpose, and returns the status and body.
func lookupRecord(t *testing.T, base, event, key, purpose string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/events/"+event+"/record", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Veil-Purpose", purpose)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
