// Package reconcile pairs webhooks with API polling: for each source with
// an api and a reconcile schedule it lists the applications changed since
// the last good pass (minus an overlap), compares each with what webhooks
// and earlier passes reported, and sends every change no webhook brought
// through the same policies, queue and audit log as a webhook, as a
// normal-form event with reconciled: true.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/errgroup"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/redact"
)

// Store is what reconciliation keeps: each source's watermark and sync
// token, and each application's last known state (keyed hashes only).
type Store interface {
	ReconcileState(ctx context.Context, source string) (veil.ReconcileState, error)
	SetReconcileState(ctx context.Context, source string, st veil.ReconcileState) error
	// Transitions returns the change each listed state reports ("" for
	// none) and which stored states know less than the listing.
	Transitions(ctx context.Context, source string, cur []veil.AppState) (types []string, stale []bool, err error)
	NoteApps(ctx context.Context, source string, cur []veil.AppState) error
	// Exclusive runs fn unless another replica runs source's pass.
	Exclusive(ctx context.Context, source string, fn func() error) (bool, error)
	Record(entries ...*veil.AuditEntry)
}

// Ingester decides and commits a reconciled event (gateway.Pipeline).
type Ingester interface {
	IngestReconciled(ctx context.Context, e *veil.Event, n *veil.NormalEvent) (id string, duplicate bool, err error)
}

// Lister is a source's ATS API client.
type Lister interface {
	List(ctx context.Context, l ats.Listing, page func([]ats.AppRecord) error) (string, error)
	Envelope(rec ats.AppRecord) []byte
	UpstreamIDs(rec ats.AppRecord) map[string]string
}

var (
	runsTotal = promauto.NewCounterVec(prometheus.CounterOpts{Name: "veil_reconcile_runs_total",
		Help: "Reconciliation passes by source and outcome (ok, error, skipped: another replica ran it)."}, []string{"source", "outcome"})
	gapsTotal = promauto.NewCounterVec(prometheus.CounterOpts{Name: "veil_reconcile_gaps_total",
		Help: "Changes reconciliation found that no webhook brought, by source."}, []string{"source"})
	lagSeconds = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "veil_reconcile_lag_seconds",
		Help: "Seconds since the watermark of the source's last good pass."}, []string{"source"})
)

// Reconciler runs passes. Create one per process; Run is safe for
// concurrent use (one pass per source at a time).
type Reconciler struct {
	Store  Store
	Ingest Ingester
	Logger *slog.Logger
	Now    func() time.Time

	mu      sync.Mutex
	running map[string]bool
}

// Source is one source to reconcile, with its API client and scheme.
type Source struct {
	Config *veil.Source
	API    Lister
	Scheme ats.Scheme
}

// Options change one pass.
type Options struct {
	Since  time.Time // list from here instead of the watermark minus overlap
	DryRun bool      // report the gaps, send nothing, move no watermark
	// Progress, when set, is told after each page the applications listed
	// and the changes found so far.
	Progress func(listed, gaps int)
}

// Result is what a pass did: counts only, never a value.
type Result struct {
	Source  string
	Since   time.Time
	Listed  int // applications listed
	Gaps    int // changes no webhook brought (sent unless a dry run)
	Skipped bool
	Types   map[string]int // gaps by normal type
}

// ErrBusy is returned when the source's pass is already running.
var ErrBusy = errors.New("a pass of this source is already running")

