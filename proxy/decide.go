package proxy

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/redact"
)

var decisions = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "veil_decisions_total", Help: "Policy decisions by destination and outcome (pending, filtered, blocked, dead).",
}, []string{"destination", "outcome"})

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

// Decide asks t's policy about event e (in is e converted once for the
// set, doc its parsed payload) and returns the delivery it calls for:
// filtered, blocked by the leak guard, pending with its outbound body, or
// dead when the policy fails. A policy error's text is not kept: it may
// quote a payload value.
func Decide(ctx context.Context, set *policy.Set, in *policy.Input, doc *redact.Doc, t Target) *veil.Delivery {
	d := &veil.Delivery{ID: veil.NewID("dlv_"), Destination: t.Name}
	dec, err := set.Decide(ctx, t.Policy, in, t.Name, t.Processor)
	var res *redact.Result
	if err == nil && dec.Allow {
		res, err = doc.Apply(dec, t.Key)
	}
	switch {
	case errors.Is(err, policy.ErrNoPackage):
		d.Status, d.Detail = veil.DeliveryDead, "policy_error: no package "+t.Policy
	case err != nil:
		d.Status, d.Detail = veil.DeliveryDead, "policy_error: evaluation failed in "+t.Policy
	case !dec.Allow:
		d.Status = veil.DeliveryFiltered
	case res.LeakPath != "":
		d.Status, d.Detail = veil.DeliveryBlocked, res.LeakPath
	default:
		d.Status, d.Body = veil.DeliveryPending, res.Body
	}
	if res != nil {
		d.FieldsKept, d.FieldsDropped, d.Pseudonymized = res.Kept, res.Dropped, res.Pseudonymized
	}
	decisions.WithLabelValues(t.Name, d.Status).Inc()
	return d
}

// fanOut decides for every destination of e's source.
func (s *Server) fanOut(ctx context.Context, e *veil.Event, doc *redact.Doc) []*veil.Delivery {
	targets := s.targets[e.Source]
	if len(targets) == 0 || s.Policies == nil {
		return nil
	}
	set := s.Policies.Current()
	out := make([]*veil.Delivery, 0, len(targets))
	in, err := set.NewInput(e)
	for _, t := range targets {
		if err != nil {
			out = append(out, &veil.Delivery{ID: veil.NewID("dlv_"), Destination: t.Name,
				Status: veil.DeliveryDead, Detail: "policy_error: payload could not be converted"})
			continue
		}
		out = append(out, Decide(ctx, set, in, doc, t))
	}
	return out
}
