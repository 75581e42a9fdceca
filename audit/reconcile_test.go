package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

func TestReconcile_AppStates(t *testing.T) { eachDriver(t, testReconcileAppStates) }

// testReconcileAppStates: a webhook's application state is kept (as
// hashes); a listing of the same state reports nothing, a new stage
// reports a stage change; a reconciled event commits once (a second copy
// of the same change, or one a webhook brought meanwhile, is skipped); a
// webhook arriving after its change was reconciled keeps its deliveries
// from leaving; the watermark round-trips.
func testReconcileAppStates(t *testing.T, d testDB) {
	st := d.open(t)
	ctx := context.Background()
	hook := event(1, "greenhouse:candidate:1")
	hook.App = &veil.AppState{ID: "app-1", Stage: "stage-A", Outcome: veil.OutcomeActive}
	if _, _, err := st.IngestEvent(ctx, hook, nil, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	types, _, err := st.Transitions(ctx, "greenhouse", []veil.AppState{
		{ID: "app-1", Stage: "stage-A", Outcome: veil.OutcomeActive},
		{ID: "app-1", Stage: "stage-B", Outcome: veil.OutcomeActive},
		{ID: "app-2", Stage: "stage-A", Outcome: veil.OutcomeHired},
	})
	if err != nil || types[0] != "" || types[1] != veil.TypeStageChanged || types[2] != veil.TypeApplicationHired {
		t.Fatalf("transitions: %q %v", types, err)
	}

	// Two copies of one reconciled change at once (a rerun racing the
	// first): one event.
	var wg sync.WaitGroup
	results := make([]bool, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := event(10+i, "greenhouse:candidate:2")
			e.Reconciled, e.App = true, &veil.AppState{ID: "app-2", Stage: "stage-A", Outcome: veil.OutcomeHired}
			_, dup, err := st.IngestEvent(ctx, e, []*veil.Delivery{{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{}`)}}, veil.Drift{})
			if err != nil {
				t.Error(err)
			}
			results[i] = dup
		}()
	}
	wg.Wait()
	if results[0] == results[1] {
		t.Fatalf("two copies of one reconciled change: duplicate %v, want exactly one stored", results)
	}
	// The webhook for it arrives late: stored, its delivery filtered.
	late := event(20, "greenhouse:candidate:2")
	late.App = &veil.AppState{ID: "app-2", Outcome: veil.OutcomeHired}
	id, dup, err := st.IngestEvent(ctx, late, []*veil.Delivery{{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{}`)}}, veil.Drift{})
	if err != nil || dup {
		t.Fatalf("late webhook: %v dup %v", err, dup)
	}
	ds, err := st.EventDeliveries(ctx, id)
	if err != nil || len(ds) != 1 || ds[0].Status != veil.DeliveryFiltered || ds[0].Detail != audit.DetailReconciled {
		t.Fatalf("late webhook's delivery: %+v %v", ds, err)
	}
	if n := d.queryInt(t, `SELECT count(*) FROM audit WHERE action = 'reconciled'`); n != 1 {
		t.Fatalf("%d reconciled rows, want 1", n)
	}
	if n := d.queryInt(t, `SELECT count(*) FROM audit WHERE action = 'filtered' AND outcome = 'already_reconciled'`); n != 1 {
		t.Fatalf("%d already_reconciled rows, want 1", n)
	}
	// The store keeps hashes: no application id or stage in plain text.
	contents := d.contents(t)
	for _, v := range []string{"app-1", "app-2", "stage-A"} {
		if d.holds(contents, v) {
			t.Errorf("the store holds %q in plain text", v)
		}
	}

	wm := time.Unix(1795688100, 0).UTC()
	if err := st.SetReconcileState(ctx, "greenhouse", veil.ReconcileState{Watermark: wm, Token: "sync-1"}); err != nil {
		t.Fatal(err)
	}
	got, err := st.ReconcileState(ctx, "greenhouse")
	if err != nil || !got.Known || !got.Watermark.Equal(wm) || got.Token != "sync-1" {
		t.Fatalf("reconcile state: %+v %v", got, err)
	}
	ran, err := st.Exclusive(ctx, "greenhouse", func() error { return nil })
	if err != nil || !ran {
		t.Fatalf("exclusive: %v %v", ran, err)
	}
}
