// Package alert tells a person when deliveries start failing: it checks
// the conditions of the config's alerts: section against the store and the
// deliverer, opens an alert once per condition (across replicas: the store
// decides who opened it), reminds while it stays open, resolves it when it
// ends, and sends each message to Slack, a signed webhook or email. A
// message names destinations, sources and counts: never a value of a
// payload.
package alert

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/veilhq/veil"
)

// Store is what the alerts read and keep; audit.Store implements it.
type Store interface {
	DeadSince(ctx context.Context, since time.Time) (map[string]int64, error)
	ReviewsExpiredSince(ctx context.Context, since time.Time) (map[string]int64, error)
	SignatureFailuresSince(ctx context.Context, since time.Time) (map[string]int64, error)
	QueueStats(ctx context.Context) ([]veil.QueueStat, error)
	ReconcileState(ctx context.Context, source string) (veil.ReconcileState, error)
	OpenAlert(ctx context.Context, a veil.Alert) (bool, error)
	RemindAlert(ctx context.Context, key string, before time.Time) (bool, error)
	ResolveAlert(ctx context.Context, a veil.Alert) (bool, error)
	OpenAlerts(ctx context.Context) ([]veil.Alert, error)
}

// Health gives the destinations' breakers (the deliverer's).
type Health interface {
	Health() []veil.DestinationHealth
}

// Message is what is sent: an alert opened, reminded or resolved.
type Message struct {
	Kind  string // "opened", "reminder" or "resolved"
	Alert veil.Alert
	Time  time.Time
}

// Text is the message as a person reads it.
func (m Message) Text() string {
	return fmt.Sprintf("Veil alert %s: %s", m.Kind, m.Alert.Summary)
}

// Sender sends a message to one channel.
type Sender interface {
	Name() string
	Send(ctx context.Context, m Message) error
}

var (
	sentTotal = promauto.NewCounterVec(prometheus.CounterOpts{Name: "veil_alerts_sent_total",
		Help: "Alert messages sent, by channel and kind."}, []string{"channel", "kind"})
	failedTotal = promauto.NewCounterVec(prometheus.CounterOpts{Name: "veil_alerts_failed_total",
		Help: "Alert messages a channel did not take."}, []string{"channel"})
	suppressedTotal = promauto.NewCounter(prometheus.CounterOpts{Name: "veil_alerts_suppressed_total",
		Help: "Alert messages not sent: over alerts.max_per_hour."})
	openGauge = promauto.NewGauge(prometheus.GaugeOpts{Name: "veil_alerts_open", Help: "Alerts open now."})
)

// Alerter checks the conditions every CheckEvery.
type Alerter struct {
	Config *veil.AlertsConfig
	// Reconciled are the sources that reconcile; ReviewTTL the reviewed
	// destinations' review_ttl.
	Reconciled []string
	Store      Store
	Health     Health // nil: no breaker condition
	Senders    []Sender
	Logger     *slog.Logger
	Now        func() time.Time

	once    sync.Once
	limit   *rate.Limiter
	breaker map[string]time.Time // destination → when this process first saw its breaker open
}

func (a *Alerter) init() {
	a.once.Do(func() {
		if a.Now == nil {
			a.Now = time.Now
		}
		if a.Logger == nil {
			a.Logger = slog.New(slog.DiscardHandler)
		}
		n := a.Config.MaxPerHour
		a.limit = rate.NewLimiter(rate.Every(time.Hour/time.Duration(n)), n)
		a.breaker = map[string]time.Time{}
	})
}

