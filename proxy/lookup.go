package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
	"github.com/veilhq/veil/gateway"
)

// ConsumerKeys says which consumer a lookup key belongs to; audit.Store
// implements it.
type ConsumerKeys interface {
	Authenticate(ctx context.Context, key string) (*veil.Consumer, error)
}

// lookupAPI serves GET /v1/events/{id}/record: the consumer's key and
// stated purpose checked here, the rest is the gateway's Lookup.
type lookupAPI struct {
	Logger    *slog.Logger
	Now       func() time.Time
	Guard     *auth.Guard
	Lookup    *gateway.Lookup
	Consumers ConsumerKeys
	limiter   *limiter
}

// limiter is a token bucket per consumer (x/time/rate), on the server's
// clock. Consumers are few and named in the store: one bucket each.
type limiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[string]*rate.Limiter
}

// allow takes a token for name, or says how long until one is there.
func (l *limiter) allow(name string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	b := l.buckets[name]
	if b == nil {
		if l.buckets == nil {
			l.buckets = map[string]*rate.Limiter{}
		}
		b = rate.NewLimiter(rate.Limit(l.rate), max(1, int(l.burst)))
		l.buckets[name] = b
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // not taken: the request is refused, not delayed
		return false, d
	}
	return true, 0
}

// handleRecord serves GET /v1/events/{id}/record: the record minimised by
// the lookup policy for the consumer's key and stated purpose. Every answer
// is audited (lookup or lookup_denied) before it is sent.
func (l *lookupAPI) handleRecord(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	// A request without a valid key names no consumer: it is throttled per
	// address and counted in the minute's auth_failed row, not given a
	// lookup_denied row of its own, so guessing keys cannot grow the log.
	addr := auth.Address(r)
	if wait := l.Guard.Wait(auth.SurfaceLookup, addr, ""); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeError(w, r, l.Logger, veil.Errorf(veil.ERATELIMITED, "Too many failed attempts from this address; retry in %d l.", int(wait.Seconds())+1))
		return
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" {
		l.Guard.Failed(auth.SurfaceLookup, auth.ReasonInvalid, addr, "")
		writeError(w, r, l.Logger, veil.Errorf(veil.EUNAUTHORIZED, "A consumer key is required as Authorization: Bearer <key>."))
		return
	}
	c, err := l.Consumers.Authenticate(ctx, key)
	if veil.ErrorCode(err) == veil.EUNAUTHORIZED {
		// The key itself is never written anywhere.
		l.Guard.Failed(auth.SurfaceLookup, auth.ReasonInvalid, addr, "")
		writeError(w, r, l.Logger, err)
		return
	} else if err != nil {
		l.denied(w, r, "", "", id, err)
		return
	}
	purpose := r.Header.Get("Veil-Purpose")
	if ok, wait := l.limiter.allow(c.Name, l.Now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		l.denied(w, r, c.Name, purpose, id, veil.Errorf(veil.ERATELIMITED, "Too many lookups; retry later."))
		return
	}
	if purpose == "" || !slices.Contains(c.Purposes, purpose) {
		l.denied(w, r, c.Name, purpose, id, veil.Errorf(veil.EFORBIDDEN, "The purpose is missing or not granted to this consumer (Veil-Purpose)."))
		return
	}
	e, body, err := l.Lookup.Record(ctx, c, purpose, id)
	if err != nil {
		l.denied(w, r, c.Name, purpose, id, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Veil-Event-Id", e.ID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// denied audits a refused lookup and answers it.
func (l *lookupAPI) denied(w http.ResponseWriter, r *http.Request, consumer, purpose, id string, err error) {
	if aerr := l.Lookup.Denied(r.Context(), consumer, purpose, id, err); aerr != nil {
		l.Logger.Error("audit lookup_denied", "err", aerr)
	}
	writeError(w, r, l.Logger, err)
}
