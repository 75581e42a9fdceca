package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// TestHotReload edits a policy while the real binary runs: the next event
// gets the new decision; a broken edit is rejected (and audited) and the
// last good set keeps serving.
func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	p := startVeil(t, writeConfig(t, dir, ""), logs)
	client := &http.Client{Timeout: 10 * time.Second}
	stage := mustRead(t, "../../testdata/samples/greenhouse/candidate_stage_change.json")
	send := func(eventID string) string {
		t.Helper()
		// Each a distinct application: a byte-identical body is a duplicate.
		body := strings.Replace(string(stage), `"id": 88213407`, `"id": 8821`+fmt.Sprint(len(eventID)*31+int(eventID[len(eventID)-1])), 1)
		status, out, err := postGreenhouse(context.Background(), client, p.url, []byte(body), eventID)
		if err != nil || status != 200 {
			t.Fatalf("send: got %d %v, want 200", status, err)
		}
		return out["event_id"].(string)
	}
	waitLog := func(msg string, n int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for strings.Count(string(logs.Bytes()), msg) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %d× %q in the log:\n%s", n, msg, logs.Bytes())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLog(`"msg":"policy set loaded"`, 1)
	before := send("reload-1")

	// A compliance officer narrows Slack to hires only (and its tests with it).
	pol := filepath.Join(dir, "policies")
	os.Remove(filepath.Join(pol, "slack_hiring_test.rego"))
	src := string(mustRead(t, filepath.Join(pol, "slack_hiring.rego")))
	narrowed := strings.Replace(src, `moves := {"application.stage_changed", "application.hired"}`, `moves := {"application.hired"}`, 1)
	if narrowed == src {
		t.Fatal("could not edit the policy")
	}
	if err := os.WriteFile(filepath.Join(pol, "slack_hiring.rego"), []byte(narrowed), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(`"msg":"policy set loaded"`, 2)
	after := send("reload-2")

	// A broken edit is rejected; the narrowed set keeps serving.
	if err := os.WriteFile(filepath.Join(pol, "slack_hiring.rego"), []byte(narrowed+"\nallow if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(`"msg":"policy set rejected; the running set stays"`, 1)
	broken := send("reload-3")
	p.stop(t)

	st := openE2EStore(t, dir)
	for _, c := range []struct {
		event, want string
	}{{before, veil.DeliveryPending}, {after, veil.DeliveryFiltered}, {broken, veil.DeliveryFiltered}} {
		ds, err := st.EventDeliveries(context.Background(), c.event)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, d := range ds {
			if d.Destination == "slack-hiring" {
				got = d.Status
			}
		}
		if got != c.want {
			t.Errorf("event %s: slack-hiring %q, want %q", c.event, got, c.want)
		}
	}
	actions := map[string]int{}
	st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error {
		actions[e.Action]++
		return nil
	})
	if actions[veil.ActionPolicyLoaded] != 2 || actions[veil.ActionPolicyRejected] != 1 {
		t.Errorf("audit: %d policy_loaded, %d policy_rejected; want 2 and 1", actions[veil.ActionPolicyLoaded], actions[veil.ActionPolicyRejected])
	}
}
