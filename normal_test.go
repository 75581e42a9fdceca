package veil_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/veilhq/veil"
)

// TestNormalAppendJSON: the hand-written encoder writes what encoding/json
// writes (without HTML escaping), for odd strings and absent fields alike.
func TestNormalAppendJSON(t *testing.T) {
	odd := []string{"plain", "", "quote\" back\\slash", "tab\tnl\ncr\r", "ctl\x01\x1f", "bad utf8 \xff\xfe", "sep \u2028 \u2029",
		"<b>&amp;</b>", "日本語 é", "\x7f"}
	amount := json.Number("168000.50")
	for i, s := range odd {
		e := &veil.NormalEvent{Schema: veil.NormalSchema, Type: veil.TypeApplicationHired, VendorType: s, Source: "src", Vendor: "v",
			OccurredAt: veil.Str(s), Reconciled: i%2 == 0}
		e.Candidate.Name, e.Candidate.Emails, e.Candidate.Address.City = veil.Str(s), []string{s, "x"}, veil.Str(s)
		e.Application.Stage = veil.NormalRef{ID: veil.Str("1"), Name: veil.Str(s)}
		e.Job.Departments = []veil.NormalRef{{Name: veil.Str(s)}, {}}
		if i%3 == 0 {
			e.Job.Offices = []veil.NormalRef{}
			e.Candidate.Links = []string{}
			e.Offer.Compensation = &veil.NormalCompensation{Amount: &amount, Currency: veil.Str(s)}
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
		if got := e.AppendJSON(nil); string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want.Bytes())
		}
	}
}

func TestTransition(t *testing.T) {
	st := func(stage, outcome string) *veil.AppState {
		return &veil.AppState{ID: "1", Stage: stage, Outcome: outcome}
	}
	for _, c := range []struct {
		name string
		prev *veil.AppState
		cur  veil.AppState
		want string
	}{
		{"never seen, created in the window", nil, veil.AppState{Stage: "s1", Outcome: "active", New: true}, veil.TypeApplicationCreated},
		{"never seen, moved", nil, *st("s2", "active"), veil.TypeStageChanged},
		{"never seen, hired", nil, *st("s2", "hired"), veil.TypeApplicationHired},
		{"never seen, archived (Lever)", nil, *st("s2", "closed"), veil.TypeApplicationUpdated},
		{"same", st("s1", "active"), *st("s1", "active"), ""},
		{"moved", st("s1", "active"), *st("s2", "active"), veil.TypeStageChanged},
		{"hired", st("s1", "active"), *st("s1", "hired"), veil.TypeApplicationHired},
		{"rejected", st("s1", "active"), *st("s1", "rejected"), veil.TypeApplicationRejected},
		{"webhook knew the stage only; listing adds active", st("s1", ""), *st("s1", "active"), ""},
		{"webhook knew the stage only; listing says hired", st("s1", ""), *st("s1", "hired"), veil.TypeApplicationHired},
		{"webhook said hired; Lever lists it archived", st("s1", "hired"), *st("s1", "closed"), ""},
		{"listing knows no stage", st("s1", "active"), *st("", "active"), ""},
		{"reopened", st("s1", "rejected"), *st("s1", "active"), veil.TypeApplicationUpdated},
	} {
		if got := veil.Transition(c.prev, c.cur); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
