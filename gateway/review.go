package gateway

import (
	"context"

	"github.com/veilhq/veil"
)

// ReviewStore is what review decisions read and change; audit.Store
// implements it.
type ReviewStore interface {
	Delivery(ctx context.Context, id string) (*veil.Delivery, error)
	ReviewDecide(ctx context.Context, id string, approve bool, actor, reason string, rule veil.ReviewRule) (*veil.Delivery, error)
	PolicyChanger(ctx context.Context, pkg string) (string, error)
}

// Review decides held deliveries: a destination with review:
// {approvers: 2} sends one only once two different people approved it,
// neither of them the last to change its policy.
type Review struct {
	Store  ReviewStore
	Held   HeldStore
	Config *veil.Config
	// Notify, when set, is told that an approved delivery is due (wake the
	// deliverer).
	Notify func()
}

// Rule is what an approval of destination's held deliveries needs.
func (rv *Review) Rule(ctx context.Context, destination string) (veil.ReviewRule, error) {
	d := rv.Config.Destination(destination)
	if d == nil || d.Review.Approvers <= 1 {
		return veil.ReviewRule{Approvers: 1}, nil
	}
	barred, err := rv.Store.PolicyChanger(ctx, d.Policy)
	if err != nil {
		return veil.ReviewRule{}, err
	}
	return veil.ReviewRule{Approvers: d.Review.Approvers, Barred: barred}, nil
}

// Decide approves (sent once enough people have) or rejects (never sent)
// the held delivery id, audited with actor as the one who decided. A
// break-glass actor counts as one person like any other.
func (rv *Review) Decide(ctx context.Context, id string, approve bool, actor, reason string) (*veil.Delivery, error) {
	held, err := rv.Store.Delivery(ctx, id)
	if err != nil {
		return nil, err
	}
	rule, err := rv.Rule(ctx, held.Destination)
	if err != nil {
		return nil, err
	}
	d, err := rv.Store.ReviewDecide(ctx, id, approve, actor, reason, rule)
	if err != nil {
		return nil, err
	}
	if d.Status == veil.DeliveryPending && rv.Notify != nil {
		rv.Notify()
	}
	return d, nil
}

// HeldStore is what the review queue reads; audit.Store implements it.
type HeldStore interface {
	Held(ctx context.Context, limit int) ([]*veil.Delivery, int64, error)
	Delivery(ctx context.Context, id string) (*veil.Delivery, error)
	EventDeliveries(ctx context.Context, eventID string) ([]*veil.Delivery, error)
	Approvals(ctx context.Context, ids []string) (map[string][]veil.Approval, error)
}

// Held is a delivery waiting for review, with its minimised body (what the
// destination would receive: for reviewers only), the categories it would
// release, who approved it so far and how many must.
type Held struct {
	*veil.Delivery
	Approvals []veil.Approval
	Need      int
}

// Queue lists the held deliveries, oldest first, at most limit, and how
// many wait in all; bodies says whether to read (decrypt) their bodies.
func (rv *Review) Queue(ctx context.Context, limit int, bodies bool) ([]Held, int64, error) {
	ds, n, err := rv.Held.Held(ctx, limit)
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	approvals, err := rv.Held.Approvals(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Held, len(ds))
	for i, d := range ds {
		out[i] = Held{Delivery: d, Approvals: approvals[d.ID], Need: rv.need(d.Destination)}
		if bodies {
			if out[i].Delivery, err = rv.withBody(ctx, d); err != nil {
				return nil, 0, err
			}
		}
	}
	return out, n, nil
}

// One returns the held delivery id with its body, its approvals and how
// many must approve; ENOTFOUND when no delivery of that id waits for
// review (decided, expired or erased).
func (rv *Review) One(ctx context.Context, id string) (Held, error) {
	d, err := rv.Held.Delivery(ctx, id)
	if err == nil && d.Status != veil.DeliveryHeld {
		err = veil.Errorf(veil.ENOTFOUND, "That delivery is not waiting for review (decided, expired or erased).")
	}
	if err == nil {
		d, err = rv.withBody(ctx, d)
	}
	if err != nil {
		return Held{}, err
	}
	approvals, err := rv.Held.Approvals(ctx, []string{id})
	if err != nil {
		return Held{}, err
	}
	return Held{Delivery: d, Approvals: approvals[id], Need: rv.need(d.Destination)}, nil
}

// need is how many people must approve destination's held deliveries.
func (rv *Review) need(destination string) int {
	if dest := rv.Config.Destination(destination); dest != nil {
		return max(dest.Review.Approvers, 1)
	}
	return 1
}

// withBody returns d with its body and categories, read with its event's
// deliveries (the list of held deliveries has neither).
func (rv *Review) withBody(ctx context.Context, d *veil.Delivery) (*veil.Delivery, error) {
	full, err := rv.Held.EventDeliveries(ctx, d.EventID)
	if err != nil {
		return nil, err
	}
	for _, f := range full {
		if f.ID == d.ID {
			with := *d
			with.Body, with.Categories = f.Body, f.Categories
			return &with, nil
		}
	}
	return nil, veil.Errorf(veil.ENOTFOUND, "No such delivery.")
}
