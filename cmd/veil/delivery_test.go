package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/internal/testenv"
)

const sinkSecret = "whsec_ZGVtby1zaWduaW5nLXNlY3JldC1mb3ItdmVpbC1zaW5r"

// received is one request a test sink got.
type received struct {
	webhookID, eventID, path string
	at                       time.Time
	status                   int
	signatureOK              bool
}

// sink is an httptest destination on loopback whose answer to its n-th
// request (from 1) is chosen by respond.
type sink struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, w http.ResponseWriter) int
}

func newSink(t *testing.T, respond func(n int, w http.ResponseWriter) int) *sink {
	s := &sink{respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.got) + 1
		status := s.respond(n, w)
		s.got = append(s.got, received{webhookID: r.Header.Get("webhook-id"), eventID: r.Header.Get("Veil-Event-Id"),
			path: r.URL.Path, at: time.Now(), status: status, signatureOK: signatureOK(r.Header, body)})
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// signatureOK verifies Standard Webhooks independently of Veil's code.
func signatureOK(h http.Header, body []byte) bool {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sinkSecret, "whsec_"))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	m.Write(body)
	return h.Get("webhook-signature") == "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 20*time.Second, what, cond)
}

// waitWithin is waitFor with a bound of its own, for what a lease holds
// back.
func waitWithin(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSettled waits until no delivery is being sent or waits to be: a
// sink holds a body before Veil has read its answer and recorded the
// outcome, and stopping Veil in between hands the delivery back to the
// queue (it is sent again at the next start), so a test that reads the
// audit log after stopping waits for this first.
func waitSettled(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	count := func(status string) int {
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/deliveries?status="+status, nil)
		req.Header.Set("Authorization", "Bearer e2e-admin-token")
		resp, err := client.Do(req)
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var out struct{ Deliveries []json.RawMessage }
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
			return -1
		}
		return len(out.Deliveries)
	}
	waitFor(t, "no delivery sending or pending", func() bool {
		return count(veil.DeliverySending) == 0 && count(veil.DeliveryPending) == 0
	})
}

func destination(name, url string, maxAttempts int, extra string) string {
	return fmt.Sprintf(`
  - name: %s
    url: %q
    sources: [greenhouse]
    policy: veil.destinations.bi_events
    signing_secret: %q
    allow_private_network: true
    retry: {max_attempts: %d, backoff: [50ms]}
    %s`, name, url, sinkSecret, maxAttempts, extra)
}

// TestDelivery_RetriesDeadLetterReplay runs the real binary against sinks
// that fail in each documented way.
func TestDelivery_RetriesDeadLetterReplay(t *testing.T) {
	flaky := newSink(t, func(n int, _ http.ResponseWriter) int { return map[bool]int{true: 500, false: 200}[n <= 3] })
	var recovered bool
	var recMu sync.Mutex
	down := newSink(t, func(n int, _ http.ResponseWriter) int {
		recMu.Lock()
		defer recMu.Unlock()
		return map[bool]int{true: 200, false: 503}[recovered]
	})
	bad := newSink(t, func(int, http.ResponseWriter) int { return 400 })
	throttled := newSink(t, func(n int, w http.ResponseWriter) int {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			return 429
		}
		return 200
	})
	dir := t.TempDir()
	config := writeConfigDests(t, dir, "destinations:"+
		destination("flaky", flaky.URL+"/flaky", 5, "")+
		destination("down", down.URL+"/down", 3, "")+
		destination("bad", bad.URL+"/bad", 5, "")+
		destination("throttled", throttled.URL+"/throttled", 5, "")+"\n")
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	if status, _, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, 1), "dlv-1"); err != nil || status != 200 {
		t.Fatalf("send: %d %v", status, err)
	}

	waitFor(t, "flaky to succeed on the 4th attempt", func() bool { return len(flaky.requests()) >= 4 })
	waitFor(t, "down to be tried 3 times", func() bool { return len(down.requests()) >= 3 })
	waitFor(t, "throttled to be retried", func() bool { return len(throttled.requests()) >= 2 })
	waitFor(t, "bad to be tried", func() bool { return len(bad.requests()) >= 1 })

	fr := flaky.requests()
	if len(fr) != 4 || fr[3].status != 200 {
		t.Fatalf("flaky: %d requests, last %d; want 4, the 4th answered 200", len(fr), fr[len(fr)-1].status)
	}
	for _, r := range fr {
		if r.webhookID != fr[0].webhookID || !strings.HasPrefix(r.webhookID, "dlv_") {
			t.Errorf("flaky: webhook-id %q differs from the first %q", r.webhookID, fr[0].webhookID)
		}
	}
	if tr := throttled.requests(); tr[1].at.Sub(tr[0].at) < 900*time.Millisecond {
		t.Errorf("throttled: retried after %s, want Retry-After's 1s honoured", tr[1].at.Sub(tr[0].at))
	}
	time.Sleep(700 * time.Millisecond) // more than the poll interval: nothing more may arrive
	if n := len(bad.requests()); n != 1 {
		t.Errorf("bad (400): %d requests, want 1 (dead at once)", n)
	}
	if n := len(down.requests()); n != 3 {
		t.Errorf("down (503): %d requests, want max_attempts = 3", n)
	}
	for _, s := range []*sink{flaky, down, bad, throttled} {
		for _, r := range s.requests() {
			if !r.signatureOK {
				t.Errorf("%s: signature does not verify", r.path)
			}
		}
	}

	// The dead-letter inbox holds down and bad; replay down once it recovers.
	code, out := runVeil(t, "dlq", "list", "--config", config, "--url", p.url)
	if code != 0 || !strings.Contains(out, "2 dead deliveries") || !strings.Contains(out, "down") || !strings.Contains(out, "http 400") {
		t.Fatalf("dlq list: exit %d\n%s", code, out)
	}
	recMu.Lock()
	recovered = true
	recMu.Unlock()
	downID := down.requests()[0].webhookID
	code, out = runVeil(t, "dlq", "replay", downID, "--config", config, "--url", p.url)
	if code != 0 {
		t.Fatalf("dlq replay: exit %d\n%s", code, out)
	}
	waitFor(t, "the replay to reach down", func() bool { return len(down.requests()) >= 4 })
	if r := down.requests()[3]; r.status != 200 || r.webhookID != downID {
		t.Fatalf("replay: got %d with %s, want 200 with %s", r.status, r.webhookID, downID)
	}
	// Replaying what is not dead is refused with a clear message.
	code, out = runVeil(t, "dlq", "replay", downID, "--config", config, "--url", p.url)
	if code != 1 || !strings.Contains(out, "Only a dead delivery can be replayed") {
		t.Fatalf("replay of a delivered one: exit %d\n%s", code, out)
	}
	p.stop(t)
}

