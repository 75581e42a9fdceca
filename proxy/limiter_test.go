package proxy

import (
	"testing"
	"time"
)

// TestLimiter: a consumer's burst, then one a second on the server's
// clock; a refusal says how long to wait and takes nothing; consumers do
// not share a bucket.
func TestLimiter(t *testing.T) {
	l := limiter{rate: 1, burst: 2}
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := range 2 {
		if ok, _ := l.allow("onboarding", t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow("onboarding", t0)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("past the burst: %v, wait %s", ok, wait)
	}
	if ok, _ := l.allow("onboarding", t0.Add(500*time.Millisecond)); ok {
		t.Fatal("allowed half a second later")
	}
	if ok, _ := l.allow("onboarding", t0.Add(time.Second)); !ok {
		t.Fatal("refused a second later (a refusal must not take a token)")
	}
	if ok, _ := l.allow("scheduling", t0); !ok {
		t.Fatal("another consumer shares the bucket")
	}
}
