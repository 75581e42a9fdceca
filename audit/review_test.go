package audit_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

func TestReview_Queue(t *testing.T) { eachDriver(t, testReviewQueue) }

// testReviewQueue: a held delivery is not claimed; approved it is, with a
// review_approved row naming who; rejected it never is and its body is
// gone; a second decision is a conflict; one held past its ttl expires
// unsent; erasing the subject ends a held one too.
func testReviewQueue(t *testing.T, d testDB) {
	var now atomic.Int64
	now.Store(time.Unix(1795688100, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	st := d.openAt(t, clock)
	ctx := context.Background()
	held := func(n int, subject string) string {
		e := event(n, subject)
		e.ReceivedAt = clock()
		dl := &veil.Delivery{Destination: "offers", Status: veil.DeliveryHeld, Body: []byte(`{"offer":"ps_1"}`),
			FieldsKept: []string{"offer.id"}, Categories: []string{"user.unique_id"}}
		if _, _, err := st.IngestEvent(ctx, e, []*veil.Delivery{dl}, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
		return dl.ID
	}
	a, b, c, e := held(1, "greenhouse:candidate:1"), held(2, "greenhouse:candidate:2"), held(3, "greenhouse:candidate:3"), held(4, "greenhouse:candidate:4")
	claimed, err := st.ClaimDeliveries(ctx, clock().Add(time.Hour), map[string]int{"offers": 10}, time.Minute)
	if err != nil || len(claimed) != 0 {
		t.Fatalf("held deliveries claimed: %d %v", len(claimed), err)
	}
	if _, err := st.ReviewDecide(ctx, a, true, "console:admin", "", veil.ReviewRule{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReviewDecide(ctx, b, false, "admin", "salary must not go to this tool", veil.ReviewRule{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReviewDecide(ctx, b, true, "admin", "", veil.ReviewRule{}); veil.ErrorCode(err) != veil.ECONFLICT {
		t.Fatalf("deciding twice: %v, want conflict", err)
	}
	if _, err := st.ReviewDecide(ctx, "dlv_nope", true, "admin", "", veil.ReviewRule{}); veil.ErrorCode(err) != veil.ENOTFOUND {
		t.Fatalf("unknown: %v", err)
	}
	claimed, err = st.ClaimDeliveries(ctx, clock().Add(time.Hour), map[string]int{"offers": 10}, time.Minute)
	if err != nil || len(claimed) != 1 || claimed[0].ID != a {
		t.Fatalf("after the decisions, claimed %d (%v), want only the approved one", len(claimed), err)
	}
	if n := d.queryInt(t, `SELECT count(*) FROM outbound_bodies WHERE delivery_id = ?`, b); n != 0 {
		t.Fatal("a rejected delivery keeps its body")
	}
	// c waits past its ttl; e's subject is erased.
	if _, err := st.Erase(ctx, "greenhouse:candidate:4", "admin"); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Hour))
	n, err := st.ExpireReviews(ctx, map[string]time.Duration{"offers": time.Hour})
	if err != nil || n["offers"] != 1 {
		t.Fatalf("expired %v %v, want 1", n, err)
	}
	for id, want := range map[string]string{a: veil.DeliverySending, b: veil.DeliveryRejected, c: veil.DeliveryRejected, e: veil.DeliveryDead} {
		got, err := st.Delivery(ctx, id)
		if err != nil || got.Status != want {
			t.Fatalf("%s: %v %v, want %s", id, got, err, want)
		}
	}
	for action, want := range map[string]int64{veil.ActionReviewHeld: 4, veil.ActionReviewApproved: 1, veil.ActionReviewRejected: 1, veil.ActionReviewExpired: 1} {
		if n := d.queryInt(t, `SELECT count(*) FROM audit WHERE action = ?`, action); n != want {
			t.Errorf("%d %s rows, want %d", n, action, want)
		}
	}
	if n := d.queryInt(t, `SELECT count(*) FROM audit WHERE action = 'review_approved' AND actor = 'console:admin'`); n != 1 {
		t.Error("the approval does not name who decided")
	}
	if n := d.queryInt(t, `SELECT count(*) FROM audit WHERE action = 'review_rejected' AND detail = 'salary must not go to this tool'`); n != 1 {
		t.Error("the rejection does not keep its reason")
	}
	if _, err := st.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestReview_FourEyes(t *testing.T) { eachDriver(t, testReviewFourEyes) }

// testReviewFourEyes: with two approvers a first approval keeps the
// delivery held (a row says 1 of 2) and nothing is claimable; the same
// person approving again is a conflict; whoever last changed the
// destination's policy (by the digests of its files, across loads and
// restarts) may not approve; a second person's approval releases it, and
// the approvals are gone with it. One rejection is enough.
func testReviewFourEyes(t *testing.T, d testDB) {
	st := d.openAt(t, nil)
	ctx := context.Background()
	held := func(n int) string {
		dl := &veil.Delivery{Destination: "hris", Status: veil.DeliveryHeld, Body: []byte(`{"name":"Four-Eyes-Canary"}`),
			FieldsKept: []string{"candidate.first_name"}, Categories: []string{"user.name"}}
		if _, _, err := st.IngestEvent(ctx, event(n, fmt.Sprint("greenhouse:candidate:", n)), []*veil.Delivery{dl}, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
		return dl.ID
	}
	a, b := held(1), held(2)
	// alice changes hris's policy; a restart loading the same files, by
	// veil, does not make veil its author.
	if err := st.PolicyLoaded(ctx, "user:alice@example.com", "d1", 3, map[string]string{"veil.destinations.hris": "h1", "veil.destinations.bi": "b1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PolicyLoaded(ctx, "veil", "d1", 3, map[string]string{"veil.destinations.hris": "h1", "veil.destinations.bi": "b1"}); err != nil {
		t.Fatal(err)
	}
	barred, err := st.PolicyChanger(ctx, "veil.destinations.hris")
	if err != nil || barred != "user:alice@example.com" {
		t.Fatalf("who changed hris's policy: %q %v", barred, err)
	}
	rule := veil.ReviewRule{Approvers: 2, Barred: barred}
	if _, err := st.ReviewDecide(ctx, a, true, "user:alice@example.com", "", rule); veil.ErrorCode(err) != veil.EFORBIDDEN {
		t.Fatalf("the policy's author approving: %v, want forbidden", err)
	}
	dl, err := st.ReviewDecide(ctx, a, true, "user:bob@example.com", "", rule)
	if err != nil || dl.Status != veil.DeliveryHeld {
		t.Fatalf("the first approval: %+v %v, want still held", dl, err)
	}
	if _, err := st.ReviewDecide(ctx, a, true, "user:bob@example.com", "", rule); veil.ErrorCode(err) != veil.ECONFLICT {
		t.Fatalf("bob approving twice: %v, want conflict", err)
	}
	if claimed, err := st.ClaimDeliveries(ctx, time.Now().Add(time.Hour), map[string]int{"hris": 10}, time.Minute); err != nil || len(claimed) != 0 {
		t.Fatalf("claimed after one of two approvals: %d %v", len(claimed), err)
	}
	ap, err := st.Approvals(ctx, []string{a, b})
	if err != nil || len(ap[a]) != 1 || ap[a][0].Actor != "user:bob@example.com" || len(ap[b]) != 0 {
		t.Fatalf("approvals: %+v %v", ap, err)
	}
	if dl, err = st.ReviewDecide(ctx, a, true, "user:carol@example.com", "", rule); err != nil || dl.Status != veil.DeliveryPending {
		t.Fatalf("the second approval: %+v %v, want pending", dl, err)
	}
	if ap, _ = st.Approvals(ctx, []string{a}); len(ap[a]) != 0 {
		t.Fatalf("approvals kept after the release: %+v", ap)
	}
	if dl, err = st.ReviewDecide(ctx, b, false, "user:bob@example.com", "not for the HRIS", rule); err != nil || dl.Status != veil.DeliveryRejected {
		t.Fatalf("one rejection: %+v %v", dl, err)
	}
	var outcomes []string
	rows, err := st.AuditPage(ctx, veil.AuditFilter{Actions: []string{veil.ActionReviewApproved, veil.ActionPolicyLoaded}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		outcomes = append(outcomes, r.Actor+" "+r.Outcome+" "+r.Detail)
	}
	want := []string{"user:carol@example.com approved 2 of 2 ", "user:bob@example.com approved 1 of 2 ",
		"veil loaded digest=d1 files=3", "user:alice@example.com loaded digest=d1 files=3 changed=veil.destinations.bi,veil.destinations.hris"}
	if !slices.Equal(outcomes, want) {
		t.Fatalf("audit rows:\n%q\nwant\n%q", outcomes, want)
	}
}
