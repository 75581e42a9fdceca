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
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/redact"
)

// The seed corpora below run in every `go test`; `go test -fuzz=FuzzX ./proxy`
// explores further (see README, Development).

// FuzzHookHandler throws arbitrary bodies and signature headers at every
// source: the handler never panics, answers only the documented statuses,
// always with a JSON error body, and never 200 for an unsigned request.
func FuzzHookHandler(f *testing.F) {
	for _, v := range fuzzSources {
		for _, file := range sampleFiles(f, v) {
			f.Add(v, file, "sha256 00", "1795688100")
		}
		f.Add(v, []byte(`{"a":`), "", "")
		for _, b := range hostileSeeds() {
			f.Add(v, b, "sha256 00", "1795688100")
		}
	}
	srv := fuzzServer(f, &refuseStore{})
	st := srv.store.(*refuseStore)
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

var fuzzSources = []string{"greenhouse", "lever", "ashby", "standard", "smartrecruiters", "workable"}

// hostileSeeds are bodies a parser must refuse without recursion or
// surprise: deep nesting, duplicate keys (escaped alike), invalid UTF-8,
// lone surrogates.
func hostileSeeds() [][]byte {
	return [][]byte{
		[]byte(`{"action":"x","data":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`),
		[]byte(`{"action":"hire_candidate","action":"reject_candidate"}`),
		[]byte(`{"action":"a","\u0061ction":"b"}`),
		[]byte("{\"action\":\"\xff\xfe\"}"),
		[]byte(`{"action":"\ud800"}`),
		[]byte(`{"token":"t","token":"u","triggeredAt":1,"signature":"00"}`),
	}
}

// fuzzServer is a server with every vendor, the clock fixed.
func fuzzServer(f *testing.F, st EventStore) *Server {
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
`), nil, ats.Vendors())
	if err != nil {
		f.Fatal(err)
	}
	srv := NewServer(cfg, st)
	srv.Now = func() time.Time { return time.Unix(1795688100, 0) }
	return srv
}

// FuzzSignedHook signs each fuzzed body correctly for its vendor, so it
// gets past the signature into validation, indexing and the store: the
// handler never panics, answers 200 only for a JSON object it stored, and
// 400 with {error, message} otherwise.
func FuzzSignedHook(f *testing.F) {
	for i, v := range fuzzSources {
		for _, file := range sampleFiles(f, v) {
			f.Add(uint8(i), file)
		}
		for _, b := range hostileSeeds() {
			f.Add(uint8(i), b)
		}
	}
	st := &refuseStore{}
	srv := fuzzServer(f, st)
	h, err := srv.Handler()
	if err != nil {
		f.Fatal(err)
	}
	schemes := map[string]ats.Scheme{}
	for i := range srv.cfg.Sources {
		schemes[srv.cfg.Sources[i].Name], _ = ats.New(&srv.cfg.Sources[i])
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		source := fuzzSources[int(which)%len(fuzzSources)]
		hdr, signed, err := schemes[source].Sign(body, srv.Now())
		if err != nil {
			return // Lever's signer needs the three fields
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks/"+source, bytes.NewReader(signed))
		req.Header = hdr
		w := httptest.NewRecorder()
		before := st.ingested
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200:
			if st.ingested != before+1 {
				t.Fatal("200 without a commit")
			}
			if _, err := redact.Validate(signed, 64); err != nil {
				t.Fatalf("accepted a body Validate refuses: %v", err)
			}
		case 400, 413:
			if st.ingested != before {
				t.Fatal("a refused body reached the store")
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || e.Message == "" {
				t.Fatalf("error body %q is not {error, message}", w.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for a signed request: %s", w.Code, w.Body.Bytes())
		}
	})
}

// refuseStore counts what reaches it; the fuzzer never signs correctly.
type refuseStore struct{ ingested int }

func (s *refuseStore) IngestEvent(context.Context, *veil.Event, []*veil.Delivery, veil.Drift) (string, bool, error) {
	s.ingested++
	return "evt_x", false, nil
}
func (s *refuseStore) Record(...*veil.AuditEntry) {}
func (s *refuseStore) Ping(context.Context) error { return nil }
func (s *refuseStore) Resolve(context.Context, []string) (veil.SubjectState, error) {
	return veil.SubjectState{}, nil
}

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
