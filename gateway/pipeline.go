package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/redact"
)

// IngestStore commits events with their deliveries; audit.Store
// implements it.
type IngestStore interface {
	// IngestEvent commits e durably with its deliveries and drift paths
	// and returns its id, or the first event's id and true for a duplicate.
	IngestEvent(ctx context.Context, e *veil.Event, deliveries []*veil.Delivery, drift veil.Drift) (id string, duplicate bool, err error)
	// SchemaPaths returns the paths seen so far per source NUL event type.
	SchemaPaths(ctx context.Context) (map[string]map[string]bool, error)
	// Resolve says which person an event's references name, whether she is
	// erased, and her pseudonyms' salt.
	Resolve(ctx context.Context, refs []string) (veil.SubjectState, error)
}

// HistoryStore is what replays, previews and draft impacts read of the
// stored events and deliveries, and how a replay is queued; audit.Store
// implements it.
type HistoryStore interface {
	Delivery(ctx context.Context, id string) (*veil.Delivery, error)
	Event(ctx context.Context, id string) (*veil.Event, error)
	ListEvents(ctx context.Context, q veil.EventQuery) ([]veil.EventSummary, error)
	ReplayDelivery(ctx context.Context, old, nd *veil.Delivery, actor string) error
}

// Upstream fetches a record from the ATS API for sources in upstream
// lookup mode (the store holds no payload for them).
type Upstream interface {
	Fetch(ctx context.Context, e *veil.Event) ([]byte, error)
}

// Pipeline is what every event goes through: verified by its source's
// scheme, put in the normal form, linked to its person, decided for each
// destination and committed with those decisions; and again, for a dead
// delivery, when it is replayed. Create it with NewPipeline, then set the
// optional fields.
type Pipeline struct {
	Config *veil.Config
	Store  IngestStore
	// Policies gives the running policy set; nil means no destination gets
	// anything (events are still stored).
	Policies PolicySet
	// History, when set, serves replays, previews and draft impacts.
	History HistoryStore
	// Upstream fetches records of sources in upstream lookup mode; nil
	// means every source's payload is in the store.
	Upstream Upstream
	// Notify, when set, is told when new deliveries are due.
	Notify func()

	targets  []Target
	bySource map[string][]Target
	schemes  map[string]ats.Scheme
	sources  map[string]*veil.Source
	drift    drift
}

// NewPipeline builds every source's scheme of cfg and reads the payload
// paths the store has seen (schema drift is reported against them).
// targets are the destinations with their pseudonym keys (NewTargets).
func NewPipeline(ctx context.Context, cfg *veil.Config, store IngestStore, targets []Target) (*Pipeline, error) {
	p := &Pipeline{Config: cfg, Store: store, targets: targets, bySource: map[string][]Target{},
		schemes: make(map[string]ats.Scheme, len(cfg.Sources)), sources: make(map[string]*veil.Source, len(cfg.Sources))}
	for _, t := range targets {
		for _, src := range t.Sources {
			p.bySource[src] = append(p.bySource[src], t)
		}
	}
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		sch, err := ats.New(src)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src.Name, err)
		}
		p.schemes[src.Name], p.sources[src.Name] = sch, src
	}
	seen, err := store.SchemaPaths(ctx)
	if err != nil {
		return nil, err
	}
	p.drift.seen = seen
	return p, nil
}

// Source returns the configured source of that name and its scheme, or
// nil and nil.
func (p *Pipeline) Source(name string) (*veil.Source, ats.Scheme) {
	return p.sources[name], p.schemes[name]
}

