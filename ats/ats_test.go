package ats

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

// fixtureSecrets are the secrets testdata/samples were signed with.
var fixtureSecrets = map[string]string{
	veil.VendorGreenhouse:      "gh-fixture-secret-Qm7v2Lx9",
	veil.VendorLever:           "lever-fixture-sigtoken-8d2e6a51",
	veil.VendorAshby:           "ashby-fixture-secret-4f1c9e7a2b",
	veil.VendorStandard:        "whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw=",
	veil.VendorSmartRecruiters: "sr-fixture-secret-7Hq2Lm4x",
	veil.VendorHMAC:            "workable-test-secret-77ab",
}

var sampleDirs = map[string]string{"greenhouse": veil.VendorGreenhouse, "lever": veil.VendorLever, "ashby": veil.VendorAshby,
	"standard-webhooks": veil.VendorStandard, "smartrecruiters": veil.VendorSmartRecruiters}

func source(vendor string, secrets ...string) *veil.Source {
	src := &veil.Source{Name: vendor, Vendor: vendor, Tolerance: veil.Duration(5 * time.Minute)}
	if len(secrets) == 0 {
		secrets = []string{fixtureSecrets[vendor]}
	}
	src.Secret, src.Secrets = secrets[0], secrets[1:]
	if vendor == veil.VendorHMAC {
		src.HMAC = &veil.HMACConfig{Header: "X-Workable-Signature", Encoding: "hex"}
	}
	return src
}

