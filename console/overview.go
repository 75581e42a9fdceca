package console

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
)

// overviewData is the Overview: the queue and the review backlog; per
// destination its breaker, queue, success rate, latency and last error
// (live, with 24 hours of 10-minute charts from this process); and, over
// a chosen range, inbound per source and final deliveries from the audit
// log (SVG bar charts, counted at most once a minute per range), so they
// survive restarts and show every replica.
type overviewData struct {
	Queue   int64
	Oldest  time.Time
	Held    int64
	OldHeld time.Time
	Health  []healthView
	Warning string
	Passes  []pass
	// Destinations are the configured ones with their pauses (live).
	Destinations []gateway.Destination
	// Counted over Range from the audit log:
	Range   string
	Ranges  []string
	Since   time.Time
	Drawn   time.Time
	Charts  []chart
	Inbound []inboundRow
	Errors  map[string]veil.AuditEntry
}

type inboundRow struct {
	Source               string
	Received, Reconciled int64
	Rejected             []reasonCount
}

type reasonCount struct {
	Reason string
	Count  int64
}

type chart struct {
	Destination                        string
	Delivered, Dead, Filtered, Blocked int64
	Bars                               []bar
	Max                                int64
	Width                              int // of a bar, in SVG units
	First, Last                        string
}

// bar is one step's column: its segments stacked from the bottom.
type bar struct {
	X                            int
	Label                        string
	DeliveredY, DeliveredH       int
	DeadY, DeadH, OtherY, OtherH int
	Delivered, Dead, Other       int64
}

// chartHeight is the bars' height in SVG units, chartWidth their width.
const chartHeight, chartWidth = 80, 288

// ranges are the Overview's choices: how far back, in steps of what.
var ranges = map[string]struct {
	span, step time.Duration
	label      string
}{"1h": {time.Hour, 10 * time.Minute, "15:04"}, "24h": {24 * time.Hour, time.Hour, "15:00"}, "7d": {7 * 24 * time.Hour, 24 * time.Hour, "Mon 02"}}

var rangeNames = []string{"1h", "24h", "7d"}

// overviewTTL is how long a drawn range is served before it is counted
// again (in the background); past overviewStale it is counted before the
// page is answered, never served that old.
const overviewTTL, overviewStale = time.Minute, 5 * time.Minute

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	rng := r.URL.Query().Get("range")
	if _, ok := ranges[rng]; !ok {
		rng = "24h"
	}
	c.render(w, http.StatusOK, "overview", c.base(r, s, "Overview", "overview", c.cachedOverview(r.Context(), rng)))
}

type drawn struct {
	d    overviewData
	at   time.Time
	busy bool
}

// cachedOverview returns the Overview for a range: its counts drawn at
// most once per overviewTTL (a stale one is served while a fresh one is
// counted in the background, up to overviewStale), the live figures read
// now.
func (c *Console) cachedOverview(ctx context.Context, rng string) overviewData {
	c.ovMu.Lock()
	if c.ov == nil {
		c.ov = map[string]*drawn{}
	}
	cur := c.ov[rng]
	now := c.Now()
	switch {
	case cur == nil || now.Sub(cur.at) > overviewStale:
		c.ovMu.Unlock()
		d := c.drawOverview(ctx, rng)
		c.ovMu.Lock()
		cur = &drawn{d: d, at: c.Now()}
		c.ov[rng] = cur
	case now.Sub(cur.at) > overviewTTL && !cur.busy:
		cur.busy = true
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			ctx, cancel := context.WithTimeout(c.life, time.Minute)
			defer cancel()
			d := c.drawOverview(ctx, rng)
			c.ovMu.Lock()
			c.ov[rng] = &drawn{d: d, at: c.Now()}
			c.ovMu.Unlock()
		}()
	}
	d := cur.d
	c.ovMu.Unlock()
	c.liveOverview(ctx, &d)
	return d
}

// liveOverview fills in the figures that are cheap and must be fresh: the
// queue, the review backlog, the destinations' health and pauses, the
// reconciliation watermarks.
func (c *Console) liveOverview(ctx context.Context, d *overviewData) {
	qs, err := c.Counts.QueueStats(ctx)
	if err != nil {
		d.Warning = "The queue could not be read."
	}
	d.Queue, d.Oldest = 0, time.Time{}
	byDest := map[string]veil.QueueStat{}
	for _, q := range qs {
		byDest[q.Destination] = q
		d.Queue += q.Waiting
		if d.Oldest.IsZero() || q.Oldest.Before(d.Oldest) {
			d.Oldest = q.Oldest
		}
	}
	if c.Review != nil {
		if held, n, err := c.Review.Queue(ctx, 1, false); err == nil {
			d.Held = n
			if len(held) > 0 {
				d.OldHeld = held[0].CreatedAt
			}
		}
	}
	d.Health = nil
	if c.Health != nil {
		for _, h := range c.Health.Health() {
			v := newHealthView(h, byDest[h.Destination], c.Now())
			if e, ok := d.Errors[h.Destination]; ok {
				v.LastError, v.LastErrorAt = latencyPrefix.ReplaceAllString(e.Detail, ""), e.Time
			}
			d.Health = append(d.Health, v)
		}
	}
	var warn string
	if d.Destinations, warn = c.destinationStates(ctx); warn != "" {
		d.Warning = warn
	}
	paused := map[string]bool{}
	for _, x := range d.Destinations {
		paused[x.Name] = x.Paused != nil
	}
	for i := range d.Health {
		d.Health[i].Paused = paused[d.Health[i].Destination]
	}
	d.Passes = nil
	for _, src := range c.Reconciled {
		p := pass{Source: src}
		if st, err := c.Counts.ReconcileState(ctx, src); err != nil {
			d.Warning = "The reconciliation state could not be read."
		} else if st.Known {
			p.Watermark, p.Lag = st.Watermark, c.Now().Sub(st.Watermark).Round(time.Second).String()
		}
		d.Passes = append(d.Passes, p)
	}
}

