package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// listener is a loopback server no destination names: a policy that
// reached it would have sent data past every guard.
func listener(t *testing.T) (url string, hits *atomic.Int64) {
	t.Helper()
	hits = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

// refusedPolicies are destination policies that call a built-in Veil
// refuses, each with a test that would call it too, and the line the
// call is on.
func refusedPolicies(url string) map[string]struct {
	src  string
	line int
} {
	return map[string]struct {
		src  string
		line int
	}{
		"http.send": {fmt.Sprintf(`package veil.destinations.bi_events

allow if {
	http.send({"method": "POST", "url": %q, "body": input.payload})
}
`, url+"/exfiltrate"), 4},
		"net.lookup_ip_addr": {`package veil.destinations.bi_events

allow if {
	count(net.lookup_ip_addr("localhost")) > 0
}
`, 4},
		"opa.runtime": {`package veil.destinations.bi_events

allow if {
	opa.runtime().env.HOME != ""
}
`, 4},
	}
}

const refusedTest = `package veil.destinations.bi_events_test

import data.veil.destinations.bi_events

test_allow if {
	bi_events.allow with input as {"payload": {"x": 1}}
}
`

// writeRefused replaces the shipped BI policy and its test in dir's
// policy folder with src and a test that calls it.
func writeRefused(t *testing.T, pol, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(pol, "bi_events.rego"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "bi_events_test.rego"), []byte(refusedTest), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSandbox_RefusedBuiltinsAtStartAndInPolicyTest: a policy that calls
// http.send, net.lookup_ip_addr or opa.runtime stops `veil serve` from
// starting and fails `veil policy test` and `veil policy check`, each
// naming the built-in, the file and the line; the listener the policy
// names receives nothing. The shipped policies still load.
func TestSandbox_RefusedBuiltinsAtStartAndInPolicyTest(t *testing.T) {
	url, hits := listener(t)
	for builtin, p := range refusedPolicies(url) {
		t.Run(builtin, func(t *testing.T) {
			dir := t.TempDir()
			config := writeConfig(t, dir, "")
			pol := filepath.Join(dir, "policies")
			want := fmt.Sprintf("bi_events.rego:%d: rego_type_error: %s is not allowed in Veil policies", p.line, builtin)
			if code, out := runBin(t, nil, "policy", "check", "--config", config); code != 0 {
				t.Fatalf("shipped policies: policy check exit %d\n%s", code, out)
			}
			writeRefused(t, pol, p.src)
			for _, args := range [][]string{{"serve", "--config", config}, {"policy", "test", pol}, {"policy", "check", "--config", config}} {
				code, out := runBin(t, nil, args...)
				if code != 1 || !strings.Contains(out, want) {
					t.Errorf("veil %s: exit %d, want 1 and %q\n%s", strings.Join(args[:2], " "), code, want, out)
				}
			}
			// The refused start is audited, once, and nothing else is.
			st := openE2EStore(t, dir)
			var actions []string
			st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error {
				actions = append(actions, e.Action)
				return nil
			})
			if len(actions) != 1 || actions[0] != veil.ActionPolicyRejected {
				t.Errorf("audit rows after a refused start: %v, want one policy_rejected", actions)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the listener received %d requests, want 0", n)
	}
}

// TestSandbox_RefusedAtHotReload: edits that add http.send,
// net.lookup_ip_addr or opa.runtime to a running policy are rejected
// (audited), the running set keeps deciding, and the listener receives
// nothing, while webhooks flow.
func TestSandbox_RefusedAtHotReload(t *testing.T) {
	url, hits := listener(t)
	dir := t.TempDir()
	logs := &syncBuffer{}
	p := startVeil(t, writeConfig(t, dir, ""), logs)
	waitFor(t, "the first policy load", func() bool { return strings.Contains(string(logs.Bytes()), `"msg":"policy set loaded"`) })
	builtins := []string{"http.send", "net.lookup_ip_addr", "opa.runtime"}
	for i, builtin := range builtins {
		writeRefused(t, filepath.Join(dir, "policies"), refusedPolicies(url)[builtin].src)
		waitFor(t, "the rejection of the edit calling "+builtin, func() bool {
			return strings.Count(string(logs.Bytes()), `"msg":"policy set rejected; the running set stays"`) >= i+1 &&
				strings.Contains(string(logs.Bytes()), builtin+" is not allowed in Veil policies")
		})
	}
	client := &http.Client{Timeout: 10 * time.Second}
	status, out, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, 1), "sandbox-1")
	if err != nil || status != 200 {
		t.Fatalf("send: %d %v", status, err)
	}
	p.stop(t)
	if n := hits.Load(); n != 0 {
		t.Fatalf("the listener received %d requests, want 0", n)
	}
	st := openE2EStore(t, dir)
	ds, err := st.EventDeliveries(context.Background(), out["event_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Destination == "bi-warehouse" && (d.Status == veil.DeliveryFiltered || len(d.FieldsKept) == 0) {
			t.Errorf("bi-warehouse: %s with %d fields kept, want it allowed under the running (shipped) set", d.Status, len(d.FieldsKept))
		}
	}
	rejected := map[string]int{}
	st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error {
		for _, b := range builtins {
			if e.Action == veil.ActionPolicyRejected && strings.Contains(e.Detail, b+" is not allowed") {
				rejected[b]++
			}
		}
		return nil
	})
	for _, b := range builtins {
		if rejected[b] < 1 {
			t.Errorf("no policy_rejected row names %s", b)
		}
	}
}

// pathological is a destination policy whose decision never ends in time:
// a comprehension of nine million pairs.
const pathological = `package veil.destinations.bi_events

allow if {
	count({[x, y] | some x in numbers.range(1, 3000); some y in numbers.range(1, 3000)}) > 0
}
`

// TestSandbox_PolicyTimeout: a pathological policy costs its destination's
// delivery (blocked, policy_timeout, audited and counted) and nothing
// else: the webhook answers 200 after its commit and the other
// destinations decide as before.
func TestSandbox_PolicyTimeout(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "policy_timeout: 50ms\n")
	pol := filepath.Join(dir, "policies")
	os.Remove(filepath.Join(pol, "bi_events_test.rego"))
	if err := os.WriteFile(filepath.Join(pol, "bi_events.rego"), []byte(pathological), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	var ids []string
	for i := range 3 {
		status, out, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, i), fmt.Sprintf("timeout-%d", i))
		if err != nil || status != 200 {
			t.Fatalf("send %d: got %d %v, want 200", i, status, err)
		}
		ids = append(ids, out["event_id"].(string))
	}
	resp, err := client.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `veil_policy_timeouts_total{destination="bi-warehouse"} 3`) {
		t.Errorf("metrics do not count 3 timeouts for bi-warehouse:\n%s", grepLines(string(metrics), "veil_policy_timeouts"))
	}
	p.stop(t)
	st := openE2EStore(t, dir)
	for _, id := range ids {
		ds, err := st.EventDeliveries(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, d := range ds {
			got[d.Destination] = d.Status
			if d.Status == veil.DeliverySending { // stopped mid-attempt
				got[d.Destination] = veil.DeliveryPending
			}
			if d.Status == veil.DeliveryBlocked {
				got[d.Destination] += " " + d.Detail
			}
		}
		// The others are allowed: waiting for (the discard port's) next attempt.
		want := map[string]string{"bi-warehouse": "blocked policy_timeout", "slack-hiring": "pending", "hris-onboarding": "pending"}
		for dest, w := range want {
			if got[dest] != w {
				t.Errorf("event %s → %s: %q, want %q", id, dest, got[dest], w)
			}
		}
	}
	rows := 0
	st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error {
		if e.Action == veil.ActionBlockedPolicy && e.Outcome == veil.DetailPolicyTimeout && e.Destination == "bi-warehouse" {
			rows++
		}
		return nil
	})
	if rows != 3 {
		t.Errorf("%d blocked_policy rows with outcome policy_timeout, want 3", rows)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
