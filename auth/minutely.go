package auth

import (
	"sync"
	"time"

	"github.com/veilhq/veil"
)

// Minutely rolls counts up by key over each UTC minute and, once the
// minute has ended, turns them into audit rows for Record: how a flood of
// refused requests costs a bounded number of audit rows (one per key and
// minute, with its count) while metrics still count every request.
type Minutely[K comparable, V any] struct {
	// Rows turns an ended minute's counts into its audit rows (called
	// with the rollup's lock held).
	Rows func(minute time.Time, counts map[K]*V) []*veil.AuditEntry
	// Record receives the rows; nil writes none.
	Record func(...*veil.AuditEntry)

	mu     sync.Mutex
	minute time.Time // guarded by mu: the minute being counted
	counts map[K]*V  // guarded by mu
}

// Add counts at now under key: update changes the key's count (a zero one
// the first time in a minute). The first Add of a new minute writes the
// rows of the minute before.
func (m *Minutely[K, V]) Add(now time.Time, key K, update func(*V)) {
	t := now.UTC().Truncate(time.Minute)
	m.mu.Lock()
	var done []*veil.AuditEntry
	if t.After(m.minute) {
		done = m.takeLocked()
		m.minute = t
	}
	if m.counts == nil {
		m.counts = map[K]*V{}
	}
	c := m.counts[key]
	if c == nil {
		c = new(V)
		m.counts[key] = c
	}
	update(c)
	m.mu.Unlock()
	m.write(done)
}

// Flush writes the rows of a minute that has ended by now, or of the
// current one too when all is set (at shutdown).
func (m *Minutely[K, V]) Flush(now time.Time, all bool) {
	m.mu.Lock()
	var done []*veil.AuditEntry
	if all || now.UTC().Truncate(time.Minute).After(m.minute) {
		done = m.takeLocked()
	}
	m.mu.Unlock()
	m.write(done)
}

func (m *Minutely[K, V]) takeLocked() []*veil.AuditEntry {
	if len(m.counts) == 0 {
		return nil
	}
	out := m.Rows(m.minute, m.counts)
	clear(m.counts)
	return out
}

func (m *Minutely[K, V]) write(rows []*veil.AuditEntry) {
	if len(rows) > 0 && m.Record != nil {
		m.Record(rows...)
	}
}
