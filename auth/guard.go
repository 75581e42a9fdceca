// Package auth guards Veil's credentials — console logins, admin and
// auditor tokens, consumer keys — against guessing: failed attempts are
// throttled per client address and per credential, and audited in
// aggregate, so a flood of wrong tokens costs a bounded number of audit
// rows and never a row per attempt. No value tried is ever kept.
package auth

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/veilhq/veil"
)

var failures = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "veil_auth_failures_total", Help: "Failed or refused authentication attempts, by surface (console, admin_api, lookup) and reason.",
}, []string{"surface", "reason"})

// Surfaces: where a credential is presented.
const (
	SurfaceConsole  = "console"
	SurfaceAdminAPI = "admin_api"
	SurfaceLookup   = "lookup"
)

// Reasons an attempt failed.
const (
	ReasonInvalid   = "invalid_credential"
	ReasonThrottled = "throttled"
	ReasonCSRF      = "csrf"
	// ReasonLocked is a login for a user locked out after wrong
	// passwords; ReasonSSO a single sign-on answer refused (bad state,
	// token, nonce, or no role).
	ReasonLocked = "locked"
	ReasonSSO    = "sso_refused"
)

// Throttle allows each key (a client address, a user name) a burst of
// failures, then one more per interval; successes cost nothing. Keys are
// held in an LRU of bounded size, so a flood of addresses costs bounded
// memory.
type Throttle struct {
	limit rate.Limit
	burst int
	keys  *lru.Cache[string, *rate.Limiter] // safe for concurrent use
	mu    sync.Mutex                        // serialises get-or-create
}

// NewThrottle allows burst failures per key, refilled at perMinute a minute.
func NewThrottle(burst int, perMinute float64, maxKeys int) *Throttle {
	keys, _ := lru.New[string, *rate.Limiter](maxKeys) // maxKeys > 0
	return &Throttle{limit: rate.Limit(perMinute / 60), burst: burst, keys: keys}
}

func (t *Throttle) limiter(key string) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.keys.Get(key)
	if !ok {
		l = rate.NewLimiter(t.limit, t.burst)
		t.keys.Add(key, l)
	}
	return l
}

// Wait returns how long key must wait before an attempt is considered
// again: 0 while it has failures left.
func (t *Throttle) Wait(key string, now time.Time) time.Duration {
	tokens := t.limiter(key).TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return max(time.Duration((1-tokens)/float64(t.limit)*float64(time.Second)), time.Second)
}

// Fail counts one failure of key.
func (t *Throttle) Fail(key string, now time.Time) { t.limiter(key).AllowN(now, 1) }

// Guard throttles and audits the authentication of every surface of one
// process. Create it with NewGuard; Flush writes the audit rows of the
// minutes that ended (serve calls it every few seconds) and, at shutdown,
// of the current one.
type Guard struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one warning per surface and minute with failures;
	// nil discards.
	Logger *slog.Logger
	// Record writes audit rows without waiting (the store's Record); nil
	// writes none.
	Record func(...*veil.AuditEntry)

	addrs, creds *Throttle
	failed       Minutely[failKey, failCount]
	used         Minutely[useKey, int64]
}

type useKey struct{ surface, actor string }

type failKey struct{ surface, reason string }

type failCount struct {
	n     int64
	addrs map[string]bool // distinct addresses, counted up to maxAddrs
}

const maxAddrs = 1000

// NewGuard allows each client address and each credential 10 failures,
// then 10 a minute.
func NewGuard() *Guard {
	g := &Guard{addrs: NewThrottle(10, 10, 65536), creds: NewThrottle(10, 10, 65536)}
	g.failed.Rows = g.rows
	g.failed.Record = func(rows ...*veil.AuditEntry) {
		if g.Record != nil {
			g.Record(rows...)
		}
	}
	g.used.Rows = g.useRows
	g.used.Record = g.failed.Record
	return g
}

func (g *Guard) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

