package proxy_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/internal/storetest"
	"github.com/veilhq/veil/proxy"
)

// testConfig is the config the proxy tests run with: the fixture secrets
// of testdata/samples and two sources whose samples the tests sign themselves.
const testConfig = `
listen: "127.0.0.1:0"
admin_token: test-admin-token
keys:
  vault: "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s="
  pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="
sources:
  - {name: greenhouse, vendor: greenhouse, secret: gh-fixture-secret-Qm7v2Lx9}
  - {name: lever, vendor: lever, secret: lever-fixture-sigtoken-8d2e6a51}
  - {name: ashby, vendor: ashby, secret: ashby-fixture-secret-4f1c9e7a2b}
  - {name: standard, vendor: standard, secret: "whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw="}
  - {name: smartrecruiters, vendor: smartrecruiters, secret: sr-fixture-secret-7Hq2Lm4x}
  - name: workable
    vendor: hmac
    secret: workable-test-secret-77ab
    hmac: {header: X-Workable-Signature, prefix: "", encoding: hex}
  - name: teamtailor
    vendor: hmac
    secret: tt-test-secret-0c1f
    hmac: {header: X-Signature, prefix: "sha256=", encoding: base64}
`

func mustConfig(tb testing.TB) *veil.Config {
	tb.Helper()
	cfg, err := veil.ParseConfig([]byte(testConfig), func(string) (string, bool) { return "", false }, ats.Vendors())
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// newTestServer serves a real Server over loopback with the clock at now.
func newTestServer(tb testing.TB, now time.Time) (*httptest.Server, *audit.Store) {
	tb.Helper()
	clock := func() time.Time { return now }
	st := storetest.MustOpenFor(tb, mustConfig(tb), clock)
	srv := proxy.NewServer(mustConfig(tb), st)
	srv.Now = clock
	h, err := srv.Handler()
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(h)
	tb.Cleanup(ts.Close)
	return ts, st
}

// sample is one signed vendor request from testdata/samples.
type sample struct {
	source string
	file   string
	body   []byte
	header http.Header
	signed time.Time // the signed timestamp, or zero when the scheme has none
}

func loadSamples(tb testing.TB) []sample {
	tb.Helper()
	raw, err := os.ReadFile("../testdata/samples/headers.json")
	if err != nil {
		tb.Fatal(err)
	}
	var headers map[string]map[string]string
	if err := json.Unmarshal(raw, &headers); err != nil {
		tb.Fatal(err)
	}
	sources := map[string]string{"greenhouse": "greenhouse", "lever": "lever", "ashby": "ashby", "standard-webhooks": "standard",
		"smartrecruiters": "smartrecruiters"}
	var out []sample
	for file, hs := range headers {
		body, err := os.ReadFile(filepath.Join("../testdata/samples", file))
		if err != nil {
			tb.Fatal(err)
		}
		s := sample{source: sources[filepath.Dir(file)], file: file, body: body, header: http.Header{}}
		for k, v := range hs {
			s.header.Set(k, v)
		}
		for _, k := range []string{"webhook-timestamp", "smartrecruiters-timestamp"} {
			ts := s.header.Get(k)
			if ts == "" {
				continue
			}
			var sec int64
			json.Unmarshal([]byte(ts), &sec)
			s.signed = time.Unix(sec, 0)
		}
		if s.source == "lever" {
			var b struct{ TriggeredAt int64 }
			json.Unmarshal(body, &b)
			s.signed = time.UnixMilli(b.TriggeredAt)
		}
		out = append(out, s)
	}
	return out
}

type answer struct {
	status int
	body   map[string]any
}

func post(tb testing.TB, url string, h http.Header, body []byte) answer {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		tb.Fatalf("answer is not JSON (status %d): %q", resp.StatusCode, raw)
	}
	return a
}

func hexHMAC(secret string, parts ...string) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil))
}
