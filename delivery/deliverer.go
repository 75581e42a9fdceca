// Package delivery carries minimised events to their destinations: durable
// queue claims, signed attempts, retries on the destination's schedule, a
// breaker per destination, and the SSRF guard that refuses private
// addresses at dial time. It is apart from the inbound HTTP side, as
// Convoy keeps its dispatcher apart from its API.
package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

var (
	deliveriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "veil_deliveries_total", Help: "Delivery attempts by destination and outcome (delivered, retry, dead).",
	}, []string{"destination", "outcome"})
	deliverySeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "veil_delivery_seconds", Help: "Time from request to answer of a delivery attempt.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"destination"})
	queueDepth = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "veil_delivery_queue_depth", Help: "Deliveries pending or being sent.",
	})
	oldestPending = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "veil_delivery_oldest_pending_seconds", Help: "How long the oldest pending delivery has been due.",
	})
)

// Store is the durable queue the workers drive; audit.Store implements it.
type Store interface {
	ClaimDeliveries(ctx context.Context, now time.Time, limit int) ([]*veil.Delivery, error)
	FinishDelivery(ctx context.Context, d *veil.Delivery, a *veil.Attempt) error
	QueueStats(ctx context.Context) (int64, time.Time, error)
}

// Deliverer sends claimed deliveries to their destinations: signed, with a
// per-destination concurrency limit and timeout, retried on the
// destination's schedule, and refused at dial time when the address is
// private. Create it with NewDeliverer, then Start it.
type Deliverer struct {
	// Logger receives one line per failure, never a payload value; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Interval is how often the queue is polled when nothing wakes it; 0 means 500ms.
	Interval time.Duration
	// BreakerThreshold consecutive failures pause a destination for
	// BreakerPause; 0 means 5 and 30s.
	BreakerThreshold int
	BreakerPause     time.Duration
	// Lookup and Dial, when set, replace name resolution and dialling in
	// every destination's SSRF guard (tests).
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)

	store    Store
	dests    map[string]*destState
	wake     chan struct{}
	inflight atomic.Int64 // claimed and not finished
	maxClaim int64        // bound on inflight: 4 per unit of concurrency
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

type destState struct {
	cfg    *veil.Destination
	client *http.Client
	keys   [][]byte // decoded signing secrets (new first), or none
	sem    chan struct{}

	mu          sync.Mutex
	failures    int
	pausedUntil time.Time
}

// New returns a deliverer for the destinations dests.
func New(store Store, dests []veil.Destination) *Deliverer {
	d := &Deliverer{store: store, dests: map[string]*destState{}, wake: make(chan struct{}, 1)}
	for i := range dests {
		d.dests[dests[i].Name] = &destState{cfg: &dests[i]}
	}
	return d
}

