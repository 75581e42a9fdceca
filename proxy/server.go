// Package proxy is Veil's HTTP side: the inbound webhook endpoint with every
// vendor's signature scheme, the admin and lookup API, and (later) the
// delivery workers that carry minimised events to destinations.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/veilhq/veil"
)

// EventStore commits verified events; audit.Store implements it.
type EventStore interface {
	// IngestEvent commits e durably with its deliveries and drift paths
	// and returns its id, or the first event's id and true for a duplicate.
	IngestEvent(ctx context.Context, e *veil.Event, deliveries []*veil.Delivery, drift []string) (id string, duplicate bool, err error)
	// SchemaPaths returns the paths seen so far per source NUL event type.
	SchemaPaths(ctx context.Context) (map[string]map[string]bool, error)
	// Record queues audit rows without waiting for their commit.
	Record(entries ...*veil.AuditEntry)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// Server is Veil's HTTP server. Create it with NewServer, then Open it.
type Server struct {
	// Addr is the listen address; the config's listen when empty.
	Addr string
	// Logger receives one line per failure, never a payload value; nil discards.
	Logger *slog.Logger
	// Now is the clock for timestamp tolerances; nil means time.Now.
	Now func() time.Time
	// Ready, when set, is asked by /readyz besides the store (policies loaded…).
	Ready func() error
	// Policies gives the running policy set; nil means no destination gets
	// anything (events are still stored).
	Policies PolicySet
	// Targets are the destinations with their pseudonym keys (NewTargets).
	Targets []Target
	// Admin, when set, serves the dead-letter inbox and replays.
	Admin AdminStore
	// Deliverer, when set, is woken when new deliveries are due.
	Deliverer *Deliverer
	// Lookup, when set, serves GET /v1/events/{id}/record.
	Lookup LookupStore
	// Upstream fetches records of sources in upstream lookup mode; nil
	// means every source's payload is in the store.
	Upstream Upstream
	// LookupRate and LookupBurst bound each consumer's lookups; 0 means 50/s and 100.
	LookupRate, LookupBurst float64

	cfg     *veil.Config
	store   EventStore
	schemes map[string]scheme
	sources map[string]*veil.Source
	targets map[string][]Target // by source
	drift   drift
	limiter limiter
	// pseudonymKey derives each consumer's pseudonym key.
	pseudonymKey []byte
	router       *mux.Router
	ln           net.Listener
	srv          *http.Server
}

// NewServer returns a server for cfg backed by store.
func NewServer(cfg *veil.Config, store EventStore) *Server {
	return &Server{cfg: cfg, store: store}
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
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("serve", "err", err)
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
	s.schemes = make(map[string]scheme, len(s.cfg.Sources))
	s.sources = make(map[string]*veil.Source, len(s.cfg.Sources))
	for i := range s.cfg.Sources {
		src := &s.cfg.Sources[i]
		sch, err := newScheme(src)
		if err != nil {
			return fmt.Errorf("source %s: %w", src.Name, err)
		}
		s.schemes[src.Name], s.sources[src.Name] = sch, src
	}
	s.targets = map[string][]Target{}
	for _, t := range s.Targets {
		for _, src := range t.Sources {
			s.targets[src] = append(s.targets[src], t)
		}
	}
	seen, err := s.store.SchemaPaths(context.Background())
	if err != nil {
		return err
	}
	s.drift.seen = seen
	r := mux.NewRouter().SkipClean(true) // answer odd paths with a JSON 404, not a redirect
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.Logger, veil.Errorf(veil.ENOTFOUND, "No such route."))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "message": "Method not allowed on this route."})
	})
	r.HandleFunc("/hooks/{source}", s.handleHook).Methods(http.MethodPost).Name("hook")
	r.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet).Name("healthz")
	r.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet).Name("readyz")
	r.Handle("/metrics", promhttp.Handler()).Methods(http.MethodGet).Name("metrics")
	if s.Lookup != nil && s.Policies != nil {
		if s.LookupRate <= 0 {
			s.LookupRate, s.LookupBurst = 50, 100
		}
		s.limiter = limiter{rate: s.LookupRate, burst: max(1, s.LookupBurst)}
		s.pseudonymKey, _ = veil.DecodeKey(s.cfg.Keys.Pseudonym)
		r.HandleFunc("/v1/events/{id}/record", s.handleRecord).Methods(http.MethodGet).Name("record")
	}
	if s.Admin != nil {
		r.HandleFunc("/v1/deliveries", s.requireAdmin(s.handleDeliveries)).Methods(http.MethodGet).Name("deliveries")
		r.HandleFunc("/v1/deliveries/{id}/replay", s.requireAdmin(s.handleReplay)).Methods(http.MethodPost).Name("replay")
		r.HandleFunc("/v1/audit/export", s.requireAdmin(s.handleExport)).Methods(http.MethodGet).Name("export")
		r.HandleFunc("/v1/subjects/{ref}", s.requireAdmin(s.handleErase)).Methods(http.MethodDelete).Name("erase")
	}
	s.router = r
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

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

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
// flight; each finishes its commit before it answers.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeError(w, r, s.Logger, veil.Errorf(veil.EUNAVAILABLE, "The store is not reachable."))
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

func routeName(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		return rt.GetName()
	}
	return ""
}