// Run runs one pass of src: nothing is sent from a page the API answered
// badly, and the watermark moves only when the pass succeeds, so the next
// pass resumes from the last good one.
func (r *Reconciler) Run(ctx context.Context, src Source, opt Options) (Result, error) {
	name := src.Config.Name
	res := Result{Source: name, Types: map[string]int{}}
	r.mu.Lock()
	if r.running == nil {
		r.running = map[string]bool{}
	}
	if r.running[name] {
		r.mu.Unlock()
		return res, ErrBusy
	}
	r.running[name] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, name)
		r.mu.Unlock()
	}()
	var err error
	ran, lockErr := r.Store.Exclusive(ctx, name, func() error {
		res, err = r.pass(ctx, src, opt, res)
		return err
	})
	switch {
	case lockErr != nil && err == nil:
		err = lockErr
	case !ran && lockErr == nil:
		res.Skipped = true
		runsTotal.WithLabelValues(name, "skipped").Inc()
		return res, nil
	}
	if err != nil {
		runsTotal.WithLabelValues(name, "error").Inc()
		// What went wrong is a status or a fault, never a record value.
		r.Store.Record(&veil.AuditEntry{Action: veil.ActionReconciled, Actor: "veil", Source: name,
			Outcome: "pass_failed", Detail: err.Error()})
		r.Logger.Error("reconcile pass failed", "source", name, "listed", res.Listed, "gaps", res.Gaps, "err", err)
		if st, e := r.Store.ReconcileState(ctx, name); e == nil && st.Known {
			lagSeconds.WithLabelValues(name).Set(r.Now().Sub(st.Watermark).Seconds())
		}
		return res, err
	}
	runsTotal.WithLabelValues(name, "ok").Inc()
	r.Logger.Info("reconcile pass", "source", name, "since", res.Since, "listed", res.Listed, "gaps", res.Gaps, "dry_run", opt.DryRun)
	return res, nil
}

func (r *Reconciler) pass(ctx context.Context, src Source, opt Options, res Result) (Result, error) {
	cfg := src.Config
	name := cfg.Name
	start := r.Now()
	st, err := r.Store.ReconcileState(ctx, name)
	if err != nil {
		return res, err
	}
	overlap := time.Duration(cfg.Reconcile.Overlap)
	switch {
	case !opt.Since.IsZero():
		res.Since, st.Token = opt.Since, "" // a listing by time, not from the sync token
	case st.Known:
		res.Since = st.Watermark.Add(-overlap)
	case cfg.Reconcile.Since != "":
		res.Since, _ = time.Parse(time.RFC3339, cfg.Reconcile.Since)
	default:
		res.Since = start.Add(-overlap) // the first time Veil reconciles this source
	}
	listing := ats.Listing{Since: res.Since, Token: st.Token, PerPage: cfg.Reconcile.PerPage}
	page := func(recs []ats.AppRecord) error { return r.page(ctx, src, opt, recs, &res, start) }
	token, err := src.API.List(ctx, listing, page)
	if listing.Token != "" && ats.FullSyncNeeded(err) {
		// The token is discarded whatever the next pass does: a pass that
		// kept it would fail the same way every time.
		r.Logger.Warn("reconcile: the ATS refused the sync token; listing everything changed since the watermark",
			"source", name, "reason", err.Error())
		if !opt.DryRun {
			if e := r.Store.SetReconcileState(ctx, name, veil.ReconcileState{Watermark: st.Watermark, Known: st.Known}); e != nil {
				return res, e
			}
		}
		listing.Token = ""
		token, err = src.API.List(ctx, listing, page)
	}
	if err != nil {
		return res, err
	}
	if opt.DryRun {
		return res, nil
	}
	if err := r.Store.SetReconcileState(ctx, name, veil.ReconcileState{Watermark: start, Token: token, Known: true}); err != nil {
		return res, err
	}
	lagSeconds.WithLabelValues(name).Set(r.Now().Sub(start).Seconds())
	return res, nil
}