// Start builds each destination's client and runs the dispatcher until Stop.
func (d *Deliverer) Start(ctx context.Context) error {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Interval <= 0 {
		d.Interval = 500 * time.Millisecond
	}
	if d.BreakerThreshold <= 0 {
		d.BreakerThreshold = 5
	}
	if d.BreakerPause <= 0 {
		d.BreakerPause = 30 * time.Second
	}
	for _, st := range d.dests {
		d.maxClaim += 4 * int64(st.cfg.Concurrency)
		guard := &Guard{AllowPrivate: st.cfg.AllowPrivateNetwork, Lookup: d.Lookup, Dial: d.Dial}
		st.client = &http.Client{
			Transport: &http.Transport{DialContext: guard.DialContext, MaxIdleConnsPerHost: st.cfg.Concurrency,
				ForceAttemptHTTP2: true, Proxy: nil, TLSHandshakeTimeout: 10 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		st.sem = make(chan struct{}, st.cfg.Concurrency)
		for _, secret := range st.cfg.SigningSecretList() {
			key, err := veil.DecodeStandardSecret(secret)
			if err != nil {
				return err
			}
			st.keys = append(st.keys, key)
		}
	}
	ctx, d.cancel = context.WithCancel(ctx)
	d.wg.Add(1)
	go d.run(ctx)
	return nil
}

// Stop ends the dispatcher and waits for attempts in flight; deliveries it
// claimed but did not finish go back to the queue at the next start.
func (d *Deliverer) Stop() {
	if d.cancel != nil {
		d.cancel()
		d.wg.Wait()
	}
}

// Notify wakes the dispatcher: new deliveries are due.
func (d *Deliverer) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Deliverer) run(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(d.Interval)
	defer t.Stop()
	lastStats := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
			// Let a burst of new deliveries gather: one claim for many
			// instead of one per event (claims run on the store's writer).
			time.Sleep(5 * time.Millisecond)
		}
		for d.dispatch(ctx) {
		}
		if time.Since(lastStats) > 5*time.Second {
			lastStats = time.Now()
			if n, oldest, err := d.store.QueueStats(ctx); err == nil {
				queueDepth.Set(float64(n))
				if oldest.IsZero() || oldest.After(d.Now()) {
					oldestPending.Set(0)
				} else {
					oldestPending.Set(d.Now().Sub(oldest).Seconds())
				}
			}
		}
	}
}

// dispatch claims due deliveries and starts an attempt for each; it
// reports whether it claimed a full batch (so there may be more).
func (d *Deliverer) dispatch(ctx context.Context) bool {
	// Claim no more than the destinations can work on soon: a destination
	// that is down must not pull the whole queue into memory as 'sending'.
	batch := min(256, max(d.maxClaim, 16)-d.inflight.Load())
	if batch <= 0 {
		return false
	}
	ds, err := d.store.ClaimDeliveries(ctx, d.Now(), int(batch))
	if err != nil {
		if ctx.Err() == nil {
			d.Logger.Error("claim deliveries", "err", err)
		}
		return false
	}
	d.inflight.Add(int64(len(ds)))
	for _, dl := range ds {
		st := d.dests[dl.Destination]
		if st == nil {
			d.finish(ctx, dl, &veil.Attempt{Status: veil.DeliveryDead, Detail: "destination no longer configured"})
			d.inflight.Add(-1)
			continue
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() {
				d.inflight.Add(-1)
				d.Notify() // room for more: claim again
			}()
			select {
			case st.sem <- struct{}{}:
			case <-ctx.Done():
				return // still 'sending': requeued at the next start
			}
			defer func() { <-st.sem }()
			st.waitBreaker(ctx, d.Now)
			if ctx.Err() != nil {
				return
			}
			a := d.attempt(ctx, st, dl)
			if ctx.Err() != nil && a.Status != veil.DeliveryDelivered {
				return // cut short by Stop: still 'sending', requeued at the next start
			}
			d.finish(ctx, dl, a)
		}()
	}
	return int64(len(ds)) == batch
}

func (d *Deliverer) finish(ctx context.Context, dl *veil.Delivery, a *veil.Attempt) {
	outcome := map[string]string{veil.DeliveryDelivered: "delivered", veil.DeliveryPending: "retry", veil.DeliveryDead: "dead"}[a.Status]
	deliveriesTotal.WithLabelValues(dl.Destination, outcome).Inc()
	if err := d.store.FinishDelivery(context.WithoutCancel(ctx), dl, a); err != nil {
		d.Logger.Error("record delivery attempt", "delivery", dl.ID, "err", err)
	}
	switch a.Status {
	case veil.DeliveryDead:
		d.Logger.Warn("delivery dead", "delivery", dl.ID, "destination", dl.Destination, "attempt", dl.Attempts+1,
			"http_status", a.HTTPStatus, "detail", a.Detail)
	case veil.DeliveryPending:
		d.Logger.Info("delivery will be retried", "delivery", dl.ID, "destination", dl.Destination, "attempt", dl.Attempts+1,
			"http_status", a.HTTPStatus, "detail", a.Detail, "next_attempt_in", a.NextAt.Sub(d.Now()).Round(time.Millisecond).String())
	}
}

