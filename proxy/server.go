// Package proxy is Veil's HTTP side: the webhook endpoint, the gated
// lookup and the admin API. It translates requests into calls on the use
// cases of package gateway (ingest, replay, lookup, review, recovery,
// subjects) and their errors into statuses; what it decides itself is
// only what HTTP needs: who is calling, how many bytes and requests are
// held at once, how long a sender may stall.
package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/semaphore"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
	"github.com/veilhq/veil/gateway"
)

// EventStore is what the HTTP side itself needs of the store besides the
// pipeline's: audit rows it aggregates, and a ping; audit.Store implements it.
type EventStore interface {
	gateway.IngestStore
	// Record queues audit rows without waiting for their commit.
	Record(entries ...*veil.AuditEntry)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// TokenStore says who a live API token acts as; audit.Store implements it.
type TokenStore interface {
	TokenPrincipal(ctx context.Context, secret string) (*veil.Principal, error)
}

// Server is Veil's HTTP server. Create it with NewServer, then Open it.
type Server struct {
	// Addr is the listen address; the config's listen when empty.
	Addr string
	// Listener, when set, is served instead of listening on Addr (the
	// caller bound it before opening anything else).
	Listener net.Listener
	// Logger receives one line per failure, never a payload value; nil discards.
	Logger *slog.Logger
	// Now is the clock for timestamp tolerances; nil means time.Now.
	Now func() time.Time
	// Ready, when set, is asked by /readyz besides the store (policies loaded…).
	Ready func() error
	// Pipeline takes webhooks in and replays dead deliveries; nil means
	// one of the server's own over the store, with no destination.
	Pipeline *gateway.Pipeline
	// Admin, when set, serves the deliveries, the export, retention runs
	// and replays.
	Admin AdminStore
	// Deliverer, when set, is woken when an erasure gave deliveries up.
	Deliverer Notifier
	// GivenUp, when set, is told of deliveries given up outside an attempt
	// (an erasure through the admin API), per destination, for metrics.
	GivenUp func(byDestination map[string]int64)
	// Lookup, when set with Consumers, serves GET /v1/events/{id}/record.
	Lookup    *gateway.Lookup
	Consumers ConsumerKeys
	// Subjects, when set, serves the subject routes: access reports,
	// erasure and its lifting, the receipt key.
	Subjects *gateway.Subjects
	// Reviews, when set with Admin, serves the review queue.
	Reviews *gateway.Review
	// Recovery, when set, serves the dead-letter filters, replay of all
	// matching, and pausing destinations.
	Recovery *gateway.Recovery
	// Console adds the web console's routes (/console/…); nil serves none.
	Console Routes
	// LookupRate and LookupBurst bound each consumer's lookups; 0 means 50/s and 100.
	LookupRate, LookupBurst float64
	// Guard throttles and audits failed tokens and keys (share it with the
	// console, so one address has one budget); nil means one of the
	// server's own, auditing to the store.
	Guard *auth.Guard
	// Reload, when set, serves POST /v1/policies/reload: the policy
	// folder loaded again, audited as the caller's.
	Reload func(ctx context.Context, actor string) error
	// Tokens, when set, authenticates the API tokens of people and
	// services (veil token create); without it only the config's
	// break-glass tokens work.
	Tokens TokenStore

	cfg     *veil.Config
	store   EventStore
	limiter limiter
	// admit bounds the values being indexed at once (admitBudget); hooks
	// bounds the hook requests in progress, leaving connections for health
	// checks, metrics and the admin API.
	admit       *semaphore.Weighted
	admitBudget int64
	bodies      *semaphore.Weighted // bytes of webhook bodies held, bodyBudget
	hooks       chan struct{}
	rejections  rejections
	// tokenKey keys the digests tokens are compared by.
	tokenKey    []byte
	adminDigest []byte
	// auditorDigest is the auditor token's digest, nil without one.
	auditorDigest []byte
	router        *http.ServeMux
	ln            *connLimiter
	srv           *http.Server
	stop          chan struct{} // closed by Close: the rejections flusher ends
	wg            sync.WaitGroup
}

// Routes adds its routes to the server's; console.Console implements it.
type Routes interface {
	Routes(m *http.ServeMux)
}

// Notifier is woken when new deliveries are due; delivery.Deliverer
// implements it.
type Notifier interface{ Notify() }

// bodyBudget is how many bytes of webhook bodies are held in memory at
// once (or one body of max_body_bytes, if that is larger): at 6 KB a
// webhook that is thousands of requests at once; at the 1 MiB limit, 32.
const bodyBudget = 32 << 20

// admitBudget is the number of JSON values being indexed and decided at
// once, across requests: some 250 bytes each while an event is decided and
// committed, so about 25 MB. A typical webhook holds 100 to 300 values, so
// hundreds are decided at once and only bodies with tens of thousands of
// keys ever wait for each other.
const admitBudget = 100_000

// NewServer returns a server for cfg backed by store.
func NewServer(cfg *veil.Config, store EventStore) *Server {
	s := &Server{cfg: cfg, store: store}
	s.rejections.Rows = rejectionRows
	return s
}

// Open builds the routes and every source's scheme, listens and serves in
// the background. A taken port is returned as an error.
func (s *Server) Open() error {
	if err := s.init(); err != nil {
		return err
	}
	if s.Addr == "" {
		s.Addr = s.cfg.Listen
	}
	ln := s.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w", s.Addr, err)
		}
	}
	s.ln = newConnLimiter(ln, s.cfg.MaxConnections)
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ConnState:         s.ln.connState,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	s.stop = make(chan struct{})
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("serve", "err", err)
		}
	}()
	go func() { // write each minute's aggregated rejections once it ends
		defer s.wg.Done()
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.rejections.Flush(s.Now(), false)
				s.Guard.Flush(false)
			}
		}
	}()
	return nil
}

