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
