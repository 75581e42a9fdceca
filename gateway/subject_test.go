package gateway_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
)

func testConfig() *veil.Config {
	return &veil.Config{Sources: []veil.Source{{Name: "greenhouse", Vendor: "greenhouse"}, {Name: "lever", Vendor: "lever"}},
		Subjects: veil.SubjectsConfig{LinkByEmail: true}, Retention: veil.Retention{Payload: veil.Duration(72 * time.Hour),
			Audit: veil.Duration(8760 * time.Hour)},
		Destinations: []veil.Destination{{Name: "hris", Country: "US", TransferSafeguard: "SCCs",
			Processor: veil.Processor{Name: "HRIS Inc", DPA: "DPA-1", Purpose: "onboarding", LegalBasis: "contract"}}},
		Controller: veil.ControllerConfig{Name: "Example Ltd", SupervisoryAuthority: "ICO"}}
}

// TestCheckSubject: only SOURCE:KIND:ID of a configured source and kind,
// or a normalised email when linking by email, without spaces.
func TestCheckSubject(t *testing.T) {
	cfg := testConfig()
	for ref, ok := range map[string]bool{
		"greenhouse:candidate:61550219": true, "greenhouse:application:1": true, "lever:offer:x-1": true,
		"greenhouse:event:evt_1": true, "email:priya@example.com": true,
		"61550219": false, "greenhouse:candidate:": false, "greenhouse:person:1": false, "workday:candidate:1": false,
		"greenhouse:candidate: 1": false, "greenhouse:candidate:1\n": false, "email:Priya@Example.com": false,
	} {
		err := gateway.CheckSubject(cfg, ref)
		if (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", ref, err, ok)
		}
		if err != nil && veil.ErrorCode(err) != veil.EINVALIDSUBJECT {
			t.Errorf("%q: code %s, want invalid_subject", ref, veil.ErrorCode(err))
		}
	}
}

// TestReportRendering: the Markdown and HTML forms answer each Art. 15
// item in words a person reads: categories named, no field path and no
// keyed hash.
func TestReportRendering(t *testing.T) {
	at := time.Date(2026, 11, 26, 15, 41, 0, 0, time.UTC)
	rows := []veil.AuditEntry{
		{Time: at, Action: veil.ActionReceived, Outcome: "accepted", Subject: "sub_0123456789abcdef"},
		{Time: at, Action: veil.ActionDelivered, Destination: "hris", EventType: "hire_candidate", EventID: "evt_1",
			FieldsKept: []string{"candidate.first_name", "candidate.emails"}, Categories: []string{"user.name.first", "user.health"}},
	}
	rep := veil.BuildSubjectReport("sub_0123456789abcdef", "greenhouse:candidate:1", 3, rows, veil.Holdings{Payloads: 1}, testConfig(), at)
	var md, html bytes.Buffer
	gateway.WriteReportMarkdown(&md, rep)
	if err := gateway.WriteReportHTML(&html, rep); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"md": md.String(), "html": html.String()} {
		for _, want := range []string{"(a) Purposes", "onboarding", "first name", "health data (special category)", "HRIS Inc",
			"Example Ltd", "ICO", "Rectification", "(h) Automated", "SCCs", "US"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		for _, not := range []string{"sub_", "candidate.first_name", "user.name.first"} {
			if strings.Contains(out, not) {
				t.Errorf("%s holds %q, which a person cannot read", name, not)
			}
		}
	}
}
