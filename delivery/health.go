package delivery

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/veilhq/veil"
)

// healthSpan is how far back a destination's recent health reaches, and
// healthStep the width of one of its buckets.
const (
	healthSpan = 24 * time.Hour
	healthStep = 10 * time.Minute
)

// health is a destination's recent attempts and queue, in healthStep
// buckets over healthSpan: what the console's Overview draws. It lives in
// memory: it starts empty with the process and covers this replica only.
type health struct {
	mu      sync.Mutex
	buckets [healthSpan / healthStep]healthBucket
}

type healthBucket struct {
	start                  time.Time // zero: never used
	succeeded, failed      int64
	latencySum, latencyMax time.Duration
	queueMax               int64
}

// slot is the bucket that holds the step starting at start.
func (h *health) slot(start time.Time) *healthBucket {
	return &h.buckets[(start.UnixNano()/int64(healthStep))%int64(len(h.buckets))]
}

// bucket returns the bucket for t, cleared when it last held an older span.
func (h *health) bucket(t time.Time) *healthBucket {
	start := t.Truncate(healthStep)
	b := h.slot(start)
	if !b.start.Equal(start) {
		*b = healthBucket{start: start}
	}
	return b
}

// attempt records one attempt's outcome and latency at t.
func (h *health) attempt(t time.Time, ok bool, latency time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.bucket(t)
	if ok {
		b.succeeded++
	} else {
		b.failed++
	}
	b.latencySum += latency
	b.latencyMax = max(b.latencyMax, latency)
}

// queue records how many deliveries the destination had waiting at t.
func (h *health) queue(t time.Time, waiting int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.bucket(t)
	b.queueMax = max(b.queueMax, waiting)
}

// report is the destination's health at now: the last hour's totals and
// every bucket of the span, oldest first (empty ones included).
func (h *health) report(now time.Time) veil.DestinationHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := veil.DestinationHealth{Step: healthStep}
	first := now.Truncate(healthStep).Add(-healthSpan + healthStep)
	var hourLatency time.Duration
	for i := range len(h.buckets) {
		start := first.Add(time.Duration(i) * healthStep)
		p := veil.HealthPoint{Start: start}
		if b := h.slot(start); b.start.Equal(start) {
			p.Succeeded, p.Failed, p.MaxLatency, p.Queue = b.succeeded, b.failed, b.latencyMax, b.queueMax
			if n := b.succeeded + b.failed; n > 0 {
				p.MeanLatency = b.latencySum / time.Duration(n)
			}
			if now.Sub(start) < time.Hour {
				r.Succeeded += b.succeeded
				r.Failed += b.failed
				hourLatency += b.latencySum
				r.MaxLatency = max(r.MaxLatency, b.latencyMax)
			}
		}
		r.Points = append(r.Points, p)
	}
	if n := r.Succeeded + r.Failed; n > 0 {
		r.MeanLatency = hourLatency / time.Duration(n)
	}
	return r
}

// Health returns each destination's breaker and recent attempts and
// queue, by name.
func (d *Deliverer) Health() []veil.DestinationHealth {
	now := time.Now()
	if d.Now != nil { // set by Start
		now = d.Now()
	}
	out := make([]veil.DestinationHealth, 0, len(d.dests))
	for name, st := range d.dests {
		r := st.health.report(now)
		r.Destination = name
		if st.breaker != nil {
			r.Breaker = st.breaker.state()
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b veil.DestinationHealth) int { return strings.Compare(a.Destination, b.Destination) })
	return out
}
