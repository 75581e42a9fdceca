package delivery

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBreaker: threshold failures open it; after the pause exactly one
// attempt probes while the others wait; a failed probe doubles the pause
// (up to the cap), a good one lets everyone through at once.
func TestBreaker(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := newBreaker(3, 10*time.Millisecond, 40*time.Millisecond, clock)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if b.record(false, false) {
			t.Fatalf("opened after %d failures, want 3", i+1)
		}
	}
	if !b.record(false, false) || b.state() != "open" {
		t.Fatal("not open after 3 failures")
	}
	advance(10 * time.Millisecond)
	// Eight attempts wait: one probes, the others wait for its answer.
	var probes, through atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probe, err := b.wait(ctx)
			if err != nil {
				t.Error(err)
			}
			if probe {
				probes.Add(1)
			}
			through.Add(1)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if probes.Load() != 1 || through.Load() != 1 || b.state() != "probing" {
		t.Fatalf("%d probes, %d through, state %s; want one probe and the rest waiting", probes.Load(), through.Load(), b.state())
	}
	// The probe fails: open again for twice as long.
	b.record(true, false)
	if b.pause != 20*time.Millisecond {
		t.Fatalf("pause after a failed probe: %s, want 20ms", b.pause)
	}
	advance(20 * time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	if probes.Load() != 2 {
		t.Fatalf("%d probes after the second pause, want 2", probes.Load())
	}
	b.record(true, true) // the destination is back
	wg.Wait()
	if through.Load() != 8 || b.state() != "closed" || b.pause != 10*time.Millisecond {
		t.Fatalf("%d through, state %s, pause %s; want all 8, closed, reset", through.Load(), b.state(), b.pause)
	}
	// The cap holds.
	b.record(false, false)
	b.record(false, false)
	b.record(false, false)
	for i := 0; i < 5; i++ {
		b.record(true, false)
	}
	if b.pause != 40*time.Millisecond {
		t.Fatalf("pause %s, want the 40ms cap", b.pause)
	}
}

// TestLimiter: fast successes raise the bound one at a time up to max; a
// lone failure does not lower it, two in a row halve it, never below min.
func TestLimiter(t *testing.T) {
	l := newLimiter(2, 8)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		l.acquire(ctx)
		l.release(true, false)
	}
	if got := l.current(); got != 8 {
		t.Fatalf("after fast successes: %d, want 8", got)
	}
	l.acquire(ctx)
	l.release(false, true)
	if got := l.current(); got != 8 {
		t.Fatalf("after one failure: %d, want 8", got)
	}
	l.acquire(ctx)
	l.release(false, true)
	if got := l.current(); got != 4 {
		t.Fatalf("after two failures in a row: %d, want 4", got)
	}
	for i := 0; i < 5; i++ {
		l.acquire(ctx)
		l.release(false, true)
	}
	if got := l.current(); got != 2 {
		t.Fatalf("after failures: %d, want the floor 2", got)
	}
	// The bound is enforced.
	l.acquire(ctx)
	l.acquire(ctx)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.acquire(short); err == nil {
		t.Fatal("a third slot at a bound of 2")
	}
}
