package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/sjson"
)

// opsOnly is a vendor-format policy that keeps everything Veil calls
// operational: before fields were classified fail-closed, it released an
// offer note, a file name with the candidate's name, and every field a
// vendor's home did not know.
const opsOnly = `package veil.destinations.bi_events

allow := true

keep_categories := {"system.operations"}
`

// TestFailClosed_UnknownFields runs veil policy preview (the real binary,
// real Rego) as the DPO reproduced it: a vendor-format policy keeping
// system.operations releases none of the Standard offer's note, the
// attachments' names, or a Greenhouse payload's fields Veil does not know
// (a date of birth, a gender custom field, a national insurance number, a
// health answer); Standard stage names are operational, not names; a
// Lever hire that carries ids only releases no name or email.
func TestFailClosed_UnknownFields(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	os.Remove(filepath.Join(dir, "policies", "bi_events_test.rego"))
	if err := os.WriteFile(filepath.Join(dir, "policies", "bi_events.rego"), []byte(opsOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	gh := mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json")
	for path, v := range map[string]string{
		"payload.application.candidate.date_of_birth":                                 "1987-03-09",
		"payload.application.candidate.custom_fields.gender.value":                    "non-binary-canary",
		"payload.application.candidate.custom_fields.national_insurance_number.value": "QQ123456C",
		"payload.application.health_declaration.answer":                               "asthma, canary answer",
	} {
		var err error
		if gh, err = sjson.SetBytes(gh, path, v); err != nil {
			t.Fatal(err)
		}
	}
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, gh, 0o600)
	for _, c := range []struct {
		name, source, file string
		absent             []string
	}{
		{"standard offer", "standard", "../../testdata/samples/standard-webhooks/offer.created.json",
			[]string{"171k", "Obinna Eze", "Elif", "Harborline"}},
		{"greenhouse attachments", "greenhouse", "../../testdata/samples/greenhouse/hire_candidate.json",
			[]string{"Mateus", "Albuquerque", ".pdf"}},
		{"greenhouse unknown fields", "greenhouse", unknown,
			[]string{"1987-03-09", "non-binary-canary", "QQ123456C", "asthma"}},
	} {
		code, out := runVeil(t, "policy", "preview", "--config", config, "--destination", "bi-warehouse", "--source", c.source, c.file)
		if code != 0 {
			t.Fatalf("%s: preview exit %d\n%s", c.name, code, out)
		}
		body := out[strings.Index(out, "outbound body"):strings.Index(out, "kept (")]
		for _, v := range c.absent {
			if strings.Contains(body, v) {
				t.Errorf("%s: the operational projection releases %q\n%s", c.name, v, body)
			}
		}
	}
	// Categories: stage names are operations; a Lever hire gives ids only.
	code, out := runVeil(t, "policy", "preview", "--config", config, "--destination", "bi-warehouse", "--source", "standard",
		"../../testdata/samples/standard-webhooks/application.stage_changed.json")
	if code != 0 || !strings.Contains(out, "data.stage.name") || strings.Contains(out[strings.Index(out, "categories released"):], "user.name") {
		t.Errorf("standard stage change: exit %d, want data.stage.name kept and no user.name released\n%s", code, out)
	}
	code, out = runVeil(t, "policy", "preview", "--config", config, "--destination", "hris-onboarding", "--source", "lever",
		"../../testdata/samples/lever/candidateHired.json")
	cats := out[strings.Index(out, "categories released"):]
	if code != 0 || strings.Contains(cats, "user.name") || strings.Contains(cats, "user.contact.email") {
		t.Errorf("lever hire (ids only): exit %d, categories %s; want no name and no email", code, cats)
	}
}
