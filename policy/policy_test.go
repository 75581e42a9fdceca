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
	ok, err := policy.RunTests(context.Background(), "../policies", &out, true)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("policy tests failed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "PASS:") {
		t.Fatalf("no OPA summary in the report:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
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
		in, err := set.NewInput(&veil.Event{Source: "s", Vendor: "greenhouse", EventType: "x", ReceivedAt: c.at, Payload: []byte(`{}`)})
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