// Ingest takes a webhook whose signature source's scheme has verified and
// whose body is parsed as doc (Ingest releases it): the normal form, the
// person, a decision per destination, then one commit of the event with
// them. A duplicate returns the first event's id. Any failure is
// EUNAVAILABLE (the sender retries), with its cause joined for the log.
func (p *Pipeline) Ingest(ctx context.Context, source string, h http.Header, body []byte, doc *redact.Doc, now time.Time) (id string, duplicate bool, err error) {
	src, sch := p.Source(source)
	if sch == nil {
		doc.Release()
		return "", false, veil.Errorf(veil.EUNKNOWNSOURCE, "No source is configured under this name.")
	}
	e := describe(src, sch, h, body, now)
	if up, ok := sch.(ats.Upstreamer); ok && src.Lookup == "upstream" {
		e.Upstream = up.UpstreamIDs(body) // the store keeps these, not the payload
	}
	// Decide before the commit, so the event and what each destination may
	// see are stored together: a crash leaves neither half.
	ev := NewPrepared(e, doc, sch)
	defer ev.Release()
	e.App, _ = ev.Normal.AppState() // so reconciliation knows what webhooks brought
	erased, err := p.resolve(ctx, ev)
	if err != nil {
		return "", false, errors.Join(veil.Errorf(veil.EUNAVAILABLE, "The event could not be stored; retry later."), err)
	}
	deliveries := p.fanOut(ctx, ev, erased)
	drift := p.drift.observe(source, e.EventType, doc.Paths())
	id, duplicate, err = p.Store.IngestEvent(ctx, e, deliveries, drift)
	if err != nil {
		if veil.ErrorCode(err) != veil.EUNAVAILABLE {
			err = errors.Join(veil.Errorf(veil.EUNAVAILABLE, "The event could not be stored; retry later."), err)
		}
		return "", false, err
	}
	if !duplicate && len(deliveries) > 0 {
		p.notify()
	}
	return id, duplicate, nil
}

// IngestReconciled decides and commits an event reconciliation built for a
// change no webhook brought: its payload the ATS record (in the shape the
// vendor's normaliser reads), its normal form n (reconciled: true). It
// goes through the same policies, queue and audit log as a webhook. A
// duplicate is a change already reported, or brought by a webhook meanwhile.
func (p *Pipeline) IngestReconciled(ctx context.Context, e *veil.Event, n *veil.NormalEvent) (id string, duplicate bool, err error) {
	sch := p.schemes[e.Source]
	if sch == nil {
		return "", false, veil.Errorf(veil.ECONFLICT, "The source %s is not configured.", ats.Label(e.Source))
	}
	doc, err := redact.Parse(e.Payload)
	if err != nil {
		return "", false, fmt.Errorf("parse the listed record: %w", err)
	}
	ev := &Prepared{Event: e, Payload: doc, Normal: n, Classify: sch.Classifier()}
	defer ev.Release()
	erased, err := p.resolve(ctx, ev)
	if err != nil {
		return "", false, err
	}
	deliveries := p.fanOut(ctx, ev, erased)
	if e.Upstream != nil {
		e.Payload = nil // upstream lookup mode keeps the ids, not the record
	}
	id, duplicate, err = p.Store.IngestEvent(ctx, e, deliveries, veil.Drift{})
	if err == nil && !duplicate && len(deliveries) > 0 {
		p.notify()
	}
	return id, duplicate, err
}

func (p *Pipeline) notify() {
	if p.Notify != nil {
		p.Notify()
	}
}

// resolve links the event to the person its references name, as far as
// the store knows her now, and says whether she is erased: then no
// destination is decided for. Her pseudonyms take her salt.
func (p *Pipeline) resolve(ctx context.Context, ev *Prepared) (erased bool, err error) {
	e := ev.Event
	e.Refs = veil.SubjectRefs(e.Source, ev.Normal, e.Subject, p.Config.Subjects.LinkByEmail)
	if ev.Normal != nil {
		e.NormalType = ev.Normal.Type
		if id := ev.Normal.Job.ID; id != nil && *id != "" {
			e.Job = e.Source + ":job:" + *id
		}
	}
	st, err := p.Store.Resolve(ctx, e.Refs)
	if err != nil {
		return false, err
	}
	e.Person, e.Salt = st.Person, st.Salt
	return st.Erased, nil
}

// fanOut decides for every destination of e's source. An event of an
// erased person is decided for nobody: each delivery is filtered.
func (p *Pipeline) fanOut(ctx context.Context, ev *Prepared, erased bool) []*veil.Delivery {
	targets := p.bySource[ev.Event.Source]
	if erased {
		out := make([]*veil.Delivery, 0, len(targets))
		for _, t := range targets {
			out = append(out, &veil.Delivery{ID: veil.NewID("dlv_"), Destination: t.Name, Status: veil.DeliveryFiltered,
				Detail: veil.DetailErasedSubject})
		}
		return out
	}
	if len(targets) == 0 || p.Policies == nil {
		return nil
	}
	set := p.Policies.Current()
	out := make([]*veil.Delivery, 0, len(targets))
	in, err := set.NewInput(ev.Event, ev.Normal)
	for _, t := range targets {
		if err != nil {
			out = append(out, &veil.Delivery{ID: veil.NewID("dlv_"), Destination: t.Name,
				Status: veil.DeliveryDead, Detail: "policy_error: payload could not be converted"})
			continue
		}
		out = append(out, Decide(ctx, set, in, ev, t))
	}
	return out
}

