package proxy_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// signAs signs body for source with secret at ts, independently of the
// code under test, and returns the headers and the body to send.
func signAs(tb testing.TB, source, secret string, body []byte, ts time.Time) (http.Header, []byte) {
	tb.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	switch source {
	case "greenhouse":
		h.Set("Greenhouse-Event-ID", veil.NewID("gh-"))
		h.Set("Signature", "sha256 "+hexHMAC(secret, string(body)))
	case "ashby":
		h.Set("Ashby-Signature", "sha256="+hexHMAC(secret, string(body)))
	case "lever":
		ms := strconv.FormatInt(ts.UnixMilli(), 10)
		sig := hexHMAC(secret, "9c2b7e41d0a84f6e", ms)
		body = []byte(fmt.Sprintf(`{"triggeredAt": %s, "event": "candidateHired", "signature": %q, "token": "9c2b7e41d0a84f6e", "data": %s}`, ms, sig, body))
	case "standard":
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		id, sec := veil.NewID("msg_"), strconv.FormatInt(ts.Unix(), 10)
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%s.%s", id, sec, body)
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", sec)
		h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	case "smartrecruiters":
		sec := strconv.FormatInt(ts.Unix(), 10)
		h.Set("smartrecruiters-timestamp", sec)
		h.Set("event-id", veil.NewID("sr-"))
		h.Set("event-name", "application.status.updated")
		h.Set("event-version", "1")
		h.Set("link", "<https://api.smartrecruiters.com/candidates/cid>; rel=self")
		h.Set("smartrecruiters-signature", "v1="+hexHMAC(secret, sec, ".", string(body), ".", h.Get("event-id"), ".",
			h.Get("event-name"), ".", h.Get("event-version"), ".", h.Get("link")))
	case "workable":
		h.Set("X-Workable-Signature", hexHMAC(secret, string(body)))
	case "teamtailor":
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		h.Set("X-Signature", "sha256="+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	default:
		tb.Fatalf("no signer for %s", source)
	}
	return h, body
}

var secrets = map[string]string{
	"greenhouse": "gh-fixture-secret-Qm7v2Lx9", "lever": "lever-fixture-sigtoken-8d2e6a51",
	"ashby": "ashby-fixture-secret-4f1c9e7a2b", "standard": "whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw=",
	"smartrecruiters": "sr-fixture-secret-7Hq2Lm4x", "workable": "workable-test-secret-77ab", "teamtailor": "tt-test-secret-0c1f",
}

// timestamped lists the sources whose scheme signs a timestamp.
var timestamped = map[string]bool{"lever": true, "standard": true, "smartrecruiters": true}

// hookCase is one accepted request and the clock at which it is fresh.
type hookCase struct {
	name   string
	source string
	body   []byte
	header http.Header
	now    time.Time
}

func hookCases(t *testing.T) []hookCase {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var cases []hookCase
	for _, s := range loadSamples(t) {
		c := hookCase{name: s.file, source: s.source, body: s.body, header: s.header, now: now}
		if !s.signed.IsZero() {
			c.now = s.signed.Add(time.Minute)
		}
		cases = append(cases, c)
	}
	// Vendors without shipped samples: signed here, independently.
	for _, src := range []string{"smartrecruiters", "workable", "teamtailor"} {
		body := []byte(`{"job_id":"jid-1","candidate_id":"cid-` + src + `","event":"candidate_moved","type":"candidate_moved"}`)
		h, body := signAs(t, src, secrets[src], body, now)
		cases = append(cases, hookCase{name: src + "/signed-here", source: src, body: body, header: h, now: now.Add(time.Minute)})
	}
	return cases
}

func TestHook_Vendors(t *testing.T) {
	for _, c := range hookCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each case waits out the server's 0.5 s lingering close after the 413
			ts, _ := newTestServer(t, c.now)
			url := ts.URL + "/hooks/" + c.source

			// Good: accepted with an event id.
			a := post(t, url, c.header, c.body)
			if a.status != 200 || a.body["duplicate"] != false {
				t.Fatalf("good request: got %d %v, want 200 duplicate false", a.status, a.body)
			}
			id, _ := a.body["event_id"].(string)
			if !strings.HasPrefix(id, "evt_") {
				t.Fatalf("event_id: got %q, want evt_…", id)
			}
			// Resend: same id, duplicate.
			if a := post(t, url, c.header, c.body); a.status != 200 || a.body["event_id"] != id || a.body["duplicate"] != true {
				t.Fatalf("resend: got %d %v, want 200 %s duplicate true", a.status, a.body, id)
			}

			rejected := []struct {
				name   string
				header http.Header
				body   []byte
				status int
				code   string
			}{
				{"tampered", c.header, tamper(c.source, c.body), 401, veil.EBADSIGNATURE},
				{"wrong secret", wrongSecret(t, c), resignedBody(t, c), 401, veil.EBADSIGNATURE},
				{"missing signature", stripSignature(c.source, c.header), stripLeverSignature(c.source, c.body), 401, veil.ENOSIGNATURE},
				{"malformed JSON", malformed(t, c), malformedBody(t, c), 400, veil.EMALFORMED},
				{"2 MiB body", c.header, bytes.Repeat([]byte("x"), 2<<20), 413, veil.ETOOLARGE},
			}
			for _, r := range rejected {
				a := post(t, url, r.header, r.body)
				if a.status != r.status || a.body["error"] != r.code {
					t.Errorf("%s: got %d %v, want %d %s", r.name, a.status, a.body, r.status, r.code)
				}
				if msg, _ := a.body["message"].(string); msg == "" {
					t.Errorf("%s: error body has no message", r.name)
				}
			}
		})
	}
}

