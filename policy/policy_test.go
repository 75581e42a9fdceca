package policy_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
