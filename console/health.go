package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// Health reports each destination's breaker, queue and recent attempts
// (the deliverer's).
type Health interface {
	Health() []veil.DestinationHealth
}

// healthView is a destination's health as the Overview draws it: figures,
// and three 24-hour charts of 10-minute steps (attempts by outcome, mean
// latency, queue).
type healthView struct {
	veil.DestinationHealth
	Waiting                 int64 // from the store: fresher than the deliverer's readings
	Success, Mean, Max, Age string
	Bars                    []attemptBar
	LatencyLine, QueueLine  string // SVG polyline points
	LatencyTop, QueueTop    string // the value at the top of each chart
	LastError               string // the latest failed attempt's detail over the range
	LastErrorAt             time.Time
	Paused                  bool
}

type attemptBar struct {
	X, OKY, OKH, FailY, FailH int
	Title                     string
}

// The charts are healthWidth × healthHeight in SVG units, a point per step.
const healthWidth, healthHeight = 288, 60

func newHealthView(h veil.DestinationHealth, q veil.QueueStat, now time.Time) healthView {
	v := healthView{DestinationHealth: h, Waiting: q.Waiting, Success: "—", Mean: "—", Max: "—", Age: "—"}
	if n := h.Succeeded + h.Failed; n > 0 {
		v.Success = fmt.Sprintf("%.1f%% of %d", 100*float64(h.Succeeded)/float64(n), n)
		v.Mean, v.Max = roundDuration(h.MeanLatency), roundDuration(h.MaxLatency)
	}
	if q.Waiting > 0 && !q.Oldest.IsZero() {
		v.Age = roundDuration(now.Sub(q.Oldest))
	}
	if len(h.Points) == 0 {
		return v
	}
	step := healthWidth / len(h.Points)
	var maxN, maxQ int64
	var maxL time.Duration
	for _, p := range h.Points {
		maxN, maxQ, maxL = max(maxN, p.Succeeded+p.Failed), max(maxQ, p.Queue), max(maxL, p.MeanLatency)
	}
	scale := func(v, top int64) int {
		if top == 0 {
			return 0
		}
		return int(v * healthHeight / top)
	}
	var lat, queue strings.Builder
	for i, p := range h.Points {
		x := i * step
		b := attemptBar{X: x, OKH: scale(p.Succeeded, maxN), FailH: scale(p.Failed, maxN),
			Title: fmt.Sprintf("%s: %d delivered, %d failed, mean %s", p.Start.UTC().Format("15:04"), p.Succeeded, p.Failed, roundDuration(p.MeanLatency))}
		b.OKY = healthHeight - b.OKH
		b.FailY = b.OKY - b.FailH
		v.Bars = append(v.Bars, b)
		fmt.Fprintf(&lat, "%d,%d ", x, healthHeight-scale(int64(p.MeanLatency), int64(maxL)))
		fmt.Fprintf(&queue, "%d,%d ", x, healthHeight-scale(p.Queue, maxQ))
	}
	v.LatencyLine, v.QueueLine = strings.TrimSpace(lat.String()), strings.TrimSpace(queue.String())
	v.LatencyTop, v.QueueTop = roundDuration(maxL), fmt.Sprint(maxQ)
	return v
}

// roundDuration writes d to a precision a person reads at a glance.
func roundDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Second).String()
}