// latencyPrefix is the attempt's latency an audit row's detail starts with.
var latencyPrefix = regexp.MustCompile(`^latency_ms=\d+ `)

// pass is a source's last good reconciliation pass.
type pass struct {
	Source, Lag string
	Watermark   time.Time
}

// drawOverview counts a range of the audit log: final deliveries per
// destination and step, inbound per source, each destination's last error.
func (c *Console) drawOverview(ctx context.Context, rng string) overviewData {
	r := ranges[rng]
	d := overviewData{Range: rng, Ranges: rangeNames}
	steps := int(r.span / r.step)
	end := c.Now().UTC().Truncate(r.step)
	if r.step == 24*time.Hour {
		y, m, day := c.Now().UTC().Date()
		end = time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
	}
	d.Since = end.Add(-time.Duration(steps-1) * r.step)
	counts, err := c.Counts.DeliveryCounts(ctx, d.Since, r.step)
	if err != nil {
		c.Logger.Error("console overview", "err", err)
		d.Warning = "The delivery counts could not be read."
	}
	if in, err := c.Counts.InboundCounts(ctx, d.Since); err != nil {
		c.Logger.Error("console overview", "err", err)
		d.Warning = "The inbound counts could not be read."
	} else {
		d.Inbound = inboundRows(in)
	}
	if d.Errors, err = c.Counts.LastErrors(ctx, d.Since); err != nil {
		c.Logger.Error("console overview", "err", err)
		d.Warning = "The destinations' last errors could not be read."
	}
	byDest := map[string]map[time.Time]map[string]int64{}
	for _, k := range counts {
		if byDest[k.Destination] == nil {
			byDest[k.Destination] = map[time.Time]map[string]int64{}
		}
		if byDest[k.Destination][k.Hour] == nil {
			byDest[k.Destination][k.Hour] = map[string]int64{}
		}
		byDest[k.Destination][k.Hour][k.Action] += k.Count
	}
	var names []string
	for n := range byDest {
		names = append(names, n)
	}
	slices.Sort(names)
	width := chartWidth / steps
	for _, n := range names {
		ch := chart{Destination: n, Width: max(1, width-2)}
		for i := range steps {
			at := d.Since.Add(time.Duration(i) * r.step)
			m := byDest[n][at]
			b := bar{X: i * width, Label: at.Format(r.label), Delivered: m[veil.ActionDelivered], Dead: m[veil.ActionDead],
				Other: m[veil.ActionFiltered] + m[veil.ActionBlockedLeak]}
			ch.Delivered += b.Delivered
			ch.Dead += b.Dead
			ch.Filtered += m[veil.ActionFiltered]
			ch.Blocked += m[veil.ActionBlockedLeak]
			ch.Max = max(ch.Max, b.Delivered+b.Dead+b.Other)
			ch.Bars = append(ch.Bars, b)
		}
		for i := range ch.Bars {
			b := &ch.Bars[i]
			scale := func(v int64) int {
				if ch.Max == 0 {
					return 0
				}
				return int(v * chartHeight / ch.Max)
			}
			b.DeliveredH, b.DeadH, b.OtherH = scale(b.Delivered), scale(b.Dead), scale(b.Other)
			b.DeliveredY = chartHeight - b.DeliveredH
			b.DeadY = b.DeliveredY - b.DeadH
			b.OtherY = b.DeadY - b.OtherH
		}
		ch.First, ch.Last = ch.Bars[0].Label, ch.Bars[len(ch.Bars)-1].Label
		d.Charts = append(d.Charts, ch)
	}
	d.Drawn = c.Now()
	return d
}

func inboundRows(in []veil.InboundCount) []inboundRow {
	var out []inboundRow
	at := map[string]int{}
	for _, c := range in {
		i, ok := at[c.Source]
		if !ok {
			i = len(out)
			at[c.Source] = i
			out = append(out, inboundRow{Source: c.Source})
		}
		switch c.Action {
		case veil.ActionReceived:
			out[i].Received += c.Count
		case veil.ActionReconciled:
			out[i].Reconciled += c.Count
		default:
			out[i].Rejected = append(out[i].Rejected, reasonCount{c.Reason, c.Count})
		}
	}
	slices.SortFunc(out, func(a, b inboundRow) int { return strings.Compare(a.Source, b.Source) })
	return out
}
