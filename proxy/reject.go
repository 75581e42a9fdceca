package proxy

import (
	"fmt"
	"sync"
	"time"

	"github.com/veilhq/veil"
)

// rejections aggregates rejected requests into one audit row per (source,
// reason, minute) with a count, so unauthenticated traffic cannot grow the
// audit log by a row per request. Metrics still count every request.
type rejections struct {
	record func(...*veil.AuditEntry)

	mu     sync.Mutex
	minute time.Time           // guarded by mu: the minute being counted
	counts map[rejectKey]int64 // guarded by mu
}

type rejectKey struct{ source, reason string }

// add counts one rejection at now; the first one of a new minute writes
// the rows of the minute before.
func (r *rejections) add(source, reason string, now time.Time) {
	m := now.UTC().Truncate(time.Minute)
	r.mu.Lock()
	var done []*veil.AuditEntry
	if m.After(r.minute) {
		done = r.takeLocked()
		r.minute = m
	}
	if r.counts == nil {
		r.counts = map[rejectKey]int64{}
	}
	r.counts[rejectKey{source, reason}]++
	r.mu.Unlock()
	r.write(done)
}

// flush writes the rows of a minute that has ended by now, or of the
// current one too when all is set (at shutdown).
func (r *rejections) flush(now time.Time, all bool) {
	r.mu.Lock()
	var done []*veil.AuditEntry
	if all || now.UTC().Truncate(time.Minute).After(r.minute) {
		done = r.takeLocked()
	}
	r.mu.Unlock()
	r.write(done)
}

func (r *rejections) takeLocked() []*veil.AuditEntry {
	var out []*veil.AuditEntry
	for k, n := range r.counts {
		actor := k.source
		if actor == "" {
			actor = "unknown"
		}
		out = append(out, &veil.AuditEntry{Time: r.minute, Action: veil.ActionRejected, Actor: actor, Source: k.source,
			Outcome: "rejected", HTTPStatus: ErrorStatus(k.reason), Attempt: int(min(n, 1<<31-1)),
			Detail: fmt.Sprintf("reason=%s count=%d minute=%s", k.reason, n, r.minute.Format("2006-01-02T15:04Z"))})
	}
	clear(r.counts)
	return out
}

func (r *rejections) write(rows []*veil.AuditEntry) {
	if len(rows) > 0 && r.record != nil {
		r.record(rows...)
	}
}
