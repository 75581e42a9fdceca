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
		out[i] = Held{Delivery: d, Approvals: approvals[d.ID], Need: 1}
		if dest := rv.Config.Destination(d.Destination); dest != nil {
			out[i].Need = max(dest.Review.Approvers, 1)
		}
		if !bodies {
			continue
		}
		full, err := rv.Held.EventDeliveries(ctx, d.EventID)
		if err != nil {
			return nil, 0, err
		}
		for _, f := range full {
			if f.ID == d.ID {
				out[i].Body = f.Body
			}
		}
	}
	return out, n, nil
}
