package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/alert"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/auth"
	"github.com/veilhq/veil/console"
	"github.com/veilhq/veil/delivery"
	"github.com/veilhq/veil/gateway"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/proxy"
	"github.com/veilhq/veil/reconcile"
)

// Main is one `veil serve`: Open claims the data folder and the port,
// opens the store, loads the policies, wires the services and starts the
// background loops; Close stops them in order. Each goroutine is started
// here and stopped by Close (wtf's cmd/wtfd is the model).
type Main struct {
	Config *veil.Config
	Log    *slog.Logger

	// stops are what Close undoes, in reverse order of Open's steps.
	stops     []func()
	st        *audit.Store
	engine    *policy.Engine
	srv       *proxy.Server
	pipeline  *gateway.Pipeline
	deliverer *delivery.Deliverer
	// urlFile writes the listening address into the data folder's lock
	// file (SQLite), for the commands that ask the running server.
	urlFile func(string)
	apis    map[string]*ats.API // the ATS API clients, shared by lookups and reconciliation
	// closeErr is the store's Close error.
	closeErr error
	bg       context.Context // the background loops' lifetime
	stopBG   context.CancelFunc
	wg       sync.WaitGroup
}

// Open starts serving; on an error, Close undoes what was done.
func (m *Main) Open(ctx context.Context) error {
	m.bg, m.stopBG = context.WithCancel(context.WithoutCancel(ctx))
	ln, err := m.claim()
	if err != nil {
		return err
	}
	if err := m.openStore(ctx); err != nil {
		return err
	}
	if err := m.openPolicies(ctx); err != nil {
		return err
	}
	cons, err := m.wire(ln)
	if err != nil {
		return err
	}
	if err := m.start(ctx, cons); err != nil {
		return err
	}
	if m.urlFile != nil {
		m.urlFile(m.srv.URL())
	}
	return nil
}

// Close stops serving, in order: no new requests (those in flight get 30
// seconds), no new attempts, the background loops, then what Open opened,
// last first: the console, the policy watcher, the store, the port and the
// data folder.
func (m *Main) Close() error {
	if m.srv != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if e := m.srv.Close(shutdown); e != nil {
			m.Log.Error("shutdown", "err", e)
		}
		cancel()
	}
	if m.deliverer != nil {
		m.deliverer.Stop()
	}
	if m.stopBG != nil {
		m.stopBG()
	}
	m.wg.Wait()
	for i := len(m.stops) - 1; i >= 0; i-- {
		m.stops[i]()
	}
	m.stops = nil
	return m.closeErr
}

func (m *Main) onClose(f func()) { m.stops = append(m.stops, f) }

// go runs f until Close.
func (m *Main) goUntilClose(f func(ctx context.Context)) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f(m.bg)
	}()
}

// claim takes the data folder (SQLite: one serve per file; replicas share
// a PostgreSQL database) and the port: nothing is written to the audit
// log until both are ours.
func (m *Main) claim() (net.Listener, error) {
	cfg := m.Config
	if cfg.Storage.Driver == veil.DriverSQLite {
		unlock, set, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		m.onClose(unlock)
		m.urlFile = set
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	m.onClose(func() { ln.Close() })
	return ln, nil
}

// openStore opens the store with the right key and brings it up to date.
func (m *Main) openStore(ctx context.Context) error {
	st, err := openStore(m.Config, m.Log)
	if err != nil {
		return err
	}
	m.st = st
	m.onClose(func() {
		if err := st.Close(); err != nil {
			m.closeErr = fmt.Errorf("close store: %w", err)
		}
	})
	for _, mg := range st.Migrated {
		m.Log.Info("store migrated", "version", mg.Version, "name", mg.Name)
	}
	if n, err := backfillLinks(ctx, m.Config, st); err != nil {
		return err
	} else if n > 0 {
		m.Log.Info("linked the records of the stored events to their people", "events", n)
	}
	if m.Config.Storage.Driver == veil.DriverSQLite {
		// The only process delivering from this file: what the last run
		// left in flight goes back now. (Replicas wait for leases.)
		if n, err := st.ResetSending(ctx); err != nil {
			return err
		} else if n > 0 {
			m.Log.Info("requeued deliveries left in flight by the last run", "count", n)
		}
	}
	if removed, err := st.GiveUpRemoved(ctx, m.Config.DestinationNames()); err != nil {
		return err
	} else if len(removed) > 0 {
		delivery.CountDead(removed)
		m.Log.Warn("gave up the waiting deliveries of destinations no longer configured (dead, in the dead-letter inbox)", "per_destination", removed)
	}
	return nil
}

// openPolicies loads the policy folder, watches it (policy_watch) and
// reloads it on SIGHUP.
func (m *Main) openPolicies(ctx context.Context) error {
	engine, err := openPolicies(ctx, m.Config, m.Log, m.st)
	if err != nil {
		return err
	}
	m.engine = engine
	if m.Config.WatchPolicies() {
		if err := engine.Start(ctx); err != nil {
			return err
		}
		m.onClose(engine.Stop)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	m.onClose(func() { signal.Stop(hup) })
	m.goUntilClose(func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = engine.Reload(ctx) // reported and logged inside
			}
		}
	})
	return nil
}