func (s *Server) init() error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Pipeline == nil {
		p, err := gateway.NewPipeline(context.Background(), s.cfg, s.store, nil)
		if err != nil {
			return err
		}
		s.Pipeline = p
	}
	s.admitBudget = admitBudget
	s.admit = semaphore.NewWeighted(s.admitBudget)
	s.bodies = semaphore.NewWeighted(max(bodyBudget, s.cfg.MaxBodyBytes))
	// Keep a quarter of the connections (up to 64) for everything but hooks.
	s.hooks = make(chan struct{}, max(1, s.cfg.MaxConnections-min(64, s.cfg.MaxConnections/4)))
	s.rejections.Record = s.store.Record
	if s.Guard == nil {
		s.Guard = auth.NewGuard()
		s.Guard.Now, s.Guard.Logger, s.Guard.Record = s.Now, s.Logger, s.store.Record
	}
	s.tokenKey = make([]byte, 32)
	rand.Read(s.tokenKey)
	s.adminDigest = s.tokenDigest(s.cfg.AdminToken)
	if s.cfg.AuditorToken != "" {
		s.auditorDigest = s.tokenDigest(s.cfg.AuditorToken)
	}
	m := http.NewServeMux()
	m.HandleFunc("POST /hooks/{source}", s.limitHooks(s.handleHook))
	if s.Console != nil {
		s.Console.Routes(m)
	}
	m.HandleFunc("GET /healthz", s.handleHealthz)
	m.HandleFunc("GET /readyz", s.handleReadyz)
	m.Handle("GET /metrics", promhttp.Handler())
	if s.Lookup != nil && s.Consumers != nil {
		if s.LookupRate <= 0 {
			s.LookupRate, s.LookupBurst = 50, 100
		}
		s.limiter = limiter{rate: s.LookupRate, burst: max(1, s.LookupBurst)}
		m.HandleFunc("GET /v1/events/{id}/record", s.handleRecord)
	}
	if s.Admin != nil || s.Recovery != nil {
		m.HandleFunc("GET /v1/deliveries", s.require(s.handleDeliveryList, veil.RoleAdmin))
	}
	if s.Recovery != nil {
		m.HandleFunc("POST /v1/deliveries/replay", s.require(s.handleReplayMatching, veil.RoleAdmin))
		m.HandleFunc("GET /v1/destinations", s.require(s.handleDestinations, veil.AllRoles...))
		m.HandleFunc("POST /v1/destinations/{name}/{verb}", s.require(s.handlePause, veil.RoleAdmin))
	}
	if s.Admin != nil {
		m.HandleFunc("POST /v1/deliveries/{id}/replay", s.require(s.handleReplay, veil.RoleAdmin))
		m.HandleFunc("GET /v1/audit/export", s.require(s.handleExport, veil.RoleAdmin, veil.RolePrivacy, veil.RoleAuditor))
		m.HandleFunc("POST /v1/retention/purge", s.require(s.handlePurge, veil.RoleAdmin))
	}
	if s.Reload != nil {
		m.HandleFunc("POST /v1/policies/reload", s.require(s.handleReload, veil.RoleAdmin))
	}
	if s.Reviews != nil {
		m.HandleFunc("GET /v1/review", s.require(s.handleReviewList, veil.RoleReviewer))
		m.HandleFunc("GET /v1/review/{id}", s.require(s.handleReviewOne, veil.RoleReviewer))
		m.HandleFunc("POST /v1/review/{id}/{verb}", s.require(s.handleReviewDecide, veil.RoleReviewer))
	}
	if s.Subjects != nil {
		m.HandleFunc("GET /v1/subjects/{ref}/report", s.require(s.handleSubjectReport, veil.RolePrivacy, veil.RoleAuditor))
		m.HandleFunc("DELETE /v1/subjects/{ref}", s.require(s.handleErase, veil.RolePrivacy))
		m.HandleFunc("POST /v1/subjects/{ref}/restore", s.require(s.handleRestore, veil.RolePrivacy))
		m.HandleFunc("GET /v1/receipts/key", s.handleReceiptKey)
	}
	s.router = m
	return nil
}