// page compares one page's applications and sends each change no webhook
// brought.
func (r *Reconciler) page(ctx context.Context, src Source, opt Options, recs []ats.AppRecord, res *Result, start time.Time) error {
	name := src.Config.Name
	res.Listed += len(recs)
	states := make([]veil.AppState, len(recs))
	for i, rec := range recs {
		stage := rec.StageID
		if stage == "" {
			stage = rec.StageName
		}
		states[i] = veil.AppState{ID: rec.ID, Stage: stage, Outcome: rec.Outcome, New: !rec.CreatedAt.Before(res.Since)}
	}
	types, stale, err := r.Store.Transitions(ctx, name, states)
	if err != nil {
		return err
	}
	var note []veil.AppState
	// The page's changes commit concurrently, so the store's writer
	// batches them (one at a time was a commit each: 10,000 changes took
	// minutes). Each commits with its application's state, so a kill
	// midway leaves nothing to send twice.
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, rec := range recs {
		if stale[i] && !opt.DryRun {
			note = append(note, states[i])
		}
		if types[i] == "" || rec.ID == "" {
			continue
		}
		if opt.DryRun {
			res.Gaps++
			res.Types[types[i]]++
			continue
		}
		e, n, err := r.build(src, rec, states[i], types[i], start)
		if err != nil {
			return err
		}
		g.Go(func() error {
			_, dup, err := r.Ingest.IngestReconciled(gctx, e, n)
			if err != nil {
				return fmt.Errorf("commit a reconciled event: %w", err)
			}
			if !dup {
				mu.Lock()
				res.Gaps++
				res.Types[e.EventType]++
				mu.Unlock()
				gapsTotal.WithLabelValues(name).Inc()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := r.Store.NoteApps(ctx, name, note); err != nil {
		return err
	}
	if opt.Progress != nil {
		opt.Progress(res.Listed, res.Gaps)
	}
	return nil
}

// build makes the reconciled event of a listed change: the record as its
// payload, the vendor's normal form of it with the change's type.
func (r *Reconciler) build(src Source, rec ats.AppRecord, st veil.AppState, typ string, now time.Time) (*veil.Event, *veil.NormalEvent, error) {
	cfg := src.Config
	payload := src.API.Envelope(rec)
	doc, err := redact.Parse(payload)
	if err != nil {
		return nil, nil, fmt.Errorf("the listed record is not JSON: %w", err)
	}
	defer doc.Release()
	n := src.Scheme.Normalize("", doc)
	n.Type, n.VendorType, n.Reconciled = typ, "reconciled", true
	fill := func(p **string, v string) {
		if *p == nil && v != "" {
			*p = veil.Str(v)
		}
	}
	fill(&n.Application.ID, rec.ID)
	fill(&n.Candidate.ID, rec.CandidateID)
	fill(&n.Job.ID, rec.JobID)
	fill(&n.Application.Stage.ID, rec.StageID)
	fill(&n.Application.Stage.Name, rec.StageName)
	if n.Application.Status == nil && rec.Outcome != veil.OutcomeClosed && rec.Outcome != veil.OutcomeDeleted {
		n.Application.Status = veil.Str(rec.Outcome)
	}
	if !rec.UpdatedAt.IsZero() {
		n.OccurredAt = veil.Str(rec.UpdatedAt.UTC().Format(time.RFC3339))
	}
	subject := ""
	switch {
	case rec.CandidateID != "":
		subject = cfg.Name + ":candidate:" + rec.CandidateID
	case n.Candidate.ID != nil:
		subject = cfg.Name + ":candidate:" + *n.Candidate.ID
	case rec.ID != "":
		subject = cfg.Name + ":application:" + rec.ID
	}
	e := &veil.Event{ID: veil.NewID("evt_"), Source: cfg.Name, Vendor: cfg.Vendor, EventType: typ, Subject: subject,
		// Crash and rerun: the same change of the same application is one event.
		DedupKey:   "reconcile\x00" + rec.ID + "\x00" + st.Stage + "\x00" + st.Outcome + "\x00" + strconv.FormatInt(rec.UpdatedAt.UnixMilli(), 10),
		ReceivedAt: now, Payload: payload, App: &st, Reconciled: true}
	if cfg.Lookup == "upstream" {
		e.Upstream = src.API.UpstreamIDs(rec)
	}
	return e, n, nil
}

// Loop runs each source's passes on its schedule until ctx ends: the first
// soon after start, then every reconcile.every.
func (r *Reconciler) Loop(ctx context.Context, sources []Source) {
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every := time.Duration(src.Config.Reconcile.Every)
			t := time.NewTimer(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				r.Run(ctx, src, Options{}) // failures are logged, audited and counted
				t.Reset(every)
			}
		}()
	}
	wg.Wait()
}