// Address is the client address of r that throttles are keyed by: the
// peer's IP (a forwarded-for header is the client's own text).
func Address(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Wait returns how long an attempt from addr for cred ("" when the
// credential names nobody, such as a token) must wait: 0 when it may be
// checked now. A refused attempt is counted and audited as throttled.
func (g *Guard) Wait(surface, addr, cred string) time.Duration {
	now := g.now()
	wait := g.addrs.Wait(addr, now)
	if cred != "" {
		wait = max(wait, g.creds.Wait(cred, now))
	}
	if wait > 0 {
		g.count(surface, ReasonThrottled, addr, now)
	}
	return wait
}

// Failed counts a failed attempt from addr for cred against both throttles
// and in the minute's audit row for its surface and reason.
func (g *Guard) Failed(surface, reason, addr, cred string) {
	now := g.now()
	g.addrs.Fail(addr, now)
	if cred != "" {
		g.creds.Fail(cred, now)
	}
	g.count(surface, reason, addr, now)
}

func (g *Guard) count(surface, reason, addr string, now time.Time) {
	failures.WithLabelValues(surface, reason).Inc()
	g.failed.Add(now, failKey{surface, reason}, func(c *failCount) {
		c.n++
		if c.addrs == nil {
			c.addrs = map[string]bool{}
		}
		if len(c.addrs) < maxAddrs {
			c.addrs[addr] = true
		}
	})
}

// Flush writes the rows of a minute that has ended, or of the current one
// too when all is set (at shutdown).
func (g *Guard) Flush(all bool) {
	g.failed.Flush(g.now(), all)
	g.used.Flush(g.now(), all)
}

// Used counts a use of an API token (actor token:NAME) on surface: one
// token_used row per token, surface and minute, with the count.
func (g *Guard) Used(surface, actor string) {
	g.used.Add(g.now(), useKey{surface, actor}, func(n *int64) { *n++ })
}

func (g *Guard) useRows(minute time.Time, counts map[useKey]*int64) []*veil.AuditEntry {
	keys := make([]useKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].actor+keys[i].surface < keys[j].actor+keys[j].surface })
	out := make([]*veil.AuditEntry, 0, len(keys))
	for _, k := range keys {
		out = append(out, &veil.AuditEntry{Time: minute, Action: veil.ActionTokenUsed, Actor: k.actor, Outcome: "used",
			Attempt: int(min(*counts[k], 1<<31-1)),
			Detail:  fmt.Sprintf("surface=%s count=%d minute=%s", k.surface, *counts[k], minute.Format("2006-01-02T15:04Z"))})
	}
	return out
}

// rows turns a minute's counts into one auth_failed row per surface and
// reason: how many attempts, from how many addresses; never an address or
// a value tried.
func (g *Guard) rows(minute time.Time, counts map[failKey]*failCount) []*veil.AuditEntry {
	keys := make([]failKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].surface+keys[i].reason < keys[j].surface+keys[j].reason
	})
	var out []*veil.AuditEntry
	for _, k := range keys {
		c := counts[k]
		addrs := fmt.Sprint(len(c.addrs))
		if len(c.addrs) == maxAddrs {
			addrs += "+"
		}
		out = append(out, &veil.AuditEntry{Time: minute, Action: veil.ActionAuthFailed, Actor: k.surface,
			Outcome: k.reason, HTTPStatus: status(k.reason), Attempt: int(min(c.n, 1<<31-1)),
			Detail: fmt.Sprintf("surface=%s reason=%s count=%d addresses=%s minute=%s", k.surface, k.reason, c.n, addrs,
				minute.Format("2006-01-02T15:04Z"))})
		if g.Logger != nil {
			g.Logger.Warn("failed authentication attempts", "surface", k.surface, "reason", k.reason, "count", c.n,
				"addresses", addrs, "minute", minute.Format("2006-01-02T15:04Z"))
		}
	}
	return out
}

func status(reason string) int {
	switch reason {
	case ReasonThrottled:
		return http.StatusTooManyRequests
	case ReasonCSRF, ReasonLocked, ReasonSSO:
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}
