package delivery

import (
	"context"
	"sync"
	"time"
)

// breaker pauses a destination after consecutive failures. When the pause
// ends, one attempt goes out as a probe while the others wait: a success
// closes the breaker and everyone resumes at once; a failure pauses again,
// twice as long, up to maxPause. A destination that recovers is found
// within a pause, not after a fixed idle period, and one that stays down
// costs a probe per pause instead of a burst of failures.
type breaker struct {
	threshold          int
	minPause, maxPause time.Duration
	now                func() time.Time

	mu        sync.Mutex
	failures  int           // guarded by mu: consecutive failures while closed
	openUntil time.Time     // guarded by mu: zero while closed
	pause     time.Duration // guarded by mu: the next pause
	probing   bool          // guarded by mu: a probe is out
	changed   chan struct{} // guarded by mu: closed and replaced when the state changes
}

func newBreaker(threshold int, minPause, maxPause time.Duration, now func() time.Time) *breaker {
	return &breaker{threshold: threshold, minPause: minPause, maxPause: maxPause, pause: minPause, now: now,
		changed: make(chan struct{})}
}

// wait blocks until an attempt may go out. probe is true for the one
// attempt let through after a pause; its caller must report it to record.
func (b *breaker) wait(ctx context.Context) (probe bool, err error) {
	for {
		b.mu.Lock()
		now, ch := b.now(), b.changed
		var timer <-chan time.Time
		switch {
		case b.openUntil.IsZero():
			b.mu.Unlock()
			return false, nil
		case now.Before(b.openUntil):
			timer = time.After(b.openUntil.Sub(now))
		case !b.probing:
			b.probing = true
			b.mu.Unlock()
			return true, nil
		}
		b.mu.Unlock()
		select {
		case <-timer:
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// record takes the outcome of an attempt and reports whether it opened the
// breaker (for a log line).
func (b *breaker) record(probe, ok bool) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch {
	case ok:
		b.failures = 0
		if !b.openUntil.IsZero() {
			b.openUntil, b.pause = time.Time{}, b.minPause
			b.broadcastLocked()
		}
		return false
	case probe:
		b.pause = min(2*b.pause, b.maxPause)
		b.openUntil = b.now().Add(b.pause)
		b.broadcastLocked()
		return true
	case b.openUntil.IsZero():
		if b.failures++; b.failures >= b.threshold {
			b.failures = 0
			b.openUntil = b.now().Add(b.pause)
			b.broadcastLocked()
			return true
		}
	}
	return false
}

func (b *breaker) broadcastLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// claimable reports whether an attempt could go out now: the breaker is
// closed, or its pause is over and no probe is out. The dispatcher claims
// nothing for a destination that is not, so no claim waits out a pause.
func (b *breaker) claimable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openUntil.IsZero() || (!b.probing && !b.now().Before(b.openUntil))
}

// state returns "closed", "open" or "probing", for the console and logs.
func (b *breaker) state() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return "closed"
	case b.probing:
		return "probing"
	}
	return "open"
}