// Handler returns the server's routes without listening, for tests and
// benchmarks that drive it in-process.
func (s *Server) Handler() (http.Handler, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP implements http.Handler. Every request's body must arrive
// within bodyReadTimeout, so no request, whatever its handler reads, holds
// its connection longer waiting for a stalled sender. What no route
// serves is answered in JSON: 404, or 405 with the methods it allows; an
// odd path (// or ..) is not redirected to its clean form but answered 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	if h, pattern := s.router.Handler(r); pattern == "" || !clean(r.URL.Path) {
		var probe statusProbe
		if pattern == "" {
			h.ServeHTTP(&probe, r) // the mux's own 404 or 405, to learn which
		}
		if probe.code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.Header().Get("Allow"))
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "message": "Method not allowed on this route."})
			return
		}
		writeError(w, r, s.Logger, veil.Errorf(veil.ENOTFOUND, "No such route."))
		return
	}
	s.router.ServeHTTP(w, r)
}

// clean reports whether p is its own clean form, as the mux would have it.
func clean(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// statusProbe records the status and headers of a response it discards.
type statusProbe struct {
	header http.Header
	code   int
}

func (p *statusProbe) Header() http.Header {
	if p.header == nil {
		p.header = http.Header{}
	}
	return p.header
}
func (p *statusProbe) WriteHeader(code int)        { p.code = code }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }

// URL returns the base URL the server listens on.
func (s *Server) URL() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close stops accepting requests and waits, until ctx ends, for those in
// flight; each finishes its commit before it answers. Then it writes the
// aggregated rejections of the current minute.
func (s *Server) Close(ctx context.Context) error {
	var err error
	if s.srv != nil {
		err = s.srv.Shutdown(ctx)
		close(s.stop)
		s.wg.Wait()
	}
	if s.Now != nil {
		s.rejections.Flush(s.Now(), true)
		s.Guard.Flush(true)
	}
	return err
}

