// Package proxy is Veil's HTTP side: the webhook endpoint, the gated
// lookup and the admin API. It translates requests into calls on the use
// cases of package gateway (ingest, replay, lookup, review, recovery,
// subjects) and their errors into statuses; what it decides itself is
// only what HTTP needs: who is calling, how many bytes and requests are
// held at once, how long a sender may stall.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
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

	cfg        *veil.Config
	store      EventStore
	rejections rejections
	router     *http.ServeMux
	ln         *connLimiter
	srv        *http.Server
	stop       chan struct{} // closed by Close: the rejections flusher ends
	wg         sync.WaitGroup
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
	s.rejections.Record = s.store.Record
	if s.Guard == nil {
		s.Guard = auth.NewGuard()
		s.Guard.Now, s.Guard.Logger, s.Guard.Record = s.Now, s.Logger, s.store.Record
	}
	g := newGate(s.cfg, s.Tokens, s.Guard, s.Logger)
	h := &hookAPI{cfg: s.cfg, Logger: s.Logger, Now: s.Now, Pipeline: s.Pipeline, rejections: &s.rejections,
		admitBudget: admitBudget, admit: semaphore.NewWeighted(admitBudget),
		bodies: semaphore.NewWeighted(max(bodyBudget, s.cfg.MaxBodyBytes)),
		// Keep a quarter of the connections (up to 64) for everything but hooks.
		slots: make(chan struct{}, max(1, s.cfg.MaxConnections-min(64, s.cfg.MaxConnections/4)))}
	a := &adminAPI{cfg: s.cfg, Logger: s.Logger, Now: s.Now, store: s.store, Admin: s.Admin, Pipeline: s.Pipeline,
		Reviews: s.Reviews, Recovery: s.Recovery, Subjects: s.Subjects, Reload: s.Reload, Deliverer: s.Deliverer, GivenUp: s.GivenUp}
	m := http.NewServeMux()
	m.HandleFunc("POST /hooks/{source}", h.limitHooks(h.handleHook))
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
		l := &lookupAPI{Logger: s.Logger, Now: s.Now, Guard: s.Guard, Lookup: s.Lookup, Consumers: s.Consumers,
			limiter: &limiter{rate: s.LookupRate, burst: max(1, s.LookupBurst)}}
		m.HandleFunc("GET /v1/events/{id}/record", l.handleRecord)
	}
	if s.Admin != nil || s.Recovery != nil {
		m.HandleFunc("GET /v1/deliveries", g.require(a.handleDeliveryList, veil.RoleAdmin))
	}
	if s.Recovery != nil {
		m.HandleFunc("POST /v1/deliveries/replay", g.require(a.handleReplayMatching, veil.RoleAdmin))
		m.HandleFunc("GET /v1/destinations", g.require(a.handleDestinations, veil.AllRoles...))
		m.HandleFunc("POST /v1/destinations/{name}/{verb}", g.require(a.handlePause, veil.RoleAdmin))
	}
	if s.Admin != nil {
		m.HandleFunc("POST /v1/deliveries/{id}/replay", g.require(a.handleReplay, veil.RoleAdmin))
		m.HandleFunc("GET /v1/audit/export", g.require(a.handleExport, veil.RoleAdmin, veil.RolePrivacy, veil.RoleAuditor))
		m.HandleFunc("POST /v1/retention/purge", g.require(a.handlePurge, veil.RoleAdmin))
	}
	if s.Reload != nil {
		m.HandleFunc("POST /v1/policies/reload", g.require(a.handleReload, veil.RoleAdmin))
	}
	if s.Reviews != nil {
		m.HandleFunc("GET /v1/review", g.require(a.handleReviewList, veil.RoleReviewer))
		m.HandleFunc("GET /v1/review/{id}", g.require(a.handleReviewOne, veil.RoleReviewer))
		m.HandleFunc("POST /v1/review/{id}/{verb}", g.require(a.handleReviewDecide, veil.RoleReviewer))
	}
	if s.Subjects != nil {
		m.HandleFunc("GET /v1/subjects/{ref}/report", g.require(a.handleSubjectReport, veil.RolePrivacy, veil.RoleAuditor))
		m.HandleFunc("DELETE /v1/subjects/{ref}", g.require(a.handleErase, veil.RolePrivacy))
		m.HandleFunc("POST /v1/subjects/{ref}/restore", g.require(a.handleRestore, veil.RolePrivacy))
		m.HandleFunc("GET /v1/receipts/key", a.handleReceiptKey)
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
