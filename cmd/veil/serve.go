package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/proxy"
)

// demoValues are the defaults of the shipped veil.yaml: fine for a first
// run on a laptop, an open door anywhere else.
var demoValues = map[string]bool{
	"demo-admin-token": true,
	"zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=":       true,
	"q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY=":       true,
	"gh-fixture-secret-Qm7v2Lx9":                         true,
	"lever-fixture-sigtoken-8d2e6a51":                    true,
	"ashby-fixture-secret-4f1c9e7a2b":                    true,
	"whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw=": true,
	"demo-smartrecruiters-secret":                        true,
	"demo-workable-secret":                               true,
}

// demoSecretsInUse names the config keys that still hold a demo value.
func demoSecretsInUse(cfg *veil.Config) []string {
	var keys []string
	check := func(path, v string) {
		if demoValues[v] {
			keys = append(keys, path)
		}
	}
	check("admin_token", cfg.AdminToken)
	check("keys.vault", cfg.Keys.Vault)
	check("keys.pseudonym", cfg.Keys.Pseudonym)
	for i, s := range cfg.Sources {
		check(fmt.Sprintf("sources[%d].secret", i), s.Secret)
	}
	for i, d := range cfg.Destinations {
		check(fmt.Sprintf("destinations[%d].signing_secret", i), d.SigningSecret)
	}
	return keys
}

// pprofMux serves net/http/pprof's handlers.
func pprofMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return m
}

// retention applies the retention periods at start and every hour.
func retention(ctx context.Context, cfg *veil.Config, st *audit.Store, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		r, err := st.Purge(ctx, time.Now(), time.Duration(cfg.Retention.Payload), time.Duration(cfg.Retention.Audit), false)
		if err != nil && ctx.Err() == nil {
			log.Error("retention", "err", err)
		} else if err == nil {
			log.Info("retention applied", "payloads", r.Payloads, "delivery_bodies", r.DeliveryBodies, "data_keys", r.DataKeys, "audit_rows", r.AuditRows)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openPolicies loads the policy folder; a set must define every package the
// config's destinations name, at start and on every reload.
func openPolicies(ctx context.Context, cfg *veil.Config, log *slog.Logger, st *audit.Store) (*policy.Engine, error) {
	engine := policy.NewEngine(cfg.Policies)
	engine.Logger = log.With("component", "policy")
	engine.Reporter = auditReporter{st}
	engine.Check = func(s *policy.Set) error {
		for i, d := range cfg.Destinations {
			if !s.Has(d.Policy) {
				return fmt.Errorf("destinations[%d].policy: package %s is not defined in %s", i, d.Policy, cfg.Policies)
			}
		}
		return nil
	}
	if err := engine.Open(ctx); err != nil {
		return nil, err
	}
	return engine, nil
}

// auditReporter writes policy loads and rejections to the audit log.
type auditReporter struct{ st *audit.Store }

func (r auditReporter) PolicyLoaded(digest string, files int) {
	r.st.Record(&veil.AuditEntry{Action: veil.ActionPolicyLoaded, Actor: "veil", Outcome: "loaded",
		Detail: fmt.Sprintf("digest=%s files=%d", digest, files)})
}

func (r auditReporter) PolicyRejected(digest string, reason string) {
	r.st.Record(&veil.AuditEntry{Action: veil.ActionPolicyRejected, Actor: "veil", Outcome: "rejected",
		Detail: fmt.Sprintf("digest=%s: %s", digest, reason)})
}

// loadStore loads the config at path and opens its store, for the
// commands that work on the database directly.
func loadStore(path string) (*veil.Config, *audit.Store, error) {
	cfg, err := veil.LoadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(cfg, newLogger(io.Discard))
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// openStore opens the SQLite store of cfg.
func openStore(cfg *veil.Config, log *slog.Logger) (*audit.Store, error) {
	vault, _ := veil.DecodeKey(cfg.Keys.Vault) // validated with the config
	pseudonym, _ := veil.DecodeKey(cfg.Keys.Pseudonym)
	st := audit.NewStore(filepath.Join(cfg.DataDir, "veil.db"), vault, pseudonym)
	st.Logger = log.With("component", "store")
	if err := st.Open(); err != nil {
		return nil, err
	}
	return st, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("serve", stderr)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	log := newLogger(stderr)
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if demo := demoSecretsInUse(cfg); len(demo) > 0 {
		log.Warn("DEMO SECRETS IN USE: this instance accepts events signed with published test secrets "+
			"and encrypts with a published key. Set the environment variables of veil.yaml before real use.",
			"keys", demo)
	}
	for _, s := range cfg.Sources {
		if s.Vendor == veil.VendorLever {
			log.Warn("Lever signs only token and triggeredAt, not data: a captured request could be replayed "+
				"with other data inside the timestamp tolerance. Prefer upstream lookup mode for Lever sources.",
				"source", s.Name)
		}
	}
	st, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	engine, err := openPolicies(ctx, cfg, log, st)
	if err != nil {
		return err
	}
	if err := engine.Start(ctx); err != nil {
		return err
	}
	defer engine.Stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_ = engine.Reload(ctx) // reported and logged inside
		}
	}()

	pseudonym, _ := veil.DecodeKey(cfg.Keys.Pseudonym)
	srv := proxy.NewServer(cfg, st)
	srv.Logger = log.With("component", "http")
	srv.Policies = engine
	srv.Targets = proxy.NewTargets(cfg, pseudonym)
	srv.Ready = engine.Ready
	srv.Admin = st
	srv.Lookup = st
	srv.Upstream = proxy.NewATSClient(cfg)
	srv.LookupRate, srv.LookupBurst = cfg.Lookup.Rate, float64(cfg.Lookup.Burst)

	if n, err := st.ResetSending(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Info("requeued deliveries left in flight by the last run", "count", n)
	}
	deliverer := proxy.NewDeliverer(st, srv.Targets)
	deliverer.Logger = log.With("component", "delivery")
	if err := deliverer.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	srv.Deliverer = deliverer
	go retention(ctx, cfg, st, log.With("component", "retention"))
	if err := srv.Open(); err != nil {
		return err
	}
	if addr := os.Getenv("VEIL_PPROF_ADDR"); addr != "" {
		// Profiling on request only, on an address the operator chose.
		go func() { log.Warn("pprof", "err", http.ListenAndServe(addr, pprofMux())) }()
	}
	log.Info("listening", "addr", srv.URL(), "sources", len(cfg.Sources), "data_dir", cfg.DataDir)

	<-ctx.Done()
	log.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Close(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
	}
	deliverer.Stop()
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	log.Info("stopped")
	return nil
}
