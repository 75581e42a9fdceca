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
		Name: "veil_deliveries_total", Help: "Delivery outcomes by destination: delivered, retry, dead (dead includes deliveries given up by retention or erasure).",
	}, []string{"destination", "outcome"})
	deliverySeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "veil_delivery_seconds", Help: "Time from request to answer of a delivery attempt.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"destination"})
	queueDepth = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "veil_delivery_queue_depth", Help: "Deliveries waiting: pending or being sent.",
	})
	oldestPending = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "veil_delivery_oldest_pending_seconds", Help: "Age of the oldest delivery still waiting. Alert before it nears retention.payload: at that age its payload expires and it is given up.",
	})
	concurrencyLimit = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "veil_delivery_concurrency", Help: "Attempts a destination may have in flight now (adapts between concurrency and max_concurrency).",
	}, []string{"destination"})
	staleClaims = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "veil_delivery_stale_claims_total", Help: "Attempt outcomes not recorded because the delivery's claim was taken over meanwhile (its lease ran out).",
	}, []string{"destination"})
	breakerOpen = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "veil_delivery_breaker_open", Help: "1 while a destination is paused after consecutive failures.",
	}, []string{"destination"})
)

// CountDead counts deliveries given up outside an attempt (retention,
// erasure), per destination, as dead in veil_deliveries_total, so the
// metric matches the dead rows of the audit log.
func CountDead(byDestination map[string]int64) {
	for d, n := range byDestination {
		deliveriesTotal.WithLabelValues(d, "dead").Add(float64(n))
	}
}

// Store is the durable queue the workers drive; audit.Store implements it.
type Store interface {
	// ClaimDeliveries leases due deliveries until now+lease, at most
	// limits[destination] per destination.
	ClaimDeliveries(ctx context.Context, now time.Time, limits map[string]int, lease time.Duration) ([]*veil.Delivery, error)
	// FinishDelivery records an attempt under the claim it was made under;
	// veil.ErrStaleClaim when the delivery is no longer held under it.
	FinishDelivery(ctx context.Context, d *veil.Delivery, a *veil.Attempt) error
	// ReleaseDelivery hands a claimed delivery back to the queue, due now,
	// when it will not be attempted under this claim.
	ReleaseDelivery(ctx context.Context, d *veil.Delivery) error
	QueueStats(ctx context.Context) ([]veil.QueueStat, error)
}

// Deliverer sends claimed deliveries to their destinations: signed, with a
// per-destination concurrency limit and timeout, retried on the
// destination's schedule, and refused at dial time when the address is
// private. Create it with New, then Start it.
type Deliverer struct {
	// Logger receives one line per failure, never a payload value; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Interval is how often the queue is polled when nothing wakes it; 0 means 500ms.
	Interval time.Duration
	// BreakerThreshold consecutive failures pause a destination, first for
	// BreakerMinPause, then twice as long after each failed probe up to
	// BreakerPause; 0 means 5, 1s and 10s. A longer cap idles longer after
	// a destination recovers; a probe per pause costs one request.
	BreakerThreshold int
	BreakerMinPause  time.Duration
	BreakerPause     time.Duration
	// Lease is how long a claim holds a delivery; 0 means long enough for
	// four attempts of the slowest destination, a breaker pause and a
	// margin. An attempt that could not start early enough to end inside
	// its lease goes back to the queue instead.
	Lease time.Duration
	// PayloadRetention, when set, is retention.payload: a warning is logged
	// when the oldest waiting delivery is half that old.
	PayloadRetention time.Duration
	// Lookup and Dial, when set, replace name resolution and dialling in
	// every destination's SSRF guard (tests).
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)

	store  Store
	dests  map[string]*destState
	wake   chan struct{}
	lease  time.Duration
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// flying holds the deliveries this process is working on, by id, with
	// the claim it holds each under now (guarded by mu): a claim of one
	// already in flight (its lease ran out while it waited) does not start
	// a second attempt, it moves the one in flight to the new claim.
	flying map[string]string
}

// take records that dl is being worked on under its claim, and reports
// false when it already was (then only the claim moves).
func (d *Deliverer) take(dl *veil.Delivery) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, busy := d.flying[dl.ID]
	d.flying[dl.ID] = dl.Claim
	return !busy
}

// done forgets dl and returns the claim it is held under now.
func (d *Deliverer) done(dl *veil.Delivery) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.flying[dl.ID]
	delete(d.flying, dl.ID)
	return c
}

type destState struct {
	cfg      *veil.Destination
	client   *http.Client
	keys     [][]byte // decoded signing secrets (new first), or none
	limit    *limiter
	breaker  *breaker
	inflight atomic.Int64 // claimed and not finished
	maxClaim int64        // bound on inflight: 4 per unit of max concurrency
	health   health
}

