package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// The seed corpora below run in every `go test`; `go test -fuzz=FuzzX ./proxy`
// explores further (see README, Development).

func FuzzParseGreenhouseSignature(f *testing.F) {
	for _, s := range []string{"sha256 b178f8b093d0cc7b3a1dcc7c16edc4ac6ceb4e1b105b2695412ef20cb6f150b3", "sha256 ", "sha1 00", "", " sha256  zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if sig, err := parseGreenhouseSignature(v); err == nil && len(sig) != 32 {
			t.Fatalf("accepted a %d-byte signature", len(sig))
		}
	})
}

func FuzzParseAshbySignature(f *testing.F) {
	for _, s := range []string{"sha256=7df186298c7bac7e770af45c7853f82b5861fb4278c72d3db4105f6ca74afcfb", "sha256=", "=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if sig, err := parseAshbySignature(v); err == nil && len(sig) != 32 {
			t.Fatalf("accepted a %d-byte signature", len(sig))
		}
	})
}

func FuzzParseStandardSignatures(f *testing.F) {
	for _, s := range []string{"v1,gDp2ReLVK2H6K6zlaF/mnkh0eTb8Vht8dS1v7gAZ94U=", "v1,a v1,b", "v1a,xyz v1,", "v1,,,,", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, sig := range parseStandardSignatures(v) {
			if len(sig) != 32 {
				t.Fatalf("accepted a %d-byte signature", len(sig))
			}
		}
	})
}

func FuzzParseSmartRecruitersSignatures(f *testing.F) {
	for _, s := range []string{"v1=" + strings.Repeat("ab", 32), "v1=" + strings.Repeat("ab", 32) + ";v1=00", ";;;", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		sigs := parseSmartRecruitersSignatures(v)
		if len(sigs) > 16 {
			t.Fatalf("accepted %d signatures, want at most 16", len(sigs))
		}
		for _, sig := range sigs {
			if len(sig) != 32 {
				t.Fatalf("accepted a %d-byte signature", len(sig))
			}
		}
	})
}

func FuzzParseHMACSignature(f *testing.F) {
	f.Add(strings.Repeat("AB", 32), "", "hex")
	f.Add("sha256=q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=", "sha256=", "base64")
	f.Add("", "x", "base64")
	f.Fuzz(func(t *testing.T, v, prefix, enc string) {
		if sig, err := parseHMACSignature(v, prefix, enc); err == nil && len(sig) != 32 {
			t.Fatalf("accepted a %d-byte signature", len(sig))
		}
	})
}

func FuzzParseLeverBody(f *testing.F) {
	for _, file := range sampleFiles(f, "lever") {
		f.Add(file)
	}
	f.Add([]byte(`{"token":"t","triggeredAt":1e3,"signature":"s"}`))
	f.Add([]byte(`{"token":1,"triggeredAt":"1","signature":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		parseLeverBody(body) // must not panic
	})
}

// FuzzHookHandler throws arbitrary bodies and signature headers at every
// source: the handler never panics, answers only the documented statuses,
// always with a JSON error body, and never 200 for an unsigned request.
func FuzzHookHandler(f *testing.F) {
	for _, v := range []string{"greenhouse", "lever", "ashby", "standard", "smartrecruiters", "workable"} {
		for _, file := range sampleFiles(f, v) {
			f.Add(v, file, "sha256 00", "1795688100")
		}
		f.Add(v, []byte(`{"a":`), "", "")
	}
	cfg, err := veil.ParseConfig([]byte(`
admin_token: x
keys: {vault: "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="}
max_body_bytes: 65536
sources:
  - {name: greenhouse, vendor: greenhouse, secret: s1}
  - {name: lever, vendor: lever, secret: s2}
  - {name: ashby, vendor: ashby, secret: s3}
  - {name: standard, vendor: standard, secret: "whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw="}
  - {name: smartrecruiters, vendor: smartrecruiters, secret: s4}
  - {name: workable, vendor: hmac, secret: s5, hmac: {header: X-Sig}}
`), nil)
	if err != nil {
		f.Fatal(err)
	}
	st := &refuseStore{}
	srv := NewServer(cfg, st)
	srv.Now = func() time.Time { return time.Unix(1795688100, 0) }
	h, err := srv.Handler()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, source string, body []byte, sig, ts string) {
		req := httptest.NewRequest(http.MethodPost, "/hooks/"+url.PathEscape(source), bytes.NewReader(body))
		for _, k := range []string{"Signature", "Ashby-Signature", "webhook-signature", "smartrecruiters-signature", "X-Sig"} {
			req.Header.Set(k, sig)
		}
		req.Header.Set("webhook-id", "msg_1")
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("smartrecruiters-timestamp", ts)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 400, 401, 404, 405, 413:
		default:
			t.Fatalf("status %d for an unsigned request", w.Code)
		}
		var e struct{ Error, Message string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || e.Message == "" {
			t.Fatalf("error body %q is not {error, message}", w.Body.Bytes())
		}
		if st.ingested > 0 {
			t.Fatal("an unsigned request reached the store")
		}
	})
}

// refuseStore counts what reaches it; the fuzzer never signs correctly.
type refuseStore struct{ ingested int }

func (s *refuseStore) IngestEvent(context.Context, *veil.Event, []*veil.Delivery, []string) (string, bool, error) {
	s.ingested++
	return "evt_x", false, nil
}
func (s *refuseStore) Record(...*veil.AuditEntry) {}
func (s *refuseStore) Ping(context.Context) error { return nil }

func sampleFiles(tb testing.TB, source string) [][]byte {
	dir := map[string]string{"standard": "standard-webhooks"}[source]
	if dir == "" {
		dir = source
	}
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "samples", dir, "*.json"))
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (s *refuseStore) SchemaPaths(context.Context) (map[string]map[string]bool, error) {
	return nil, nil
}