// limitHooks answers 503 when as many hook requests are in progress as
// their share of max_connections allows: the ATS retries, and the rest of
// the connections stay free for health checks, metrics and the admin API.
func (s *Server) limitHooks(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.hooks <- struct{}{}:
			defer func() { <-s.hooks }()
			h(w, r)
		default:
			name := r.PathValue("source")
			if src, _ := s.Pipeline.Source(name); src == nil {
				name = ""
			}
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close") // and do not wait for its body
			s.reject(w, r, name, veil.Errorf(veil.EUNAVAILABLE, "Too many webhooks in progress; retry later."))
		}
	}
}

// tokenDigest is what tokens are compared by: keyed digests of equal
// length, so the comparison leaks neither content nor length.
func (s *Server) tokenDigest(token string) []byte {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(token))
	return m.Sum(nil)
}

// validToken reports whether an Authorization header carries "Bearer "
// and a token whose digest is one of want (nil entries never match).
// principal returns who the Authorization header's bearer token acts
// as: a break-glass token of the config (compared by keyed digest) or a
// live API token of the store; nil when it is neither.
func (s *Server) principal(ctx context.Context, authorization string) (*veil.Principal, error) {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || token == "" {
		return nil, nil
	}
	d := s.tokenDigest(token)
	switch {
	case hmac.Equal(d, s.adminDigest):
		return veil.BreakGlass(veil.RoleAdmin), nil
	case s.auditorDigest != nil && hmac.Equal(d, s.auditorDigest):
		return veil.BreakGlass(veil.RoleAuditor), nil
	case s.Tokens == nil || !strings.HasPrefix(token, "vt_"):
		return nil, nil
	}
	p, err := s.Tokens.TokenPrincipal(ctx, token)
	if veil.ErrorCode(err) == veil.EUNAUTHORIZED {
		return nil, nil
	}
	return p, err
}

// require wraps h with a check of the Authorization header: a token whose
// principal holds one of roles, carried in the request's context for
// the audit rows h writes. Failures are throttled per address (past the
// budget even the right token waits) and audited in aggregate; a token
// without the role is 403; each API token's uses are audited, one row per
// token and minute.
func (s *Server) require(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		addr := auth.Address(r)
		if wait := s.Guard.Wait(auth.SurfaceAdminAPI, addr, ""); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(w, r, s.Logger, veil.Errorf(veil.ERATELIMITED, "Too many failed attempts from this address; retry in %d s.", int(wait.Seconds())+1))
			return
		}
		p, err := s.principal(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if p == nil {
			s.Guard.Failed(auth.SurfaceAdminAPI, auth.ReasonInvalid, addr, "")
			writeError(w, r, s.Logger, veil.Errorf(veil.EUNAUTHORIZED, "A valid token with the %s role is required (Authorization: Bearer …).",
				strings.Join(roles, " or ")))
			return
		}
		if strings.HasPrefix(p.Actor, veil.ActorToken) {
			s.Guard.Used(auth.SurfaceAdminAPI, p.Actor)
		}
		if !p.HasAny(roles...) {
			writeError(w, r, s.Logger, veil.Errorf(veil.EFORBIDDEN, "This needs the %s role; %s has %s.", strings.Join(roles, " or "),
				p.Actor, strings.Join(p.Roles, ", ")))
			return
		}
		h(w, r.WithContext(veil.WithPrincipal(r.Context(), p)))
	}
}

// actor names who a request authenticated by require acts as.
func actor(r *http.Request) string {
	if p := veil.PrincipalFrom(r.Context()); p != nil {
		return p.Actor
	}
	return "unknown"
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		// The cause goes to the log line (with the error id), not the answer.
		writeError(w, r, s.Logger, errors.Join(veil.Errorf(veil.EUNAVAILABLE, "The store is not reachable."), err))
		return
	}
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			writeError(w, r, s.Logger, veil.Errorf(veil.EUNAVAILABLE, "Not ready: %s", veil.ErrorMessage(err)))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// routeName is the pattern that served r ("POST /hooks/{source}"): a
// bounded label, never the caller's path.
func routeName(r *http.Request) string { return r.Pattern }
