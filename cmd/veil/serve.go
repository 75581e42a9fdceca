package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/delivery"
	"github.com/veilhq/veil/policy"
)

// tuneGC sets the collector for a webhook server: each request allocates
// its parsed payload and decisions, which die with it, and at Go's default
// (GOGC=100) collection took about a tenth of the CPU under load. At 400
// the heap may grow to five times what is live, and serve committed about
// a tenth more events a second at saturation, with RSS 112 MB instead of
// 72 MB (BENCHMARKS.md, "Inbound"). The soft limit makes the collector
// work harder rather than let a burst take more than 128 MiB of heap.
// GOGC and GOMEMLIMIT in the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
}

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
	"sr-fixture-secret-7Hq2Lm4x":                         true,
	"demo-workable-secret":                               true,
	"whsec_ZGVtby1zaWduaW5nLXNlY3JldC1mb3ItdmVpbC1zaW5r": true, // the destinations' demo signing secret
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
		for j, v := range s.SecretList() {
			check(fmt.Sprintf("sources[%d].secrets[%d]", i, j), v)
		}
	}
	for i, d := range cfg.Destinations {
		for j, v := range d.SigningSecretList() {
			check(fmt.Sprintf("destinations[%d].signing_secrets[%d]", i, j), v)
		}
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

// retention applies the retention periods at start and every
// retention.every, until ctx ends. Each run works in small transactions
// between the webhooks' batches; deliveries it gives up are counted.
func retention(ctx context.Context, cfg *veil.Config, st *audit.Store, log *slog.Logger) {
	t := time.NewTicker(time.Duration(cfg.Retention.Every))
	defer t.Stop()
	for {
		start := time.Now()
		// One run is bounded by the period (at least a minute): purging is
		// chunked, so a run cut short keeps what it did and the next goes on.
		runCtx, cancel := context.WithTimeout(ctx, max(time.Minute, time.Duration(cfg.Retention.Every)))
		r, err := st.Purge(runCtx, start, time.Duration(cfg.Retention.Payload), time.Duration(cfg.Retention.Audit), false)
		cancel()
		delivery.CountDead(r.Expired)
		if err != nil && ctx.Err() == nil {
			log.Error("retention", "err", err)
		} else if err == nil && r.Elsewhere {
			log.Info("retention skipped: another replica is applying it")
		} else if err == nil {
			expired := int64(0)
			for _, n := range r.Expired {
				expired += n
			}
			log.Info("retention applied", "payloads", r.Payloads, "delivery_bodies", r.DeliveryBodies, "data_keys", r.DataKeys,
				"audit_rows", r.AuditRows, "events", r.Events, "deliveries", r.Deliveries, "deliveries_expired", expired, "pages_freed", r.Pages, "took", time.Since(start).Round(time.Millisecond).String())
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
	engine.Reporter = auditReporter{st, log}
	engine.Timeout = time.Duration(cfg.PolicyTimeout)
	engine.Check = func(s *policy.Set) error { return checkPackages(cfg, s, cfg.Policies) }
	if err := engine.Open(ctx); err != nil {
		return nil, err
	}
	return engine, nil
}

// auditReporter writes policy loads and rejections to the audit log.
type auditReporter struct {
	st  *audit.Store
	log *slog.Logger
}

func (r auditReporter) PolicyLoaded(digest string, files int, actor string, packages map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.st.PolicyLoaded(ctx, actor, digest, files, packages); err != nil {
		r.log.Error("audit the policy load", "err", err)
	}
}

func (r auditReporter) PolicyRejected(digest string, reason string) {
	r.st.Record(&veil.AuditEntry{Action: veil.ActionPolicyRejected, Actor: "veil", Outcome: "rejected",
		Detail: fmt.Sprintf("digest=%s: %s", digest, reason)})
}

// loadStore loads the config at path and opens its store, for the
// commands that work on the database directly.
func loadStore(path string) (*veil.Config, *audit.Store, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(cfg, newLogger(io.Discard))
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// openStore opens the store of cfg: SQLite in data_dir, or PostgreSQL.
func openStore(cfg *veil.Config, log *slog.Logger) (*audit.Store, error) {
	st := newStore(cfg, log)
	if err := st.Open(); err != nil {
		return nil, err
	}
	return st, nil
}

// newStore returns the config's store, not yet opened.
func newStore(cfg *veil.Config, log *slog.Logger) *audit.Store {
	vault := cfg.Keys.VaultKey()
	pseudonym := cfg.Keys.PseudonymKey()
	var st *audit.Store
	if cfg.Storage.Driver == veil.DriverPostgres {
		st = audit.NewPostgresStore(cfg.Storage.DSN, vault, pseudonym)
	} else {
		st = audit.NewStore(filepath.Join(cfg.DataDir, "veil.db"), vault, pseudonym)
	}
	st.Logger = log.With("component", "store")
	return st
}

func runServe(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usage(fs, stderr, "serve takes flags only")
	}
	tuneGC()
	log := newLogger(stderr)
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	warnings(cfg, log)
	m := &Main{Config: cfg, Log: log}
	if err := m.Open(ctx); err != nil {
		m.Close()
		return err
	}
	where := []any{"data_dir", cfg.DataDir}
	if cfg.Storage.Driver == veil.DriverPostgres {
		where = []any{"storage", "postgres"}
	}
	log.Info("listening", append([]any{"addr", m.srv.URL(), "sources", len(cfg.Sources)}, where...)...)
	<-ctx.Done()
	log.Info("shutting down: finishing requests in flight")
	if err := m.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// warnings logs, once at start, what an operator must know about the
// config: demo secrets, Lever's unsigned data, destinations allowed on the
// private network.
func warnings(cfg *veil.Config, log *slog.Logger) {
	if demo := demoSecretsInUse(cfg); len(demo) > 0 {
		log.Warn("DEMO SECRETS IN USE: this instance accepts events signed with published test secrets, "+
			"encrypts with a published key and signs deliveries with a published secret. "+
			"Set the environment variables of veil.yaml before real use.", "keys", demo)
	}
	for _, s := range cfg.Sources {
		if s.Vendor == veil.VendorLever {
			log.Warn("Lever signs only token and triggeredAt, not data: a captured request could be replayed "+
				"with other data inside the timestamp tolerance. Prefer upstream lookup mode for Lever sources.",
				"source", s.Name)
		}
	}
	for _, d := range cfg.Destinations {
		if d.AllowPrivateNetwork {
			log.Warn("allow_private_network is on: the SSRF guard does not check this destination's address; "+
				"turn it off for a destination on the internet", "destination", d.Name)
		}
	}
}

// reviewTTLs returns review_ttl per destination with review: true.
func reviewTTLs(cfg *veil.Config) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, d := range cfg.Destinations {
		if d.Review.Enabled {
			out[d.Name] = time.Duration(d.ReviewTTL)
		}
	}
	return out
}

// expireReviews rejects, once a minute, the held deliveries that waited
// past their destination's review_ttl.
func expireReviews(ctx context.Context, st *audit.Store, ttls map[string]time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		runCtx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := st.ExpireReviews(runCtx, ttls)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Error("expire held deliveries", "err", err)
		}
		for dest, k := range n {
			if k > 0 {
				log.Warn("held deliveries expired unsent: nobody decided within review_ttl", "destination", dest, "count", k)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
