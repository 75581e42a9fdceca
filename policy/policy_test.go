package policy_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"

	"github.com/veilhq/veil/policy"
)

// TestShippedPolicies runs every _test.rego in policies/ with OPA's tester,
// so `go test ./...` covers the policies too.
func TestShippedPolicies(t *testing.T) {
	var out bytes.Buffer
	rep, err := policy.RunTests(context.Background(), "../policies", &out, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed {
		t.Fatalf("policy tests failed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "PASS:") {
		t.Fatalf("no OPA summary in the report:\n%s", out.String())
	}
	if len(rep.Untested) > 0 {
		t.Errorf("destination packages without tests: %v", rep.Untested)
	}
	for f, c := range rep.Coverage {
		if c <= 95 {
			t.Errorf("%s: coverage %.1f%%, want above 95%%; lines not covered: %v", f, c, rep.Uncovered[f])
		}
	}
	if len(rep.Coverage) < 4 {
		t.Errorf("coverage of %d files, want every shipped policy: %v", len(rep.Coverage), rep.Coverage)
	}
	t.Logf("\n%s\ncoverage %.1f%% %v", out.String(), rep.Total, rep.Coverage)
}

// TestShippedPoliciesFormatted: the shipped policies are as OPA's own
// formatter writes them (what `opa fmt --list` and `veil policy fmt
// --check` report).
func TestShippedPoliciesFormatted(t *testing.T) {
	changed, err := policy.Format("../policies", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) > 0 {
		t.Errorf("not formatted (run veil policy fmt policies): %v", changed)
	}
}

// TestAuthoringErrors: a misspelled input.event field, a keep path or
// category no event can match, each fails with file and line; a
// destination package without tests is named.
func TestAuthoringErrors(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"typo in input.event", "package veil.destinations.x\n\nallow if {\n\tinput.event.aplication.id != null\n}\n",
			"x.rego:4:"},
		{"typo deeper", "package veil.destinations.x\n\nallow if input.event.application.stage.nme == \"Offer\"\n",
			"x.rego:3:"},
		{"keep matching nothing", "package veil.destinations.x\n\nformat := \"event\"\n\nallow := true\n\nkeep := {\n\t\"candidate.id\",\n\t\"job.department.name\",\n}\n",
			"x.rego:9: keep entry \"job.department.name\" addresses no field"},
		{"keep contains", "package veil.destinations.x\n\nformat := \"event\"\n\nallow := true\n\nkeep contains \"candidate.emails.#.value\"\n",
			"x.rego:7: keep entry \"candidate.emails.#.value\""},
		{"unknown category", "package veil.destinations.x\n\nformat := \"event\"\n\nallow := true\n\nkeep_categories := {\"system.operation\"}\n",
			"x.rego:7: keep_categories entry \"system.operation\""},
		{"pseudonymize nothing", "package veil.destinations.x\n\nformat := \"event\"\n\nallow := true\n\npseudonymize := {\"candidate.uid\"}\n",
			"x.rego:7: pseudonymize entry \"candidate.uid\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "x.rego"), []byte(c.src), 0o644); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep, err := policy.RunTests(context.Background(), dir, &out, false, false)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Passed || !strings.Contains(out.String(), c.want) {
				t.Errorf("passed %v, report:\n%s\nwant it to contain %q", rep.Passed, out.String(), c.want)
			}
			if _, err := policy.Load(context.Background(), dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load: %v, want an error containing %q", err, c.want)
			}
		})
	}
	// Right spellings pass, and the untested package is named.
	dir := t.TempDir()
	src := "package veil.destinations.x\n\nformat := \"event\"\n\nallow if input.event.application.stage.name == \"Offer\"\n\n" +
		"keep := {\"candidate.id\", \"job.departments.#.name\", \"candidate.emails\", \"application.stage\"}\n\n" +
		"keep_categories := {\"system\", \"user.contact\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "x.rego"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := policy.RunTests(context.Background(), dir, &out, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "x.rego:") {
		t.Errorf("a correct policy is reported:\n%s", out.String())
	}
	if strings.Join(rep.Untested, ",") != "veil.destinations.x" {
		t.Errorf("untested %v, want [veil.destinations.x]", rep.Untested)
	}
	// A vendor-format policy's paths address the vendor's body: not checked.
	vendor := "package veil.destinations.v\n\nallow := true\n\nkeep := {\"payload.application.id\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "x.rego"), []byte(vendor), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(context.Background(), dir); err != nil {
		t.Errorf("vendor-format policy: %v", err)
	}
}

// TestReadsPayload: the shipped policies format messages with templates, so
// none reads input.payload and Veil skips converting it; a policy that does
// read it is recognised.
func TestReadsPayload(t *testing.T) {
	set, err := policy.Load(context.Background(), "../policies")
	if err != nil {
		t.Fatal(err)
	}
	if set.ReadsPayload() {
		t.Errorf("shipped policies: ReadsPayload true, want false")
	}
	for _, src := range []string{
		"package p\n\nallow if input.payload.action == \"x\"\n",
		"package p\n\nallow if input[\"payload\"]\n",
		"package p\n\nallow if count(input) > 0\n",
		"package p\n\nimport input.payload as pl\n\nallow if pl.x\n",
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o644)
		set, err := policy.Load(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if !set.ReadsPayload() {
			t.Errorf("%q: ReadsPayload false, want true", src)
		}
	}
}

// TestDecisionCache: decisions that depend only on names are cached, but
// not when a policy reads the time (or the payload).
func TestDecisionCache(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package p\n\nallow if input.received_at < \"2026-06-01\"\n"), 0o644)
	set, err := policy.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true}, {time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), false}} {
		in, err := set.NewInput(&veil.Event{Source: "s", Vendor: "greenhouse", EventType: "x", ReceivedAt: c.at, Payload: []byte(`{}`)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := set.Decide(context.Background(), "p", in, "d", veil.Processor{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow != c.want {
			t.Errorf("received %s: allow %v, want %v", c.at, d.Allow, c.want)
		}
	}
}
