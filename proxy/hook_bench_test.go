package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHook measures one verified, durably committed Greenhouse webhook
// (5.5 KB) through the real handler and a real SQLite store, requests in
// parallel so group commit works as in production. Compare with
// BenchmarkHookBaseline, a handler that only reads the body.
func BenchmarkHook(b *testing.B) {
	body, err := os.ReadFile("../testdata/samples/greenhouse/new_candidate_application.json")
	if err != nil {
		b.Fatal(err)
	}
	ts, _ := newTestServer(b, time.Now())
	benchHook(b, ts.Client(), ts.URL+"/hooks/greenhouse", body)
}

func BenchmarkHookBaseline(b *testing.B) {
	body, err := os.ReadFile("../testdata/samples/greenhouse/new_candidate_application.json")
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"event_id":"evt_x","duplicate":false}`))
	}))
	defer ts.Close()
	benchHook(b, ts.Client(), ts.URL+"/hooks/greenhouse", body)
}

func benchHook(b *testing.B, client *http.Client, url string, body []byte) {
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var n atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			h, _ := signAs(b, "greenhouse", secrets["greenhouse"], body, time.Time{})
			h.Set("Greenhouse-Event-ID", fmt.Sprint("bench-", i))
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header = h
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
