package gateway

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/policies"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/redact"
)

var (
	decisions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "veil_decisions_total", Help: "Policy decisions by destination and outcome (pending, filtered, blocked, dead).",
	}, []string{"destination", "outcome"})
	policyTimeouts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "veil_policy_timeouts_total", Help: "Decisions that ran past policy_timeout (the delivery is blocked), by destination.",
	}, []string{"destination"})
)

// PolicySet gives the running policy set; policy.Engine implements it.
type PolicySet interface {
	Current() *policy.Set
}

var _ PolicySet = (*policy.Engine)(nil)

// Target is one destination as the fan-out sees it: its config and its
// pseudonym key.
type Target struct {
	*veil.Destination
	Key []byte // redact.DestinationKey(master, name)
}

// NewTargets returns the destinations of cfg with their pseudonym keys.
func NewTargets(cfg *veil.Config, pseudonymKey []byte) []Target {
	out := make([]Target, len(cfg.Destinations))
	for i := range cfg.Destinations {
		d := &cfg.Destinations[i]
		out[i] = Target{Destination: d, Key: redact.DestinationKey(pseudonymKey, d.Name)}
	}
	return out
}

// Prepared is one event made ready for its destinations' decisions: the
// payload parsed once, its normal form, and the vendor's classifier. The
// normal form is parsed for projection only when a policy of format
// "event" needs it.
type Prepared struct {
	Event    *veil.Event
	Payload  *redact.Doc
	Normal   *veil.NormalEvent
	Classify redact.Classifier // the vendor's categories of payload paths

	normalDoc *redact.Doc
	normalErr error
}

// NewPrepared prepares an event whose payload is parsed as doc.
func NewPrepared(e *veil.Event, doc *redact.Doc, sch ats.Scheme) *Prepared {
	return &Prepared{Event: e, Payload: doc, Normal: sch.Normalize(e.EventType, doc), Classify: sch.Classifier()}
}

// NormalDoc returns the normal form parsed for projection, once.
func (p *Prepared) NormalDoc() (*redact.Doc, error) {
	if p.normalDoc == nil && p.normalErr == nil {
		// AppendJSON writes valid JSON with unique keys, shallow: no need
		// to validate it. The value count only sizes the index.
		p.normalDoc, p.normalErr = redact.ParseValidated(p.Normal.AppendJSON(make([]byte, 0, 2048)), normalValues)
	}
	return p.normalDoc, p.normalErr
}

// normalValues is about the number of values of a normal form.
const normalValues = 96

// Release hands the parsed documents back for reuse.
func (p *Prepared) Release() {
	if p.normalDoc != nil {
		p.normalDoc.Release()
		p.normalDoc = nil
	}
	if p.Payload != nil {
		p.Payload.Release()
		p.Payload = nil
	}
}

// Decide asks t's policy about the prepared event (in is it converted once
// for the set) and returns the delivery it calls for: filtered, blocked by
// the leak guard, pending with its outbound body, or dead when the policy
// fails (blocked when it runs past its time or size limit). A policy of format "event" projects the normal form, and the leak
// guard looks for the payload's dropped personal values in what it sends;
// one of format "vendor" projects the payload. A policy error's text is not
// kept: it may quote a payload value.
func Decide(ctx context.Context, set *policy.Set, in *policy.Input, ev *Prepared, t Target) *veil.Delivery {
	d := &veil.Delivery{ID: veil.NewID("dlv_"), Destination: t.Name}
	dec, err := set.Decide(ctx, t.Policy, in, t.Name, t.Processor)
	var res *redact.Result
	if err == nil && dec.Allow {
		res, err = Project(ev, dec, redact.SaltedKey(t.Key, ev.Event.Salt))
	}
	switch {
	case errors.Is(err, policy.ErrTimeout):
		d.Status, d.Detail = veil.DeliveryBlocked, veil.DetailPolicyTimeout // fail closed
		policyTimeouts.WithLabelValues(t.Name).Inc()
	case errors.Is(err, policy.ErrTooLarge):
		d.Status, d.Detail = veil.DeliveryBlocked, veil.DetailPolicyTooLarge
	case errors.Is(err, policy.ErrNoPackage):
		d.Status, d.Detail = veil.DeliveryDead, "policy_error: no package "+t.Policy
	case err != nil:
		d.Status, d.Detail = veil.DeliveryDead, "policy_error: evaluation failed in "+t.Policy
	case !dec.Allow:
		d.Status = veil.DeliveryFiltered
	case res.LeakPath != "":
		d.Status, d.Detail = veil.DeliveryBlocked, res.LeakPath
		if res.LeakIn != "" {
			d.Detail += " found in " + res.LeakIn
		}
	case t.Review.Enabled:
		d.Status, d.Body = veil.DeliveryHeld, res.Body // a person approves it first
	default:
		d.Status, d.Body = veil.DeliveryPending, res.Body
	}
	if res != nil {
		d.FieldsKept, d.FieldsDropped, d.Pseudonymized, d.Categories = res.Kept, res.Dropped, res.Pseudonymized, res.Categories
	}
	decisions.WithLabelValues(t.Name, d.Status).Inc()
	return d
}

// Project applies a decision to the document its format addresses: the
// normal form for format "event" (the leak guard looking for the payload's
// dropped personal values), the payload for format "vendor".
func Project(ev *Prepared, dec *veil.Decision, key []byte) (*redact.Result, error) {
	if dec.Format == veil.FormatEvent {
		doc, err := ev.NormalDoc()
		if err != nil {
			return nil, err
		}
		return doc.ApplyWith(dec, key, redact.Options{Classify: policies.EventClassifier, Expand: policies.PathsUnder,
			Hunt: ev.Payload, HuntClassify: ev.Classify})
	}
	return ev.Payload.ApplyWith(dec, key, redact.Options{Classify: ev.Classify})
}
