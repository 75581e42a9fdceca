package delivery

import (
	"testing"
	"time"
)

// TestHealth: attempts and queue readings land in their 10-minute step;
// the last hour's totals count only the last hour; a step a day old is
// reused, not added to.
func TestHealth(t *testing.T) {
	var h health
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	h.attempt(t0, true, 10*time.Millisecond)
	h.attempt(t0.Add(time.Minute), false, 30*time.Millisecond)
	h.queue(t0.Add(2*time.Minute), 7)
	h.queue(t0.Add(3*time.Minute), 3)
	h.attempt(t0.Add(-2*time.Hour), true, time.Second) // outside the last hour

	r := h.report(t0.Add(5 * time.Minute))
	if r.Succeeded != 1 || r.Failed != 1 || r.MeanLatency != 20*time.Millisecond || r.MaxLatency != 30*time.Millisecond {
		t.Fatalf("last hour: %+v", r)
	}
	if len(r.Points) != 144 {
		t.Fatalf("%d points, want 144", len(r.Points))
	}
	last, early := r.Points[143], r.Points[143-12]
	if !last.Start.Equal(t0) || last.Succeeded != 1 || last.Failed != 1 || last.Queue != 7 {
		t.Fatalf("the current step: %+v", last)
	}
	if !early.Start.Equal(t0.Add(-2*time.Hour)) || early.Succeeded != 1 || early.MeanLatency != time.Second {
		t.Fatalf("the step two hours ago: %+v", early)
	}

	// A day later the same slot holds the new step alone.
	h.attempt(t0.Add(24*time.Hour), true, time.Millisecond)
	r = h.report(t0.Add(24*time.Hour + time.Minute))
	if p := r.Points[143]; p.Succeeded != 1 || p.Failed != 0 || p.Queue != 0 {
		t.Fatalf("the reused step: %+v", p)
	}
	if r.Succeeded != 1 || r.Failed != 0 {
		t.Fatalf("a day later, last hour: %+v", r)
	}
	for _, p := range r.Points[:143] {
		if p.Succeeded+p.Failed != 0 {
			t.Fatalf("a day later, an old step shows: %+v", p)
		}
	}
}