// Run checks until ctx ends.
func (a *Alerter) Run(ctx context.Context) {
	a.init()
	t := time.NewTicker(time.Duration(a.Config.CheckEvery))
	defer t.Stop()
	for {
		if err := a.Check(ctx); err != nil && ctx.Err() == nil {
			a.Logger.Error("alerts: check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check evaluates every condition once: opens, reminds and resolves.
func (a *Alerter) Check(ctx context.Context) error {
	a.init()
	ctx, cancel := context.WithTimeout(ctx, max(10*time.Second, time.Duration(a.Config.CheckEvery)))
	defer cancel()
	firing, err := a.firing(ctx)
	if err != nil {
		return err
	}
	open, err := a.Store.OpenAlerts(ctx)
	if err != nil {
		return err
	}
	openGauge.Set(float64(len(open)))
	now := a.Now()
	isOpen := map[string]bool{}
	for _, o := range open {
		isOpen[o.Key()] = true
	}
	keys := map[string]bool{}
	for _, f := range firing {
		keys[f.Key()] = true
		if !isOpen[f.Key()] { // open it (unless another replica just did)
			opened, err := a.Store.OpenAlert(ctx, f)
			if err != nil {
				return err
			}
			if opened {
				a.Logger.Warn("alert opened", "condition", f.Condition, "destination", f.Destination, "source", f.Source)
				a.send(ctx, Message{Kind: "opened", Alert: f, Time: now})
				continue
			}
		}
		if again, err := a.Store.RemindAlert(ctx, f.Key(), now.Add(-time.Duration(a.Config.RepeatAfter))); err != nil {
			return err
		} else if again {
			a.send(ctx, Message{Kind: "reminder", Alert: f, Time: now})
		}
	}
	for _, o := range open {
		if keys[o.Key()] {
			continue
		}
		o.Summary = strings.TrimSuffix(o.Summary, ".") + "; no longer so."
		resolved, err := a.Store.ResolveAlert(ctx, o)
		if err != nil {
			return err
		}
		if resolved {
			a.Logger.Info("alert resolved", "condition", o.Condition, "destination", o.Destination, "source", o.Source)
			a.send(ctx, Message{Kind: "resolved", Alert: o, Time: now})
		}
	}
	return nil
}

// send sends m to every channel, within the hourly budget; a failure is
// logged and counted (the alert stays open and is reminded).
func (a *Alerter) send(ctx context.Context, m Message) {
	if !a.limit.Allow() {
		suppressedTotal.Inc()
		a.Logger.Warn("alert not sent: over alerts.max_per_hour", "kind", m.Kind, "condition", m.Alert.Condition)
		return
	}
	for _, s := range a.Senders {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := s.Send(sctx, m)
		cancel()
		if err != nil {
			failedTotal.WithLabelValues(s.Name()).Inc()
			a.Logger.Error("alert not delivered to its channel", "channel", s.Name(), "kind", m.Kind, "err", err)
			continue
		}
		sentTotal.WithLabelValues(s.Name(), m.Kind).Inc()
	}
}

// firing lists the conditions that hold now, in a stable order.
func (a *Alerter) firing(ctx context.Context) ([]veil.Alert, error) {
	c, now := a.Config, a.Now()
	var out []veil.Alert
	counted := []struct {
		cond  string
		th    veil.AlertCount
		count func(context.Context, time.Time) (map[string]int64, error)
		text  string
		src   bool
	}{
		{veil.AlertDead, c.Dead, a.Store.DeadSince, "%d deliveries to %s went dead in the last %s", false},
		{veil.AlertSignatureFailures, c.SignatureFailures, a.Store.SignatureFailuresSince, "%d webhooks from %s were refused for a bad signature in the last %s (a wrong secret, or someone else is posting)", true},
		{veil.AlertReviewExpired, c.ReviewExpired, a.Store.ReviewsExpiredSince, "%d deliveries held for review at %s waited past review_ttl and were rejected in the last %s", false},
	}
	for _, k := range counted {
		within := time.Duration(k.th.Within)
		byName, err := k.count(ctx, now.Add(-within))
		if err != nil {
			return nil, err
		}
		for _, name := range sortedKeys(byName) {
			if n := byName[name]; n >= int64(k.th.AtLeast) {
				al := veil.Alert{Condition: k.cond, Summary: fmt.Sprintf(k.text+".", n, name, within)}
				if k.src {
					al.Source = name
				} else {
					al.Destination = name
				}
				out = append(out, al)
			}
		}
	}
	qs, err := a.Store.QueueStats(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if age := now.Sub(q.Oldest); q.Waiting > 0 && age >= time.Duration(c.OldestWaiting) {
			out = append(out, veil.Alert{Condition: veil.AlertOldestWaiting, Destination: q.Destination,
				Summary: fmt.Sprintf("%d deliveries wait for %s; the oldest for %s.", q.Waiting, q.Destination, age.Round(time.Second))})
		}
	}
	if a.Health != nil {
		for _, h := range a.Health.Health() {
			if h.Breaker == "" || h.Breaker == "closed" {
				delete(a.breaker, h.Destination)
				continue
			}
			since, ok := a.breaker[h.Destination]
			if !ok {
				a.breaker[h.Destination], since = now, now
			}
			if open := now.Sub(since); open >= time.Duration(c.BreakerOpen) {
				out = append(out, veil.Alert{Condition: veil.AlertBreakerOpen, Destination: h.Destination,
					Summary: fmt.Sprintf("the breaker of %s has been open for %s: it keeps failing, and only probes go out.", h.Destination, open.Round(time.Second))})
			}
		}
	}
	for _, src := range a.Reconciled {
		st, err := a.Store.ReconcileState(ctx, src)
		if err != nil {
			return nil, err
		}
		if lag := now.Sub(st.Watermark); st.Known && lag >= time.Duration(c.ReconcileLag) {
			out = append(out, veil.Alert{Condition: veil.AlertReconcileLag, Source: src,
				Summary: fmt.Sprintf("reconciliation of %s is %s behind: its last good pass listed changes up to %s.", src, lag.Round(time.Minute), st.Watermark.UTC().Format(time.RFC3339))})
		}
	}
	return out, nil
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
