package auth_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
)

// TestThrottle: a key has its burst of failures, then waits; time refills
// it; successes cost nothing; other keys are not affected.
func TestThrottle(t *testing.T) {
	th := auth.NewThrottle(3, 6, 100) // 3, then one every 10 s
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		if w := th.Wait("a", now); w != 0 {
			t.Fatalf("failure %d: wait %s, want 0", i, w)
		}
		th.Fail("a", now)
	}
	if w := th.Wait("a", now); w < 9*time.Second || w > 10*time.Second {
		t.Errorf("after the burst: wait %s, want about 10s", w)
	}
	if w := th.Wait("b", now); w != 0 {
		t.Errorf("another key: wait %s, want 0", w)
	}
	if w := th.Wait("a", now.Add(10*time.Second)); w != 0 {
		t.Errorf("10 s later: wait %s, want 0", w)
	}
}

// TestGuard_Aggregates: failures are audited one row per surface, reason
// and minute, with their count, written when the minute ends.
func TestGuard_Aggregates(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var rows []*veil.AuditEntry
	g := auth.NewGuard()
	g.Now = func() time.Time { return now }
	g.Record = func(es ...*veil.AuditEntry) { rows = append(rows, es...) }
	for i := range 50 {
		addr := fmt.Sprintf("10.0.0.%d", i%5)
		if g.Wait(auth.SurfaceConsole, addr, "") == 0 {
			g.Failed(auth.SurfaceConsole, auth.ReasonInvalid, addr, "")
		}
	}
	g.Flush(false)
	if len(rows) != 0 {
		t.Fatalf("%d rows before the minute ended", len(rows))
	}
	now = now.Add(time.Minute)
	g.Flush(false)
	if len(rows) != 1 || rows[0].Action != veil.ActionAuthFailed || rows[0].Attempt != 50 || rows[0].Outcome != auth.ReasonInvalid {
		for _, r := range rows {
			t.Logf("%+v", r)
		}
		t.Fatalf("got %d rows, want one auth_failed row counting 50 invalid attempts", len(rows))
	}
}
