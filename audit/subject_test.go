package audit_test

import (
	"context"
	"testing"

	"github.com/veilhq/veil"
)

// TestSubjects_LinksErasureTombstone: references of one person are linked
// however they arrive (the candidate with an application, then an offer
// naming only the application, then an application seen before its
// candidate); two candidates are never merged through an application both
// claim; erasing the person shreds every event of hers and only hers; a
// later event naming any of her references is stored without payload and
// delivered nowhere; and an application first seen alone that turns out
// to be hers, after the erasure, is shredded too.
func TestSubjects_LinksErasureTombstone(t *testing.T) { eachDriver(t, testSubjects) }

func testSubjects(t *testing.T, d testDB) {
	st := d.open(t)
	ctx := context.Background()
	ingest := func(n int, refs ...string) string {
		t.Helper()
		e := event(n, refs[0])
		e.Refs = refs
		id, dup, err := st.IngestEvent(ctx, e, []*veil.Delivery{{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{"x":1}`)}}, veil.Drift{})
		if err != nil || dup {
			t.Fatalf("ingest %d: %v dup=%v", n, err, dup)
		}
		return id
	}
	readable := func(id string) bool {
		_, err := st.Event(ctx, id)
		return err == nil
	}
	a := ingest(1, "gh:candidate:C1", "gh:application:A1")
	b := ingest(2, "gh:application:A1", "gh:offer:O1") // names only the application
	c := ingest(3, "gh:application:A2")                // its candidate not seen yet
	dd := ingest(4, "gh:candidate:C1", "gh:application:A2")
	e := ingest(5, "gh:candidate:C2", "gh:application:A1") // claims C1's application
	g := ingest(6, "gh:application:A3")                    // alone, for now

	p1, refs, err := st.Person(ctx, "gh:offer:O1")
	if err != nil {
		t.Fatal(err)
	}
	if pc, _, _ := st.Person(ctx, "gh:candidate:C1"); pc != p1 || len(refs) != 4 {
		t.Fatalf("the offer resolves to %s with %d references, the candidate to %s; want one person with C1, A1, O1, A2", p1, len(refs), pc)
	}
	if p2, _, _ := st.Person(ctx, "gh:candidate:C2"); p2 == p1 {
		t.Fatal("two candidates merged through an application both claim")
	}
	res, err := st.Erase(ctx, "gh:application:A2", "admin") // any reference of hers
	if err != nil || res.Events != 4 || res.AuditSeq == 0 || res.AuditHash == "" {
		t.Fatalf("erase: %+v %v; want her 4 events and the erased row", res, err)
	}
	for id, want := range map[string]bool{a: false, b: false, c: false, dd: false, e: true, g: true} {
		if readable(id) != want {
			t.Errorf("event %s readable %v after the erasure, want %v", id, !want, want)
		}
	}
	// A later event naming only her offer: answered, nothing kept, nothing sent.
	f := event(7, "gh:offer:O1")
	f.Refs = []string{"gh:offer:O1"}
	ds := []*veil.Delivery{{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{"x":1}`)}}
	if _, dup, err := st.IngestEvent(ctx, f, ds, veil.Drift{}); err != nil || dup {
		t.Fatalf("ingest after the erasure: %v %v", err, dup)
	}
	if readable(f.ID) || ds[0].Status != veil.DeliveryFiltered || ds[0].Detail != veil.DetailErasedSubject {
		t.Fatalf("event of an erased person: readable %v, delivery %s %s", readable(f.ID), ds[0].Status, ds[0].Detail)
	}
	// A3 was stored alone; now it shows up with her: it is shredded too.
	ingest(8, "gh:candidate:C1", "gh:application:A3")
	if readable(g) {
		t.Error("an application linked to an erased person after her erasure is still readable")
	}
	if again, err := st.Erase(ctx, "gh:candidate:C1", "admin"); err != nil || !again.Already {
		t.Errorf("second erasure: %+v %v, want already erased", again, err)
	}
	if _, err := st.Erase(ctx, "gh:candidate:nobody", "admin"); veil.ErrorCode(err) != veil.EUNKNOWNSUBJECT {
		t.Errorf("erase an unknown reference: %v, want unknown_subject", err)
	}
	// Restored, her next event is kept and sent again, under a new salt.
	if _, err := st.Restore(ctx, "gh:candidate:C1", "admin", "new consent"); err != nil {
		t.Fatal(err)
	}
	state, err := st.Resolve(ctx, []string{"gh:candidate:C1"})
	if err != nil || state.Erased || len(state.Salt) == 0 {
		t.Fatalf("after the restore: %+v %v, want not erased, with a salt", state, err)
	}
	if h := ingest(9, "gh:candidate:C1", "gh:application:A9"); !readable(h) {
		t.Error("an event after the restore is not kept")
	}
}

// TestSubjects_EmailAndBackfill: with email references (link_by_email),
// one person in two ATSs is one subject; and events stored before links
// were kept are linked by BackfillLinks, once.
func TestSubjects_EmailAndBackfill(t *testing.T) { eachDriver(t, testEmailAndBackfill) }

func testEmailAndBackfill(t *testing.T, d testDB) {
	st := d.open(t)
	ctx := context.Background()
	for i, refs := range [][]string{{"gh:candidate:X", "gh:application:A", "email:priya@example.com"},
		{"lever:candidate:Y", "lever:application:B", "email:priya@example.com"}} {
		e := event(i+1, refs[0])
		e.Refs = refs
		if _, _, err := st.IngestEvent(ctx, e, nil, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
	}
	px, _, _ := st.Person(ctx, "gh:candidate:X")
	py, refs, err := st.Person(ctx, "lever:application:B")
	if err != nil || px != py || len(refs) < 5 {
		t.Fatalf("by email: %s and %s (%d references, %v); want one person", px, py, len(refs), err)
	}

	// An event stored under its own subject only, as before 0011.
	old := event(3, "gh:candidate:Z")
	old.Refs = []string{"gh:candidate:Z"}
	if _, _, err := st.IngestEvent(ctx, old, nil, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Erase(ctx, "gh:application:C", "admin"); veil.ErrorCode(err) != veil.EUNKNOWNSUBJECT {
		t.Fatalf("the application is known before the backfill: %v", err)
	}
	// A store made before 0011 has no mark that its links were backfilled
	// (a new one is marked by 0016: it has nothing to backfill).
	d.exec(t, `DELETE FROM meta WHERE key = 'links_backfilled'`)
	n, err := st.BackfillLinks(ctx, func(e *veil.Event) []string {
		if e.ID == old.ID {
			return []string{"gh:candidate:Z", "gh:application:C"} // what its payload names
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("backfill: %d %v, want 1", n, err)
	}
	if res, err := st.Erase(ctx, "gh:application:C", "admin"); err != nil || res.Events != 1 {
		t.Fatalf("erase by the backfilled application: %+v %v", res, err)
	}
	if n, err := st.BackfillLinks(ctx, func(*veil.Event) []string { return []string{"x:candidate:1"} }); err != nil || n != 0 {
		t.Errorf("a second backfill: %d %v, want 0", n, err)
	}
}
