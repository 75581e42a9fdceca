package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var driftPaths = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "veil_schema_drift_paths_total", Help: "Payload paths seen for the first time, by source.",
}, []string{"source"})

// drift remembers the payload paths seen per (source, event type). A path
// not seen before is schema drift: the allowlist drops it anyway, but the
// compliance officer should know it exists.
type drift struct {
	mu   sync.Mutex
	seen map[string]map[string]bool // source NUL event type -> paths
}

// observe returns the paths new to source and event type and remembers
// them at once, so concurrent events report a path only once.
func (d *drift) observe(source, eventType string, paths []string) []string {
	k := source + "\x00" + eventType
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]map[string]bool{}
	}
	known := d.seen[k]
	if known == nil {
		known = map[string]bool{}
		d.seen[k] = known
	}
	var fresh []string
	for _, p := range paths {
		if !known[p] {
			known[p] = true
			fresh = append(fresh, p)
		}
	}
	if len(fresh) > 0 {
		driftPaths.WithLabelValues(source).Add(float64(len(fresh)))
	}
	return fresh
}
