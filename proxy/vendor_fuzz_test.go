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
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// The seed corpora below run in every `go test`; `go test -fuzz=FuzzX ./proxy`
// explores further (see README, Development).

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

func (s *refuseStore) IngestEvent(context.Context, *veil.Event, []*veil.Delivery, veil.Drift) (string, bool, error) {
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