func mustScheme(t testing.TB, src *veil.Source) Scheme {
	t.Helper()
	s, err := New(src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type sample struct {
	vendor, file string
	body         []byte
	header       http.Header
	now          time.Time // when the signed timestamp is fresh
}

func samples(t testing.TB) []sample {
	t.Helper()
	raw, err := os.ReadFile("../testdata/samples/headers.json")
	if err != nil {
		t.Fatal(err)
	}
	var headers map[string]map[string]string
	if err := json.Unmarshal(raw, &headers); err != nil {
		t.Fatal(err)
	}
	var out []sample
	for file, hs := range headers {
		body, err := os.ReadFile(filepath.Join("../testdata/samples", file))
		if err != nil {
			t.Fatal(err)
		}
		s := sample{vendor: sampleDirs[filepath.Dir(file)], file: file, body: body, header: http.Header{},
			now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
		for k, v := range hs {
			s.header.Set(k, v)
		}
		for _, k := range []string{"webhook-timestamp", "smartrecruiters-timestamp"} {
			if v := s.header.Get(k); v != "" {
				sec, _ := strconv.ParseInt(v, 10, 64)
				s.now = time.Unix(sec, 0).Add(time.Minute)
			}
		}
		if s.vendor == veil.VendorLever {
			s.now = time.UnixMilli(gjson.GetBytes(body, "triggeredAt").Int()).Add(time.Minute)
		}
		out = append(out, s)
	}
	if len(out) < 17 {
		t.Fatalf("found %d samples, want every vendor's", len(out))
	}
	return out
}

// TestSamplesVerify checks every shipped sample against its vendor's
// scheme as stored, signed by the vendor with the fixture secret.
func TestSamplesVerify(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.file, func(t *testing.T) {
			sch := mustScheme(t, source(s.vendor))
			if err := sch.Verify(s.header, s.body, s.now); err != nil {
				t.Fatalf("got %v, want verified", err)
			}
			in := sch.Describe(s.header, s.body)
			if in.EventType == "" || in.EventType == "unknown" || in.EventType == "invalid" {
				t.Errorf("event type: got %q", in.EventType)
			}
			if in.DedupKey == "" && !in.BodyKey {
				t.Errorf("no dedup key and no body key")
			}
			if !strings.HasPrefix(in.Subject, s.vendor+":") {
				t.Errorf("subject: got %q, want %s:kind:id", in.Subject, s.vendor)
			}
			other := mustScheme(t, source(s.vendor, thirdSecret(s.vendor)))
			if err := other.Verify(s.header, s.body, s.now); veil.ErrorCode(err) != veil.EBADSIGNATURE {
				t.Errorf("wrong secret: got %v, want %s", err, veil.EBADSIGNATURE)
			}
		})
	}
}

// thirdSecret signed no sample (offer.created.json carries otherSecret's
// signature as well, for rotation).
func thirdSecret(vendor string) string {
	if vendor == veil.VendorStandard {
		return "whsec_YS10aGlyZC1zZWNyZXQtbm90LWluLWFueS1zYW1wbGU="
	}
	return "a-third-secret"
}

func otherSecret(vendor string) string {
	if vendor == veil.VendorStandard {
		return "whsec_myGgXiqeKVdCCIdmNKGGqap9cOWHt7s78xnxnwxjkg4="
	}
	return "another-secret"
}

// TestSignThenVerify: each vendor's Sign produces what its Verify accepts,
// with either secret while they rotate, and a tampered request fails.
func TestSignThenVerify(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	bodies := map[string]string{
		veil.VendorLever: `{"token":"9c2b7e41d0a84f6e","triggeredAt":1,"signature":"00","event":"candidateHired","data":{"candidateId":"c-1"}}`,
	}
	for _, v := range Vendors().Names() {
		t.Run(v, func(t *testing.T) {
			body := []byte(bodies[v])
			if len(body) == 0 {
				body = []byte(`{"action":"hire_candidate","type":"candidate.hired","candidate_id":"c-1","data":{"candidate":{"id":"c-1"}}}`)
			}
			newer, older := source(v, fixtureSecrets[v]), source(v, otherSecret(v))
			both := source(v, otherSecret(v), fixtureSecrets[v])
			for _, signer := range []*veil.Source{newer, older} {
				h, b, err := mustScheme(t, signer).Sign(body, now)
				if err != nil {
					t.Fatal(err)
				}
				if err := mustScheme(t, both).Verify(h, b, now.Add(time.Second)); err != nil {
					t.Errorf("verify with [new, old]: got %v", err)
				}
				if err := mustScheme(t, signer).Verify(h, b, now.Add(time.Second)); err != nil {
					t.Errorf("verify with the signer's secret: got %v", err)
				}
			}
			h, b, _ := mustScheme(t, newer).Sign(body, now)
			if err := mustScheme(t, older).Verify(h, b, now); err == nil {
				t.Error("verified with a secret that did not sign")
			}
			tampered := []byte(strings.Replace(string(b), `c-1`, `c-2`, 1))
			if v == veil.VendorLever {
				tampered = []byte(strings.Replace(string(b), `9c2b7e41d0a84f6e`, `9c2b7e41d0a84f6f`, 1))
			}
			if err := mustScheme(t, newer).Verify(h, tampered, now); err == nil {
				t.Error("verified a tampered body")
			}
		})
	}
}

// TestLeverDedupIgnoresHexCase: the dedup key is the decoded signature, so
// a replay with the signature upper-cased is the same event.
func TestLeverDedupIgnoresHexCase(t *testing.T) {
	for _, s := range samples(t) {
		if s.vendor != veil.VendorLever {
			continue
		}
		sch := mustScheme(t, source(veil.VendorLever))
		sig := gjson.GetBytes(s.body, "signature").Str
		upper := []byte(strings.Replace(string(s.body), sig, strings.ToUpper(sig), 1))
		if err := sch.Verify(s.header, upper, s.now); err != nil {
			t.Fatalf("upper-cased signature: got %v, want verified", err)
		}
		if a, b := sch.Describe(s.header, s.body).DedupKey, sch.Describe(s.header, upper).DedupKey; a != b || a == "" {
			t.Fatalf("dedup keys differ by hex case: %x vs %x", a, b)
		}
		return
	}
}

// TestGreenhouseBodyIsTheKey: Greenhouse signs no id, so the scheme asks
// for the body to be a dedup key as well as the unsigned header.
func TestGreenhouseBodyIsTheKey(t *testing.T) {
	for _, v := range []string{veil.VendorGreenhouse, veil.VendorHMAC} {
		in := mustScheme(t, source(v)).Describe(http.Header{"Greenhouse-Event-Id": {"x"}}, []byte(`{"action":"a"}`))
		if !in.BodyKey {
			t.Errorf("%s: BodyKey false, want true", v)
		}
	}
	in := mustScheme(t, source(veil.VendorStandard)).Describe(http.Header{"Webhook-Id": {"msg_1"}}, []byte(`{"type":"a"}`))
	if in.BodyKey || in.DedupKey != "msg_1" {
		t.Errorf("standard: got %+v, want the webhook-id alone", in)
	}
}

// TestStandardKnownAnswer is the spec's known-answer check.
func TestStandardKnownAnswer(t *testing.T) {
	key, _ := veil.DecodeStandardSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	h := http.Header{}
	StandardSign(h, [][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if got, want := h.Get("webhook-signature"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{"candidate.hired": "candidate.hired", "a b": "invalid", "<x>": "invalid",
		strings.Repeat("a", 100): strings.Repeat("a", 64)} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q): got %q, want %q", in, got, want)
		}
	}
}