// wire builds the HTTP server, the console and the use cases they share.
func (m *Main) wire(ln net.Listener) (*console.Console, error) {
	cfg, st, engine, log := m.Config, m.st, m.engine, m.Log
	apis, err := apiClients(cfg)
	if err != nil {
		return nil, err
	}
	m.apis = apis
	pl, err := gateway.NewPipeline(m.bg, cfg, st, gateway.NewTargets(cfg, cfg.Keys.PseudonymKey()))
	if err != nil {
		return nil, err
	}
	pl.Policies, pl.History, pl.Upstream = engine, st, gateway.NewATSClient(apis)
	m.pipeline = pl
	srv := proxy.NewServer(cfg, st)
	srv.Listener, srv.Logger, srv.Pipeline, srv.Ready = ln, log.With("component", "http"), pl, engine.Ready
	srv.Admin, srv.Consumers, srv.Tokens, srv.Reload = st, st, st, engine.ReloadAs
	srv.Lookup = &gateway.Lookup{Pipeline: pl, Store: st, Key: cfg.Keys.PseudonymKey()}
	srv.LookupRate, srv.LookupBurst = cfg.Lookup.Rate, float64(cfg.Lookup.Burst)
	srv.GivenUp = delivery.CountDead
	// One budget of failed attempts per address, for the API and the console.
	guard := auth.NewGuard()
	guard.Logger, guard.Record = log.With("component", "auth"), st.Record
	srv.Guard = guard
	srv.Subjects = subjects(cfg, st)
	srv.Subjects.GivenUp = delivery.CountDead
	srv.Recovery = &gateway.Recovery{Store: st, Config: cfg, Replay: pl.Replay}
	srv.Reviews = &gateway.Review{Store: st, Held: st, Config: cfg}
	cons := &console.Console{Guard: guard, Store: st, Consumers: st, Counts: st, Replay: pl, Review: srv.Reviews, Subjects: srv.Subjects, Policies: &gateway.Policies{Pipeline: pl},
		Recovery: srv.Recovery, ReviewTTL: reviewTTLs(cfg), Find: &gateway.Find{Store: st, Config: cfg},
		Sessions: st, Users: st, Record: st.Record, Reload: engine.ReloadAs,
		SessionIdle: time.Duration(cfg.Auth.SessionIdle), SessionMax: time.Duration(cfg.Auth.SessionMax),
		Processing:   consoleProcessing(cfg, engine.Current, st),
		CheckSubject: func(ref string) error { return gateway.CheckSubject(cfg, ref) }, Reconciled: cfg.ReconciledSources(),
		DestinationNames: cfg.DestinationNames(), AdminToken: cfg.AdminToken, AuditorToken: cfg.AuditorToken,
		Logger: log.With("component", "console")}
	if o := cfg.Auth.OIDC; o != nil {
		cons.OIDC = &console.OIDC{Config: *o, Pending: st}
	}
	srv.Console = cons
	m.onClose(cons.Close)
	m.srv = srv
	return cons, nil
}

// start starts delivering, serving and the background loops: retention,
// review expiry, reconciliation, alerts, and pprof when asked for.
func (m *Main) start(ctx context.Context, cons *console.Console) error {
	cfg, st, srv, log := m.Config, m.st, m.srv, m.Log
	d := delivery.New(st, cfg.Destinations)
	d.Logger, d.PayloadRetention = log.With("component", "delivery"), time.Duration(cfg.Retention.Payload)
	if err := d.Start(m.bg); err != nil {
		return err
	}
	m.deliverer = d
	srv.Deliverer, m.pipeline.Notify, srv.Subjects.Queued, srv.Reviews.Notify, srv.Recovery.Resumed, cons.Health = d, d.Notify, d.Notify, d.Notify, d.Notify, d
	m.goUntilClose(func(ctx context.Context) { retention(ctx, cfg, st, log.With("component", "retention")) })
	if err := srv.Open(); err != nil {
		return err
	}
	if ttls := reviewTTLs(cfg); len(ttls) > 0 {
		m.goUntilClose(func(ctx context.Context) { expireReviews(ctx, st, ttls, log.With("component", "review")) })
	}
	srcs, err := reconcileSources(cfg, m.apis)
	if err != nil {
		return err
	}
	if len(srcs) > 0 {
		r := &reconcile.Reconciler{Store: st, Ingest: m.pipeline, Logger: log.With("component", "reconcile"), Now: time.Now}
		m.goUntilClose(func(ctx context.Context) { r.Loop(ctx, srcs) })
	}
	if cfg.Alerts != nil {
		senders, err := alert.Senders(cfg.Alerts, nil, nil)
		if err != nil {
			return err
		}
		al := &alert.Alerter{Config: cfg.Alerts, Reconciled: cfg.ReconciledSources(), Store: st, Health: d, Senders: senders,
			Logger: log.With("component", "alerts")}
		m.goUntilClose(al.Run)
	}
	if addr := os.Getenv("VEIL_PPROF_ADDR"); addr != "" {
		// Profiling on request only, on an address the operator chose.
		ps := &http.Server{Addr: addr, Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		m.goUntilClose(func(context.Context) {
			if err := ps.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				log.Warn("pprof", "err", err)
			}
		})
		m.goUntilClose(func(ctx context.Context) { <-ctx.Done(); ps.Close() })
	}
	return nil
}