// waitBreaker blocks while the destination is paused.
func (st *destState) waitBreaker(ctx context.Context, now func() time.Time) {
	st.mu.Lock()
	until := st.pausedUntil
	st.mu.Unlock()
	if wait := until.Sub(now()); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}

// record updates the breaker after an attempt.
func (d *Deliverer) record(st *destState, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if ok {
		st.failures = 0
		return
	}
	if st.failures++; st.failures >= d.BreakerThreshold {
		st.pausedUntil = d.Now().Add(d.BreakerPause)
		st.failures = 0
		d.Logger.Warn("destination paused after consecutive failures", "destination", st.cfg.Name, "pause", d.BreakerPause)
	}
}

// attempt sends one delivery and classifies the outcome.
func (d *Deliverer) attempt(ctx context.Context, st *destState, dl *veil.Delivery) *veil.Attempt {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(st.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.cfg.URL, bytes.NewReader(dl.Body))
	if err != nil {
		return &veil.Attempt{Status: veil.DeliveryDead, Detail: "bad destination url"}
	}
	now := d.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "veil")
	req.Header.Set("Veil-Event-Id", dl.EventID)
	if len(st.keys) > 0 {
		ats.StandardSign(req.Header, st.keys, dl.ID, now, dl.Body)
	} else {
		req.Header.Set("webhook-id", dl.ID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	}
	start := time.Now()
	resp, err := st.client.Do(req)
	latency := time.Since(start)
	deliverySeconds.WithLabelValues(st.cfg.Name).Observe(latency.Seconds())
	attempt := dl.Attempts + 1
	retry := func(detail string, after time.Duration) *veil.Attempt {
		d.record(st, false)
		if attempt >= st.cfg.Retry.MaxAttempts {
			return &veil.Attempt{Status: veil.DeliveryDead, HTTPStatus: statusOf(resp), Latency: latency,
				Detail: detail + "; gave up after " + strconv.Itoa(attempt) + " attempts"}
		}
		wait := backoff(st.cfg.Retry.Backoff, attempt)
		if after > wait {
			wait = after
		}
		return &veil.Attempt{Status: veil.DeliveryPending, HTTPStatus: statusOf(resp), Latency: latency,
			NextAt: now.Add(wait), Detail: detail}
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrForbiddenAddress):
			return &veil.Attempt{Status: veil.DeliveryDead, Detail: "ssrf: " + ErrForbiddenAddress.Error()}
		case errors.Is(err, context.DeadlineExceeded):
			return retry("timeout", 0)
		default:
			return retry("connection error", 0)
		}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		d.record(st, true)
		return &veil.Attempt{Status: veil.DeliveryDelivered, HTTPStatus: code, Latency: latency}
	case code == 408 || code == 429 || code >= 500:
		return retry("http "+strconv.Itoa(code), retryAfter(resp.Header.Get("Retry-After"), now))
	case code >= 300 && code < 400:
		return &veil.Attempt{Status: veil.DeliveryDead, HTTPStatus: code, Latency: latency, Detail: "redirect not followed"}
	default:
		return &veil.Attempt{Status: veil.DeliveryDead, HTTPStatus: code, Latency: latency, Detail: "http " + strconv.Itoa(code) + " is not retried"}
	}
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// backoff is the schedule's wait before the next attempt (the last entry
// repeats), with ±20% jitter so retries of many deliveries spread out.
func backoff(schedule []veil.Duration, attempt int) time.Duration {
	i := min(attempt-1, len(schedule)-1)
	base := time.Duration(schedule[i])
	return base + time.Duration((rand.Float64()*0.4-0.2)*float64(base))
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); 0 when
// absent or unparseable. It is capped at one day.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, 24*time.Hour))
}