func TestHook_StaleTimestamp(t *testing.T) {
	for _, c := range hookCases(t) {
		if !timestamped[c.source] {
			continue
		}
		for _, skew := range []time.Duration{6 * time.Minute, -6 * time.Minute} {
			t.Run(fmt.Sprintf("%s/%s", c.name, skew), func(t *testing.T) {
				// The clock sits 6 minutes after (or before) the signed time.
				ts, _ := newTestServer(t, c.now.Add(-time.Minute).Add(skew))
				a := post(t, ts.URL+"/hooks/"+c.source, c.header, c.body)
				if a.status != 401 || a.body["error"] != veil.ESTALE {
					t.Fatalf("got %d %v, want 401 %s", a.status, a.body, veil.ESTALE)
				}
			})
		}
	}
}

func TestHook_UnknownSource(t *testing.T) {
	ts, _ := newTestServer(t, time.Now())
	a := post(t, ts.URL+"/hooks/nosuch", http.Header{}, []byte(`{}`))
	if a.status != 404 || a.body["error"] != veil.EUNKNOWNSOURCE {
		t.Fatalf("got %d %v, want 404 %s", a.status, a.body, veil.EUNKNOWNSOURCE)
	}
}

func TestHook_SmartRecruitersHandshake(t *testing.T) {
	ts, _ := newTestServer(t, time.Now())
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/hooks/smartrecruiters", nil)
	req.Header.Set("X-Hook-Secret", "hs-3f9a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Hook-Secret") != "hs-3f9a" {
		t.Fatalf("got %d X-Hook-Secret=%q, want 200 hs-3f9a", resp.StatusCode, resp.Header.Get("X-Hook-Secret"))
	}
}

// TestHook_StandardRotation checks that any matching entry of a multi-signature
// header is accepted: offer.created.json carries the previous secret's first.
func TestHook_StandardRotation(t *testing.T) {
	for _, c := range hookCases(t) {
		if c.name != "standard-webhooks/offer.created.json" {
			continue
		}
		if n := len(strings.Fields(c.header.Get("webhook-signature"))); n != 2 {
			t.Fatalf("sample has %d signatures, want 2", n)
		}
		ts, _ := newTestServer(t, c.now)
		if a := post(t, ts.URL+"/hooks/standard", c.header, c.body); a.status != 200 {
			t.Fatalf("got %d %v, want 200", a.status, a.body)
		}
		return
	}
	t.Fatal("sample standard-webhooks/offer.created.json not found")
}

// tamper changes one byte of the signed content. Lever does not sign data,
// so its token is changed instead.
func tamper(source string, body []byte) []byte {
	if source == "lever" {
		return bytes.Replace(body, []byte(`"9c2b7e41d0a84f6e"`), []byte(`"9c2b7e41d0a84f6f"`), 1)
	}
	out := bytes.Clone(body)
	i := bytes.IndexByte(out, 'a')
	out[i] = 'b'
	return out
}

func wrongSecret(t *testing.T, c hookCase) http.Header {
	h, _ := signAs(t, c.source, wrongSecretFor(c.source), unwrapLever(c), c.now)
	return h
}

func resignedBody(t *testing.T, c hookCase) []byte {
	_, b := signAs(t, c.source, wrongSecretFor(c.source), unwrapLever(c), c.now)
	return b
}

func wrongSecretFor(source string) string {
	if source == "standard" {
		return "whsec_myGgXiqeKVdCCIdmNKGGqap9cOWHt7s78xnxnwxjkg4="
	}
	return "not-the-secret"
}

// unwrapLever returns the data object of a Lever body (signAs wraps it again).
func unwrapLever(c hookCase) []byte {
	if c.source != "lever" {
		return c.body
	}
	i := bytes.Index(c.body, []byte(`"data":`))
	return bytes.TrimSuffix(bytes.TrimSpace(c.body[i+len(`"data":`):]), []byte("}"))
}

func stripSignature(source string, h http.Header) http.Header {
	h = h.Clone()
	for _, k := range []string{"Signature", "Ashby-Signature", "webhook-signature", "smartrecruiters-signature", "X-Workable-Signature", "X-Signature"} {
		h.Del(k)
	}
	return h
}

func stripLeverSignature(source string, body []byte) []byte {
	if source != "lever" {
		return body
	}
	i := bytes.Index(body, []byte(`"signature"`))
	j := bytes.Index(body[i:], []byte(",")) + i + 1
	return append(bytes.Clone(body[:i]), body[j:]...)
}

func malformed(t *testing.T, c hookCase) http.Header {
	h, _ := signAs(t, c.source, secrets[c.source], []byte(`{"action": "candidate_stage_change", "payload": `), c.now)
	return h
}

func malformedBody(t *testing.T, c hookCase) []byte {
	if c.source == "lever" {
		return []byte(`{"triggeredAt": 1, "event": `)
	}
	return []byte(`{"action": "candidate_stage_change", "payload": `)
}
