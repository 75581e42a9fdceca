package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/delivery"
	"github.com/veilhq/veil/gateway"
	"github.com/veilhq/veil/reconcile"
)

// apiClients returns the ATS API client of every source with an api
// block, dialling through the SSRF guard unless the source allows the
// private network.
func apiClients(cfg *veil.Config) (map[string]*ats.API, error) {
	out := map[string]*ats.API{}
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		if src.API == nil {
			continue
		}
		guard := &delivery.Guard{AllowPrivate: src.API.AllowPrivateNetwork}
		transport := &http.Transport{DialContext: guard.DialContext, Proxy: nil, ForceAttemptHTTP2: true,
			TLSHandshakeTimeout: 10 * time.Second, MaxIdleConnsPerHost: 4}
		api, err := ats.NewAPI(src, transport)
		if err != nil {
			return nil, err
		}
		out[src.Name] = api
	}
	return out, nil
}

// reconcileSources returns the sources serve reconciles on a schedule.
func reconcileSources(cfg *veil.Config, apis map[string]*ats.API) ([]reconcile.Source, error) {
	var out []reconcile.Source
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		if src.Reconcile == nil {
			continue
		}
		sch, err := ats.New(src)
		if err != nil {
			return nil, err
		}
		out = append(out, reconcile.Source{Config: src, API: apis[src.Name], Scheme: sch})
	}
	return out, nil
}

// pipeline returns the pipeline that decides and commits events: what
// `veil reconcile run` sends reconciled events through.
func pipeline(ctx context.Context, cfg *veil.Config, st *audit.Store, log *slog.Logger) (*gateway.Pipeline, func(), error) {
	engine, err := openPolicies(ctx, cfg, log, st)
	if err != nil {
		return nil, nil, err
	}
	if err := engine.Start(ctx); err != nil {
		return nil, nil, err
	}
	pl, err := gateway.NewPipeline(ctx, cfg, st, gateway.NewTargets(cfg, cfg.Keys.PseudonymKey()))
	if err != nil {
		engine.Stop()
		return nil, nil, err
	}
	pl.Policies = engine
	return pl, engine.Stop, nil
}

func runReconcileRun(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	source := fs.String("source", "", "the source to reconcile (required)")
	since := fs.String("since", "", "list changes since this RFC 3339 time instead of the last watermark minus overlap")
	dryRun := fs.Bool("dry-run", false, "count the changes no webhook brought; send nothing, move no watermark")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *source == "" {
		return c.usage(fs, stderr, "name the source with --source NAME")
	}
	var opt reconcile.Options
	opt.DryRun = *dryRun
	if *since != "" {
		if opt.Since, err = time.Parse(time.RFC3339, *since); err != nil {
			return c.usage(fs, stderr, "--since: not an RFC 3339 time (2026-11-01T00:00:00Z)")
		}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	idx := slices.IndexFunc(cfg.Sources, func(s veil.Source) bool { return s.Name == *source })
	switch {
	case idx < 0:
		return c.usage(fs, stderr, fmt.Sprintf("no source %q in the config", *source))
	case cfg.Sources[idx].Reconcile == nil:
		return c.usage(fs, stderr, fmt.Sprintf("source %q has no reconcile block", *source))
	}
	log := newLogger(stderr)
	st, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	apis, err := apiClients(cfg)
	if err != nil {
		return err
	}
	srcs, err := reconcileSources(cfg, apis)
	if err != nil {
		return err
	}
	srv, stop, err := pipeline(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	defer stop()
	r := &reconcile.Reconciler{Store: st, Ingest: srv, Logger: log.With("component", "reconcile"), Now: time.Now}
	for _, s := range srcs {
		if s.Config.Name != *source {
			continue
		}
		p := newProgress(stderr, "reconciling "+*source, "applications listed", 0) // the API gives no total
		opt.Progress = func(listed, _ int) { p.set(int64(listed)) }
		res, err := r.Run(ctx, s, opt)
		p.finish()
		if err != nil {
			return fmt.Errorf("reconcile %s: %w (nothing of the failed page was sent; the watermark did not move)", *source, err)
		}
		verb := "sent"
		if opt.DryRun {
			verb = "would send"
		}
		if res.Skipped {
			fmt.Fprintf(stdout, "%s: another replica is running this source's pass\n", *source)
			return nil
		}
		fmt.Fprintf(stdout, "%s: listed %d applications changed since %s; %s %d changes no webhook brought\n",
			*source, res.Listed, res.Since.UTC().Format(time.RFC3339), verb, res.Gaps)
		if opt.DryRun {
			fmt.Fprintf(stdout, "  %s\n", hiddenRecords(s.Config))
		}
		for _, t := range veil.NormalTypes {
			if n := res.Types[t]; n > 0 {
				fmt.Fprintf(stdout, "  %s: %d\n", t, n)
			}
		}
	}
	return nil
}
