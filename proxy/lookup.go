package proxy

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
)

// ConsumerKeys says which consumer a lookup key belongs to; audit.Store
// implements it.
type ConsumerKeys interface {
	Authenticate(ctx context.Context, key string) (*veil.Consumer, error)
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
func (s *Server) handleRecord(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	// A request without a valid key names no consumer: it is throttled per
	// address and counted in the minute's auth_failed row, not given a
	// lookup_denied row of its own, so guessing keys cannot grow the log.
	addr := auth.Address(r)
	if wait := s.Guard.Wait(auth.SurfaceLookup, addr, ""); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeError(w, r, s.Logger, veil.Errorf(veil.ERATELIMITED, "Too many failed attempts from this address; retry in %d s.", int(wait.Seconds())+1))
		return
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" {
		s.Guard.Failed(auth.SurfaceLookup, auth.ReasonInvalid, addr, "")
		writeError(w, r, s.Logger, veil.Errorf(veil.EUNAUTHORIZED, "A consumer key is required as Authorization: Bearer <key>."))
		return
	}
	c, err := s.Consumers.Authenticate(ctx, key)
	if veil.ErrorCode(err) == veil.EUNAUTHORIZED {
		// The key itself is never written anywhere.
		s.Guard.Failed(auth.SurfaceLookup, auth.ReasonInvalid, addr, "")
		writeError(w, r, s.Logger, err)
		return
	} else if err != nil {
		s.denied(w, r, "", "", id, err)
		return
	}
	purpose := r.Header.Get("Veil-Purpose")
	if ok, wait := s.limiter.allow(c.Name, s.Now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		s.denied(w, r, c.Name, purpose, id, veil.Errorf(veil.ERATELIMITED, "Too many lookups; retry later."))
		return
	}
	if purpose == "" || !slices.Contains(c.Purposes, purpose) {
		s.denied(w, r, c.Name, purpose, id, veil.Errorf(veil.EFORBIDDEN, "The purpose is missing or not granted to this consumer (Veil-Purpose)."))
		return
	}
	e, body, err := s.Lookup.Record(ctx, c, purpose, id)
	if err != nil {
		s.denied(w, r, c.Name, purpose, id, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Veil-Event-Id", e.ID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// denied audits a refused lookup and answers it.
func (s *Server) denied(w http.ResponseWriter, r *http.Request, consumer, purpose, id string, err error) {
	if aerr := s.Lookup.Denied(r.Context(), consumer, purpose, id, err); aerr != nil {
		s.Logger.Error("audit lookup_denied", "err", aerr)
	}
	writeError(w, r, s.Logger, err)
}
