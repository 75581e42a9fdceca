package delivery

import (
	"context"
	"sync"
)

// limiter bounds a destination's attempts in flight. The bound starts at
// the destination's concurrency and rises by one for every bound's worth of
// fast successes in a row, up to max_concurrency, so a backlog drains as
// fast as a healthy destination answers. Two failures in a row halve it
// again, never below the configured concurrency (a lone 503 among
// successes is noise, not overload); a slow success starts the count over.
type limiter struct {
	min, max int

	mu     sync.Mutex
	limit  int           // guarded by mu
	active int           // guarded by mu
	streak int           // guarded by mu: fast successes since the last change
	failed bool          // guarded by mu: the last attempt failed
	freed  chan struct{} // guarded by mu: closed and replaced when a slot frees
}

func newLimiter(min, max int) *limiter {
	return &limiter{min: min, max: max, limit: min, freed: make(chan struct{})}
}

// acquire waits for a slot.
func (l *limiter) acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.active < l.limit {
			l.active++
			l.mu.Unlock()
			return nil
		}
		ch := l.freed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release frees a slot and adapts the bound: fast says the attempt
// succeeded quickly, failed that it did not succeed.
func (l *limiter) release(fast, failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	defer func() { l.failed = failed }()
	switch {
	case failed:
		l.streak = 0
		if l.failed {
			l.limit = max(l.min, l.limit/2)
		}
	case !fast:
		l.streak = 0
	default:
		if l.streak++; l.streak >= l.limit && l.limit < l.max {
			l.limit++
			l.streak = 0
		}
	}
	close(l.freed)
	l.freed = make(chan struct{})
}

// current returns the bound now, for metrics.
func (l *limiter) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}
