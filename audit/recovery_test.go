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

// TestDeadLetters_FiltersPagesReplayable: the inbox filters by reason,
// HTTP status, destination and time; pages both ways without a gap or a
// repeat; counts everything matching; and marks an erased subject's
// deliveries as not replayable.
func TestDeadLetters_FiltersPagesReplayable(t *testing.T) { eachDriver(t, testDeadLetters) }

func testDeadLetters(t *testing.T, db testDB) {
	var clock atomic.Int64
	t0 := time.Unix(1795688100, 0).UTC()
	clock.Store(t0.UnixNano())
	st := db.openAt(t, func() time.Time { return time.Unix(0, clock.Load()).UTC() })
	ctx := context.Background()
	outcomes := []veil.Attempt{
		{Status: veil.DeliveryDead, HTTPStatus: 404, Detail: "http 404 is not retried"},
		{Status: veil.DeliveryDead, HTTPStatus: 404, Detail: "http 404 is not retried"},
		{Status: veil.DeliveryDead, HTTPStatus: 500, Detail: "http 500; gave up after 3 attempts"},
		{Status: veil.DeliveryDead, Detail: "timeout; gave up after 3 attempts"},
		{Status: veil.DeliveryDead, Detail: "ssrf: the destination resolves to a forbidden address"},
		{Status: veil.DeliveryDead, Detail: "connection error; gave up after 3 attempts"},
		{Status: veil.DeliveryDelivered, HTTPStatus: 200},
	}
	for i := range outcomes {
		e := event(i, fmt.Sprint("greenhouse:candidate:", i))
		ds := []*veil.Delivery{{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{}`)}}
		if _, _, err := st.IngestEvent(ctx, e, ds, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := st.ClaimDeliveries(ctx, t0.Add(time.Hour), map[string]int{"hris": 100}, time.Minute)
	if err != nil || len(claimed) != len(outcomes) {
		t.Fatalf("claim: %d %v", len(claimed), err)
	}
	byEvent := map[string]*veil.Delivery{}
	for _, d := range claimed {
		byEvent[d.Subject] = d
	}
	for i, a := range outcomes {
		clock.Add(int64(time.Second)) // each dies a second after the last
		if err := st.FinishDelivery(ctx, byEvent[st.SubjectHash(fmt.Sprint("greenhouse:candidate:", i))], &a); err != nil {
			t.Fatal(err)
		}
	}
	count := func(q veil.DeadQuery) int64 {
		t.Helper()
		p, err := st.DeadLetters(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return p.Total
	}
	for _, c := range []struct {
		q    veil.DeadQuery
		want int64
	}{
		{veil.DeadQuery{}, 6}, {veil.DeadQuery{Reason: "http"}, 3}, {veil.DeadQuery{HTTPStatus: 404}, 2},
		{veil.DeadQuery{Reason: "timeout"}, 1}, {veil.DeadQuery{Reason: "ssrf"}, 1}, {veil.DeadQuery{Reason: "connection"}, 1},
		{veil.DeadQuery{Reason: "other"}, 0}, {veil.DeadQuery{Destination: "bi"}, 0}, {veil.DeadQuery{Destination: "hris"}, 6},
		{veil.DeadQuery{Since: t0.Add(3 * time.Second)}, 4}, {veil.DeadQuery{Until: t0.Add(3 * time.Second)}, 2},
	} {
		if got := count(c.q); got != c.want {
			t.Errorf("%+v: %d match, want %d", c.q, got, c.want)
		}
	}
	if _, err := st.DeadLetters(ctx, veil.DeadQuery{Reason: "bogus"}); veil.ErrorCode(err) != veil.EINVALID {
		t.Fatalf("an unknown reason: %v", err)
	}

	// Pages of two: newest first, three pages, then back.
	var seen []string
	var pages []veil.DeadPage
	q := veil.DeadQuery{Limit: 2}
	for {
		p, err := st.DeadLetters(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
		for _, l := range p.Letters {
			seen = append(seen, l.ID)
		}
		if p.Older == "" {
			break
		}
		q.Before = p.Older
	}
	if len(pages) != 3 || len(seen) != 6 || pages[0].Newer != "" || pages[1].Newer == "" {
		t.Fatalf("%d pages, %d letters: %+v", len(pages), len(seen), pages)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] == seen[i-1] {
			t.Fatalf("a letter twice: %v", seen)
		}
	}
	back, err := st.DeadLetters(ctx, veil.DeadQuery{Limit: 2, After: pages[2].Newer})
	if err != nil || len(back.Letters) != 2 || back.Letters[0].ID != pages[1].Letters[0].ID || back.Letters[1].ID != pages[1].Letters[1].ID {
		t.Fatalf("the page before the last: %+v %v, want %+v", back.Letters, err, pages[1].Letters)
	}
	if pages[0].Letters[0].Reason != "connection" || pages[2].Letters[1].Reason != "http" || pages[2].Letters[1].HTTPStatus != 404 {
		t.Fatalf("newest first with reasons: %+v", pages)
	}

	// An erased subject's dead letter stays listed, not replayable.
	if p, _ := st.DeadLetters(ctx, veil.DeadQuery{}); p.Replayable != 6 {
		t.Fatalf("replayable before erasure: %d", p.Replayable)
	}
	if _, err := st.Erase(ctx, "greenhouse:candidate:0", "admin"); err != nil {
		t.Fatal(err)
	}
	p, _ := st.DeadLetters(ctx, veil.DeadQuery{HTTPStatus: 404})
	if p.Total != 2 || p.Replayable != 1 {
		t.Fatalf("after erasure: %d match, %d replayable", p.Total, p.Replayable)
	}
	for _, l := range p.Letters {
		if l.Replayable == (l.Subject == st.SubjectHash("greenhouse:candidate:0")) {
			t.Fatalf("%s replayable=%v", l.ID, l.Replayable)
		}
	}
}

// TestPause_HoldsDeliveriesOnEveryReplica: a paused destination's
// deliveries are not claimed (by this store or another on the same
// database), the others' are; pause and resume are audited with actor and
// reason; a second pause is refused.
func TestPause_HoldsDeliveriesOnEveryReplica(t *testing.T) { eachDriver(t, testPause) }

func testPause(t *testing.T, db testDB) {
	st := db.open(t)
	ctx := context.Background()
	if err := st.PauseDestination(ctx, "hris", "console:admin", "HRIS maintenance until 14:00"); err != nil {
		t.Fatal(err)
	}
	if err := st.PauseDestination(ctx, "hris", "admin", "again"); veil.ErrorCode(err) != veil.ECONFLICT {
		t.Fatalf("a second pause: %v", err)
	}
	e := event(1, "greenhouse:candidate:1")
	ds := []*veil.Delivery{{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{}`)},
		{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{}`)}}
	if _, _, err := st.IngestEvent(ctx, e, ds, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	limits := map[string]int{"hris": 10, "bi": 10}
	later := e.ReceivedAt.Add(time.Hour)
	got, err := st.ClaimDeliveries(ctx, later, limits, time.Minute)
	if err != nil || len(got) != 1 || got[0].Destination != "bi" {
		t.Fatalf("claimed while hris is paused: %v %v", got, err)
	}
	if db.driver == "postgres" { // a second replica sees the pause too
		other := db.open(t)
		if more, err := other.ClaimDeliveries(ctx, later, limits, time.Minute); err != nil || len(more) != 0 {
			t.Fatalf("the other replica claimed %d while hris is paused (%v)", len(more), err)
		}
	}
	ps, err := st.Paused(ctx)
	if err != nil || len(ps) != 1 || ps[0].Destination != "hris" || ps[0].Actor != "console:admin" || ps[0].Reason != "HRIS maintenance until 14:00" {
		t.Fatalf("paused: %+v %v", ps, err)
	}
	if err := st.ResumeDestination(ctx, "hris", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := st.ResumeDestination(ctx, "hris", "admin"); veil.ErrorCode(err) != veil.ECONFLICT {
		t.Fatalf("resume of a destination not paused: %v", err)
	}
	got, err = st.ClaimDeliveries(ctx, later, limits, time.Minute)
	if err != nil || len(got) != 1 || got[0].Destination != "hris" {
		t.Fatalf("claimed after resume: %v %v", got, err)
	}
	var rows []veil.AuditEntry
	st.Export(ctx, veil.AuditFilter{Actions: []string{veil.ActionDestinationPaused, veil.ActionDestinationResumed}}, func(e *veil.AuditEntry) error {
		rows = append(rows, *e)
		return nil
	})
	if len(rows) != 2 || rows[0].Actor != "console:admin" || rows[0].Detail != "HRIS maintenance until 14:00" ||
		rows[1].Action != veil.ActionDestinationResumed || rows[1].Destination != "hris" {
		t.Fatalf("audit rows: %+v", rows)
	}
	if n, err := st.Verify(ctx, nil); err != nil || n == 0 {
		t.Fatalf("verify: %d %v", n, err)
	}
}

// TestListEvents_PagesBothWays: keyset pages of the events list, older and
// newer, meet without a gap or a repeat, and a person's events are found
// by any of her references.
func TestListEvents_PagesBothWays(t *testing.T) { eachDriver(t, testListEventsPages) }

func testListEventsPages(t *testing.T, db testDB) {
	st := db.open(t)
	ctx := context.Background()
	var all []string
	for i := range 5 {
		e := event(i, fmt.Sprint("greenhouse:candidate:", i%2))
		e.Refs = []string{e.Subject, fmt.Sprint("greenhouse:application:", 100+i%2)}
		e.NormalType, e.Job = "application.hired", fmt.Sprint("greenhouse:job:", 7+i%2)
		id, _, err := st.IngestEvent(ctx, e, nil, veil.Drift{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, id)
	}
	slices.Sort(all)
	slices.Reverse(all) // the list's order: by id, which sorts by time
	ids := func(es []veil.EventSummary) (out []string) {
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	p1, _ := st.ListEvents(ctx, veil.EventQuery{Limit: 2})
	p2, _ := st.ListEvents(ctx, veil.EventQuery{Limit: 2, Before: p1[1].ID})
	back, _ := st.ListEvents(ctx, veil.EventQuery{Limit: 2, After: p2[0].ID})
	if fmt.Sprint(ids(p1)) != fmt.Sprint(all[:2]) || fmt.Sprint(ids(p2)) != fmt.Sprint(all[2:4]) || fmt.Sprint(ids(back)) != fmt.Sprint(all[:2]) {
		t.Fatalf("pages %v %v, back %v; all %v", ids(p1), ids(p2), ids(back), all)
	}
	_, refs, err := st.Person(ctx, "greenhouse:application:101")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ListEvents(ctx, veil.EventQuery{ByRefs: true, Subjects: refs}); len(got) != 2 {
		t.Fatalf("the person of application 101: %d events, want 2", len(got))
	}
	if got, _ := st.ListEvents(ctx, veil.EventQuery{ByRefs: true, Jobs: st.JobHashes([]string{"lever", "greenhouse"}, "7")}); len(got) != 3 {
		t.Fatalf("job 7: %d events, want 3", len(got))
	}
	if got, _ := st.ListEvents(ctx, veil.EventQuery{ByRefs: true}); len(got) != 0 {
		t.Fatalf("a search that found no reference lists %d events", len(got))
	}
	if got, _ := st.ListEvents(ctx, veil.EventQuery{EventType: "application.hired"}); len(got) != 5 {
		t.Fatalf("by normal type: %d", len(got))
	}
}

// TestOverviewCounts: the Overview's counts from the audit log, on both
// drivers: final deliveries per 10 minutes, hour and day; inbound
// accepted and refused by reason; each destination's last error.
func TestOverviewCounts(t *testing.T) { eachDriver(t, testOverviewCounts) }

func testOverviewCounts(t *testing.T, db testDB) {
	st := db.open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for i, a := range []veil.Attempt{{Status: veil.DeliveryDead, HTTPStatus: 500, Detail: "http 500; gave up after 1 attempts"},
		{Status: veil.DeliveryDelivered, HTTPStatus: 200}} {
		e := event(i, fmt.Sprint("greenhouse:candidate:", i))
		e.ReceivedAt = now
		if _, _, err := st.IngestEvent(ctx, e, []*veil.Delivery{{Destination: "hris", Status: veil.DeliveryPending, Body: []byte(`{}`)}}, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
		cl, err := st.ClaimDeliveries(ctx, now.Add(time.Hour), map[string]int{"hris": 1}, time.Minute)
		if err != nil || len(cl) != 1 {
			t.Fatalf("claim: %v", err)
		}
		if err := st.FinishDelivery(ctx, cl[0], &a); err != nil {
			t.Fatal(err)
		}
	}
	st.Record(&veil.AuditEntry{Time: now, Action: veil.ActionRejected, Actor: "greenhouse", Source: "greenhouse", Outcome: "rejected",
		HTTPStatus: 401, Attempt: 7, Detail: "reason=invalid_signature count=7 minute=x"},
		&veil.AuditEntry{Time: now, Action: veil.ActionRejected, Actor: "greenhouse", Source: "greenhouse", Outcome: "rejected",
			HTTPStatus: 401, Attempt: 2, Detail: "reason=invalid_signature count=2 minute=y"})
	for _, step := range []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour} {
		var counts []veil.DeliveryCount
		waitUntil(t, func() bool {
			var err error
			counts, err = st.DeliveryCounts(ctx, now.Add(-48*time.Hour), step)
			return err == nil && len(counts) == 2
		})
		for _, c := range counts {
			if c.Count != 1 || c.Destination != "hris" || !c.Hour.Equal(now.Truncate(step)) && step != 24*time.Hour {
				t.Fatalf("step %s: %+v", step, counts)
			}
		}
	}
	var in []veil.InboundCount
	waitUntil(t, func() bool {
		in, _ = st.InboundCounts(ctx, now.Add(-time.Hour))
		return len(in) == 2
	})
	if in[0].Action != veil.ActionReceived || in[0].Count != 2 || in[1].Action != veil.ActionRejected || in[1].Reason != "invalid_signature" || in[1].Count != 9 {
		t.Fatalf("inbound: %+v", in)
	}
	errs, err := st.LastErrors(ctx, now.Add(-time.Hour))
	if err != nil || errs["hris"].HTTPStatus != 500 {
		t.Fatalf("last errors: %+v %v", errs, err)
	}
}

// waitUntil polls cond for up to 5 s (Record commits in the background).
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("timed out")
}
