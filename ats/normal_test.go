package ats

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policies"
	"github.com/veilhq/veil/redact"
)

var update = flag.Bool("update", false, "rewrite testdata/normal")

// eventSchema compiles the shipped JSON Schema of the normal form with a
// maintained validator, so the golden files are checked against the
// schema policies are type-checked with, not against Veil's own reading of
// it.
func eventSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(policies.EventSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("event.v1.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("event.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func normalize(t testing.TB, s sample) *veil.NormalEvent {
	t.Helper()
	sch := mustScheme(t, source(s.vendor))
	doc, err := redact.Parse(s.body)
	if err != nil {
		t.Fatal(err)
	}
	return sch.Normalize(sch.Describe(s.header, s.body).EventType, doc)
}

// TestNormalGolden: every sample of every vendor normalises to
// testdata/normal/<vendor>/<file>.json, which the schema accepts.
func TestNormalGolden(t *testing.T) {
	sch := eventSchema(t)
	for _, s := range samples(t) {
		t.Run(s.file, func(t *testing.T) {
			got, err := json.MarshalIndent(normalize(t, s), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("../testdata/normal", s.file)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./ats -run TestNormalGolden -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("normal form differs from %s:\n%s", path, got)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(want))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Errorf("%s does not validate: %v", path, err)
			}
		})
	}
}

// TestNormalTypes: each vendor's event names map to the documented types.
func TestNormalTypes(t *testing.T) {
	want := map[string]string{
		"greenhouse/candidate_stage_change.json":           veil.TypeStageChanged,
		"greenhouse/hire_candidate.json":                   veil.TypeApplicationHired,
		"greenhouse/new_candidate_application.json":        veil.TypeApplicationCreated,
		"greenhouse/offer_created.json":                    veil.TypeOfferCreated,
		"lever/candidateStageChange.json":                  veil.TypeStageChanged,
		"lever/candidateHired.json":                        veil.TypeApplicationHired,
		"lever/applicationCreated.json":                    veil.TypeApplicationCreated,
		"ashby/candidateStageChange.json":                  veil.TypeStageChanged,
		"ashby/candidateHire.json":                         veil.TypeApplicationHired,
		"ashby/applicationSubmit.json":                     veil.TypeApplicationCreated,
		"ashby/surveySubmit.json":                          veil.TypeSurveySubmitted,
		"standard-webhooks/application.stage_changed.json": veil.TypeStageChanged,
		"standard-webhooks/candidate.hired.json":           veil.TypeApplicationHired,
		"standard-webhooks/offer.created.json":             veil.TypeOfferCreated,
		"smartrecruiters/application.created.json":         veil.TypeApplicationCreated,
	}
	for _, s := range samples(t) {
		ne := normalize(t, s)
		if w, ok := want[s.file]; ok && ne.Type != w {
			t.Errorf("%s: type %s, want %s", s.file, ne.Type, w)
		}
		if ne.VendorType == "" || ne.Schema != veil.NormalSchema {
			t.Errorf("%s: vendor_type %q schema %q", s.file, ne.VendorType, ne.Schema)
		}
	}
}

// TestEveryPathClassified: each vendor's home classifies every path of its
// samples, and only with categories the taxonomy knows; the personal
// fields are classified as personal.
func TestEveryPathClassified(t *testing.T) {
	personal := map[string][]string{
		"greenhouse/hire_candidate.json": {"payload.application.candidate.first_name", "payload.application.candidate.email_addresses.#.value",
			"payload.application.candidate.phone_numbers.#.value", "payload.application.candidate.addresses.#.value"},
		"ashby/candidateHire.json":               {"data.application.candidate.name", "data.application.candidate.primaryEmailAddress.value"},
		"standard-webhooks/candidate.hired.json": {"data.candidate.first_name", "data.candidate.emails.#.address"},
	}
	for _, s := range samples(t) {
		sch := mustScheme(t, source(s.vendor))
		doc, err := redact.Parse(s.body)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range doc.Paths() {
			c := sch.Category(p)
			switch {
			case c == "":
				t.Errorf("%s: %s is unclassified", s.file, p)
			case !strings.HasPrefix(c, "user.") && !strings.HasPrefix(c, "system."):
				t.Errorf("%s: %s has category %q, outside the taxonomy", s.file, p, c)
			}
		}
		for _, p := range personal[s.file] {
			if !slices.Contains(doc.Paths(), p) {
				t.Errorf("%s: no path %s in the sample", s.file, p)
			}
			if c := sch.Category(p); !veil.Personal(c) {
				t.Errorf("%s: %s is %q, want personal", s.file, p, c)
			}
		}
	}
	// A path no vendor knows stays unclassified: personal for the leak guard.
	if c := mustScheme(t, source(veil.VendorGreenhouse)).Category("payload.something_new.value"); c != "" || !veil.Personal(c) {
		t.Errorf("unknown path: %q, want unclassified and personal", c)
	}
}

// TestHMACNormalize: a generic source's normalize block maps its body onto
// the normal form (lists through #, escaped keys), classifies the paths it
// maps with their normal-form categories, and leaves the rest unclassified.
func TestHMACNormalize(t *testing.T) {
	src := source(veil.VendorHMAC)
	src.Normalize = &veil.NormalizeConfig{
		Type: &veil.NormalizeType{Path: "event", Map: map[string]string{"candidate_moved": veil.TypeStageChanged}},
		Fields: map[string]string{"candidate.id": "data.id", "candidate.first_name": "data.firstname", "candidate.last_name": "data.lastname",
			"candidate.emails": "data.emails.#.address", "application.stage.name": `data.stage\.name`, "job.id": "data.jobs.0.id"},
	}
	sch := mustScheme(t, src)
	body := []byte(`{"event":"candidate_moved","data":{"id":7,"firstname":"Ingrid","lastname":"Solberg","emails":[{"address":"i@x.example"},{"address":"s@x.example"}],"stage.name":"Phone screen","jobs":[{"id":"j1"}],"notes":"free text"}}`)
	doc, err := redact.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	ne := sch.Normalize(sch.Describe(nil, body).EventType, doc)
	got, _ := json.Marshal(ne)
	for _, want := range []string{`"type":"application.stage_changed"`, `"vendor_type":"candidate_moved"`, `"id":"7"`, `"name":"Ingrid Solberg"`,
		`"emails":["i@x.example","s@x.example"]`, `"stage":{"id":null,"name":"Phone screen"}`, `"job":{"id":"j1"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("normal form lacks %s:\n%s", want, got)
		}
	}
	if err := eventSchema(t).Validate(mustUnmarshal(t, got)); err != nil {
		t.Errorf("does not validate: %v", err)
	}
	for p, want := range map[string]string{"event": "system.operations", "data.id": "user.unique_id", "data.firstname": "user.name.first",
		"data.emails.#.address": "user.contact.email", "data.notes": ""} {
		if c := sch.Category(p); c != want {
			t.Errorf("Category(%s) = %q, want %q", p, c, want)
		}
	}
	// Without a normalize block: the envelope only, every path unclassified.
	bare := mustScheme(t, source(veil.VendorHMAC))
	if ne := bare.Normalize("candidate_moved", doc); ne.Type != veil.TypeUnknown || ne.Candidate.ID != nil || bare.Category("data.id") != "" {
		t.Errorf("bare hmac: %+v", ne)
	}
}

func mustUnmarshal(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// BenchmarkNormalize: the normal form of the 6 KB Greenhouse hire from its
// parsed payload (what Veil adds per event over parsing it), and the JSON
// it is projected from.
func BenchmarkNormalize(b *testing.B) {
	var s sample
	for _, x := range samples(b) {
		if x.file == "greenhouse/hire_candidate.json" {
			s = x
		}
	}
	sch := mustScheme(b, source(s.vendor))
	doc, err := redact.Parse(s.body)
	if err != nil {
		b.Fatal(err)
	}
	eventType := sch.Describe(s.header, s.body).EventType
	b.Run("normalize", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sch.Normalize(eventType, doc)
		}
	})
	b.Run("normalize+json", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			buf = sch.Normalize(eventType, doc).AppendJSON(buf[:0])
		}
	})
}