// New returns a deliverer for the destinations dests.
func New(store Store, dests []veil.Destination) *Deliverer {
	d := &Deliverer{store: store, dests: map[string]*destState{}, wake: make(chan struct{}, 1), flying: map[string]string{}}
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
	if d.BreakerMinPause <= 0 {
		d.BreakerMinPause = time.Second
	}
	if d.BreakerPause <= 0 {
		d.BreakerPause = 10 * time.Second
	}
	for _, st := range d.dests {
		maxConc := max(st.cfg.Concurrency, st.cfg.MaxConcurrency)
		st.maxClaim = 4 * int64(maxConc)
		// A claimed delivery may wait behind 4 per slot, each up to the
		// timeout, and a breaker pause: its lease outlasts that.
		d.lease = max(d.lease, 5*time.Duration(st.cfg.Timeout)+d.BreakerPause+30*time.Second)
		if d.Lease > 0 {
			d.lease = max(d.Lease, 2*time.Duration(st.cfg.Timeout))
		}
		guard := &Guard{AllowPrivate: st.cfg.AllowPrivateNetwork, Lookup: d.Lookup, Dial: d.Dial}
		st.client = &http.Client{
			Transport: &http.Transport{DialContext: guard.DialContext, MaxIdleConnsPerHost: maxConc,
				ForceAttemptHTTP2: true, Proxy: nil, TLSHandshakeTimeout: 10 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		st.limit = newLimiter(st.cfg.Concurrency, maxConc)
		st.breaker = newBreaker(d.BreakerThreshold, d.BreakerMinPause, d.BreakerPause, d.Now)
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
// claimed but did not finish go back to the queue when their lease ends
// (or at the next start).
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

// Breaker returns a destination's breaker state: closed, open or probing.
func (d *Deliverer) Breaker(destination string) string {
	if st := d.dests[destination]; st != nil && st.breaker != nil {
		return st.breaker.state()
	}
	return ""
}

func (d *Deliverer) run(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(d.Interval)
	defer t.Stop()
	var lastStats, lastWarn time.Time
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
			d.stats(ctx, &lastWarn)
		}
	}
}

// stats updates the queue gauges and warns when the oldest waiting
// delivery nears the age at which retention gives it up.
// statsTimeout bounds the queue figures' read: a store that stops
// answering costs the dispatcher a missed update, not its loop.
const statsTimeout = 10 * time.Second

func (d *Deliverer) stats(ctx context.Context, lastWarn *time.Time) {
	for name, st := range d.dests {
		concurrencyLimit.WithLabelValues(name).Set(float64(st.limit.current()))
		open := 0.0
		if st.breaker.state() != "closed" {
			open = 1
		}
		breakerOpen.WithLabelValues(name).Set(open)
	}
	sctx, cancel := context.WithTimeout(ctx, statsTimeout)
	qs, err := d.store.QueueStats(sctx)
	cancel()
	if err != nil {
		return
	}
	now := d.Now()
	var n int64
	var oldest time.Time
	byDest := map[string]veil.QueueStat{}
	for _, q := range qs {
		byDest[q.Destination] = q
		n += q.Waiting
		if oldest.IsZero() || q.Oldest.Before(oldest) {
			oldest = q.Oldest
		}
	}
	for name, st := range d.dests {
		st.health.queue(now, byDest[name].Waiting)
	}
	queueDepth.Set(float64(n))
	age := time.Duration(0)
	if !oldest.IsZero() && oldest.Before(now) {
		age = now.Sub(oldest)
	}
	oldestPending.Set(age.Seconds())
	if d.PayloadRetention > 0 && age > d.PayloadRetention/2 && time.Since(*lastWarn) > time.Minute {
		*lastWarn = time.Now()
		d.Logger.Warn("deliveries are falling behind: the oldest waiting one is over half the payload retention old, "+
			"and is given up (dead, expired) when it reaches it", "oldest_age", age.Round(time.Second).String(),
			"retention_payload", d.PayloadRetention.String(), "waiting", n)
	}
}

// dispatch claims due deliveries and starts an attempt for each; it
// reports whether some destination's claim came back full (so there may be
// more).
func (d *Deliverer) dispatch(ctx context.Context) bool {
	// Claim no more than each destination can work on soon: one that is
	// down must not pull its whole backlog into memory as 'sending', nor
	// take the claims of the others.
	limits := map[string]int{}
	for name, st := range d.dests {
		if !st.breaker.claimable() {
			continue // paused: nothing waits out the pause under a claim
		}
		if room := min(256, st.maxClaim-st.inflight.Load()); room > 0 {
			limits[name] = int(room)
		}
	}
	if len(limits) == 0 {
		return false
	}
	ds, err := d.store.ClaimDeliveries(ctx, d.Now(), limits, d.lease)
	if err != nil {
		if ctx.Err() == nil {
			d.Logger.Error("claim deliveries", "err", err)
		}
		return false
	}
	claimed := map[string]int{}
	now := d.Now()
	for _, dl := range ds {
		claimed[dl.Destination]++
		if !d.take(dl) {
			continue // already in flight here: it carries on under the new claim
		}
		st := d.dests[dl.Destination]
		switch {
		case st == nil:
			d.finish(ctx, dl, &veil.Attempt{Status: veil.DeliveryDead, Detail: "destination no longer configured"})
			continue
		case dl.Body == nil:
			d.finish(ctx, dl, &veil.Attempt{Status: veil.DeliveryDead, Detail: dl.Detail})
			continue
		}
		st.inflight.Add(1)
		d.wg.Add(1)
		// The attempt must start early enough to end inside the lease, or
		// another claim could send it too: past that, it goes back.
		spare := d.lease - time.Duration(st.cfg.Timeout)
		startBy := now.Add(spare - min(leaseMargin, spare/2))
		go func() {
			defer d.wg.Done()
			defer func() {
				st.inflight.Add(-1)
				d.Notify() // room for more: claim again
			}()
			waitCtx, cancel := context.WithDeadline(ctx, startBy)
			defer cancel()
			if st.limit.acquire(waitCtx) != nil {
				d.giveBack(ctx, dl)
				return
			}
			probe, err := st.breaker.wait(waitCtx)
			if err != nil {
				st.limit.release(false, false)
				d.giveBack(ctx, dl)
				return
			}
			a := d.attempt(ctx, st, dl)
			ok := a.Status == veil.DeliveryDelivered
			st.health.attempt(d.Now(), ok, a.Latency)
			if st.breaker.record(probe, ok) {
				d.Logger.Warn("destination paused after failures; one attempt will probe it when the pause ends",
					"destination", st.cfg.Name)
			}
			st.limit.release(ok && a.Latency < time.Duration(st.cfg.Timeout)/4, !ok)
			if ctx.Err() != nil && !ok {
				return // cut short by Stop: the lease returns it to the queue
			}
			d.finish(ctx, dl, a)
		}()
	}
	for name, n := range claimed {
		if n == limits[name] {
			return true
		}
	}
	return false
}

// leaseMargin is what a claim's lease keeps beyond an attempt's timeout
// after the attempt starts: recording the outcome, a slow writer.
const leaseMargin = 15 * time.Second

// giveBack hands a delivery that will not be attempted under its claim
// back to the queue (stopping, or it waited too long for a slot): it is
// due again at once, and no second attempt of it can overlap this one.
func (d *Deliverer) giveBack(ctx context.Context, dl *veil.Delivery) {
	dl.Claim = d.done(dl)
	if ctx.Err() != nil {
		return // stopping: the lease returns it to the queue
	}
	if err := d.store.ReleaseDelivery(context.WithoutCancel(ctx), dl); err != nil {
		d.Logger.Warn("hand a delivery back to the queue; its lease will", "delivery", dl.ID, "err", err)
	}
}

// finish records an attempt's outcome under the claim the delivery is
// held by now. A failure to record it is retried with a capped backoff
// until it succeeds or the deliverer stops (then the lease returns the
// delivery to the queue): an outcome is never dropped. An outcome whose
// claim was taken over elsewhere is not recorded (ErrStaleClaim): the
// claim that holds the delivery records its own attempt.
func (d *Deliverer) finish(ctx context.Context, dl *veil.Delivery, a *veil.Attempt) {
	dl.Claim = d.done(dl)
	outcome := map[string]string{veil.DeliveryDelivered: "delivered", veil.DeliveryPending: "retry", veil.DeliveryDead: "dead"}[a.Status]
	wait := 50 * time.Millisecond
	for {
		err := d.store.FinishDelivery(context.WithoutCancel(ctx), dl, a)
		if errors.Is(err, veil.ErrStaleClaim) {
			staleClaims.WithLabelValues(dl.Destination).Inc()
			d.Logger.Warn("an attempt's claim was taken over (its lease ran out); its outcome is not recorded",
				"delivery", dl.ID, "destination", dl.Destination)
			return
		}
		if err == nil {
			break
		}
		d.Logger.Error("record delivery attempt; retrying", "delivery", dl.ID, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	deliveriesTotal.WithLabelValues(dl.Destination, outcome).Inc()
	switch a.Status {
	case veil.DeliveryDead:
		d.Logger.Warn("delivery dead", "delivery", dl.ID, "destination", dl.Destination, "attempt", dl.Attempts+1,
			"http_status", a.HTTPStatus, "detail", a.Detail)
	case veil.DeliveryPending:
		d.Logger.Info("delivery will be retried", "delivery", dl.ID, "destination", dl.Destination, "attempt", dl.Attempts+1,
			"http_status", a.HTTPStatus, "detail", a.Detail, "next_attempt_in", a.NextAt.Sub(d.Now()).Round(time.Millisecond).String())
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
