package gateway

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/veilhq/veil"
)

var driftPaths = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "veil_schema_drift_paths_total", Help: "Payload paths seen for the first time, by source.",
}, []string{"source"})

// Bounds on what drift remembers: a source that sends ever new paths or
// event types (a bug, or a hostile sender with the secret) costs at most
// this much memory; paths past the bounds are reported again when seen.
const (
	maxDriftKinds = 1000  // (source, event type) pairs
	maxDriftPaths = 10000 // paths per pair
)

// drift remembers the payload paths seen per (source, event type). A path
// not seen before is schema drift: the allowlist drops it anyway, but the
// compliance officer should know it exists.
type drift struct {
	mu   sync.Mutex
	seen map[string]map[string]bool // guarded by mu: source NUL event type -> paths
}

// observe returns the paths new to source and event type, at most
// veil.MaxDriftPaths of them with a count of the rest, and remembers them
// at once, so concurrent events report a path only once.
func (d *drift) observe(source, eventType string, paths []string) veil.Drift {
	k := source + "\x00" + eventType
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]map[string]bool{}
	}
	known := d.seen[k]
	if known == nil && len(d.seen) < maxDriftKinds {
		known = map[string]bool{}
		d.seen[k] = known
	}
	var out veil.Drift
	fresh := 0
	for _, p := range paths {
		if known[p] {
			continue
		}
		fresh++
		if known != nil && len(known) < maxDriftPaths {
			known[p] = true
		}
		if len(out.Paths) < veil.MaxDriftPaths {
			out.Paths = append(out.Paths, p)
		} else {
			out.More++
		}
	}
	if fresh > 0 {
		driftPaths.WithLabelValues(source).Add(float64(fresh))
	}
	return out
}