// Prepare parses a stored (or fetched) event's payload and builds its
// normal form with its source's scheme, for a replay or a lookup.
func (p *Pipeline) Prepare(e *veil.Event) (*Prepared, error) {
	sch := p.schemes[e.Source]
	if sch == nil {
		return nil, veil.Errorf(veil.ECONFLICT, "The event's source %s is no longer configured.", ats.Label(e.Source))
	}
	doc, err := redact.Parse(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("parse stored payload: %w", err)
	}
	return NewPrepared(e, doc, sch), nil
}

// storedEvent reads a stored event with its payload (from the ATS in
// upstream lookup mode, when fetch is set), prepared for decisions.
func (p *Pipeline) storedEvent(ctx context.Context, id string, fetch bool) (*Prepared, error) {
	if p.History == nil {
		return nil, veil.Errorf(veil.EUNAVAILABLE, "Stored events are not served here.")
	}
	e, err := p.History.Event(ctx, id)
	if err == nil && e.Upstream != nil {
		if !fetch || p.Upstream == nil {
			return nil, veil.Errorf(veil.EGONE, "The event's payload is held by the ATS (upstream lookup mode).")
		}
		e.Payload, err = p.Upstream.Fetch(ctx, e)
	}
	if veil.ErrorCode(err) == veil.EGONE {
		return nil, veil.Errorf(veil.EGONE, "The event's payload is past retention or its subject was erased.")
	} else if err != nil {
		return nil, err
	}
	return p.Prepare(e)
}

// Replay re-decides a dead delivery with the running policy set and puts
// it back in the queue. It fails with ENOTFOUND, ECONFLICT (not dead) or
// EGONE (payload purged or subject erased). Audited with actor.
func (p *Pipeline) Replay(ctx context.Context, id, actor string) (*veil.Delivery, error) {
	if p.History == nil {
		return nil, veil.Errorf(veil.EUNAVAILABLE, "Replays are not served here.")
	}
	d, err := p.History.Delivery(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Status != veil.DeliveryDead {
		return nil, veil.Errorf(veil.ECONFLICT, "Only a dead delivery can be replayed; this one is %s.", d.Status)
	}
	ev, err := p.storedEvent(ctx, d.EventID, true)
	if veil.ErrorCode(err) == veil.EGONE {
		return nil, veil.Errorf(veil.EGONE, "The event's payload is past retention or its subject was erased; it cannot be replayed.")
	} else if err != nil {
		return nil, err
	}
	defer ev.Release()
	var target *Target
	for i := range p.targets {
		if p.targets[i].Name == d.Destination {
			target = &p.targets[i]
		}
	}
	if target == nil || p.Policies == nil {
		return nil, veil.Errorf(veil.ECONFLICT, "The destination is no longer configured.")
	}
	set := p.Policies.Current()
	in, err := set.NewInput(ev.Event, ev.Normal)
	if err != nil {
		return nil, err
	}
	nd := Decide(ctx, set, in, ev, *target)
	if err := p.History.ReplayDelivery(ctx, d, nd, actor); err != nil {
		return nil, err
	}
	d.Status, d.Attempts, d.Detail = nd.Status, 0, nd.Detail
	p.notify()
	return d, nil
}

// NewEvent builds the event Veil would commit for body arriving at src
// with headers h (event type, dedup key and subject as the vendor's scheme
// reads them) and prepares it for decisions, without verifying a
// signature: for previews and policy diffs of sample files.
func NewEvent(src *veil.Source, h http.Header, body []byte, now time.Time) (*Prepared, error) {
	sch, err := ats.New(src)
	if err != nil {
		return nil, err
	}
	doc, err := redact.Parse(body)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = http.Header{}
	}
	return NewPrepared(describe(src, sch, h, body, now), doc, sch), nil
}

// describe builds the event body arriving at src with headers h makes:
// its event type, subject and dedup keys as the vendor's scheme reads them.
func describe(src *veil.Source, sch ats.Scheme, h http.Header, body []byte, now time.Time) *veil.Event {
	in := sch.Describe(h, body)
	return &veil.Event{ID: veil.NewID("evt_"), Source: src.Name, Vendor: src.Vendor, EventType: in.EventType,
		Subject: in.Subject, DedupKey: in.DedupKey, BodyKey: in.BodyKey, ReceivedAt: now, Payload: body}
}