// TestDelivery_SSRFOnLoopback: a destination on loopback without
// allow_private_network is refused at dial time and dead with the reason;
// the sink (also on loopback) receives nothing.
func TestDelivery_SSRFOnLoopback(t *testing.T) {
	s := newSink(t, func(int, http.ResponseWriter) int { return 200 })
	port := s.URL[strings.LastIndex(s.URL, ":")+1:]
	var dests string
	for i, u := range []string{s.URL, "http://[::1]:" + port, "http://localhost:" + port} {
		dests += strings.Replace(destination(fmt.Sprintf("guarded-%d", i), u+"/x", 3, ""), "allow_private_network: true", "allow_private_network: false", 1)
	}
	p := startVeil(t, writeConfigDests(t, t.TempDir(), "destinations:"+dests+"\n"), &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	if status, _, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, 1), "ssrf-1"); err != nil || status != 200 {
		t.Fatalf("send: %d %v", status, err)
	}
	req, _ := http.NewRequest(http.MethodGet, p.url+"/v1/deliveries?status=dead", nil)
	req.Header.Set("Authorization", "Bearer e2e-admin-token")
	waitFor(t, "three dead deliveries", func() bool {
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Count(string(b), `"detail":"ssrf: `) == 3
	})
	if n := len(s.requests()); n != 0 {
		t.Fatalf("the guarded sink received %d requests, want 0", n)
	}
	p.stop(t)
}

// TestDelivery_KillDuringDelivery: SIGKILL while deliveries are in flight,
// restart, and every accepted event reaches every destination whose policy
// allows it at least once (counted by webhook-id).
func TestDelivery_KillDuringDelivery(t *testing.T) {
	testenv.Slow(t, "kill -9 of the binary")
	// Slow sinks, two attempts at a time each (no adaptive rise): the 360
	// deliveries take seconds, so the kill lands while they are under way
	// even when the race detector slows the sending down.
	slow := func(int, http.ResponseWriter) int { time.Sleep(50 * time.Millisecond); return 200 }
	sinks := []*sink{newSink(t, slow), newSink(t, slow), newSink(t, slow)}
	var dests string
	for i, s := range sinks {
		dests += destination(fmt.Sprintf("d%d", i), s.URL+"/d", 10, "concurrency: 2\n    max_concurrency: 2")
	}
	dir := t.TempDir()
	config := writeConfigDests(t, dir, "destinations:"+dests+"\n")
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	const events = 120
	acked := map[string]bool{}
	for n := 0; n < events; n++ {
		status, out, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, n), fmt.Sprintf("kill-%d", n))
		if err != nil || status != 200 {
			t.Fatalf("send %d: %d %v", n, status, err)
		}
		acked[out["event_id"].(string)] = true
	}
	waitFor(t, "deliveries to be under way", func() bool { return len(sinks[0].requests()) >= 20 })
	p.cmd.Process.Kill()
	<-p.done
	before := len(sinks[0].requests()) + len(sinks[1].requests()) + len(sinks[2].requests())
	if before >= 3*events {
		t.Fatalf("all %d deliveries were done before the kill; the test proves nothing", before)
	}
	p2 := startVeil(t, config, &syncBuffer{})
	for i, s := range sinks {
		waitFor(t, fmt.Sprintf("sink %d to get every event", i), func() bool {
			seen := map[string]bool{}
			for _, r := range s.requests() {
				if r.status == 200 && acked[r.eventID] {
					seen[r.webhookID] = true
				}
			}
			return len(seen) == events
		})
	}
	p2.stop(t)
	t.Logf("delivered before the kill: %d of %d", before, 3*events)
}
