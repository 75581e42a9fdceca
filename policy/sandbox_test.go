package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policy"
)

// writePolicy writes one policy file into a new folder and returns it.
func writePolicy(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCapabilities: what a policy may call leaves out the network, the
// runtime, the clock and randomness, and keeps what the shipped policies
// and ordinary authoring use; the capabilities file says the same.
func TestCapabilities(t *testing.T) {
	have := map[string]bool{}
	for _, b := range policy.Capabilities().Builtins {
		have[b.Name] = true
	}
	for _, name := range []string{"http.send", "net.lookup_ip_addr", "net.cidr_contains", "opa.runtime", "time.now_ns",
		"rand.intn", "uuid.rfc4122", "rego.parse_module", "io.jwt.decode_verify", "io.jwt.encode_sign", "providers.aws.sign_req"} {
		if have[name] {
			t.Errorf("%s is allowed, want it refused", name)
		}
		if !policy.Refused(name) {
			t.Errorf("Refused(%q) false", name)
		}
	}
	for _, name := range []string{"count", "concat", "startswith", "object.get", "json.marshal", "time.parse_rfc3339_ns",
		"regex.match", "print", "sprintf", "numbers.range"} {
		if !have[name] {
			t.Errorf("%s is refused, want it allowed", name)
		}
	}
	b, err := policy.CapabilitiesJSON()
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Builtins []struct{ Name string } `json:"builtins"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Builtins) != len(have) || strings.Contains(string(b), `"http.send"`) {
		t.Errorf("capabilities file: %d built-ins (want %d), http.send listed: %v", len(file.Builtins), len(have), strings.Contains(string(b), `"http.send"`))
	}
}

// TestPrint: print in a policy says nothing while Veil decides (what it
// prints could be a payload value) and shows in `veil policy test`.
func TestPrint(t *testing.T) {
	const canary = "CANARY-print-7f3a"
	dir := writePolicy(t, "package p\n\nallow if {\n\tprint(\""+canary+"\", input.event_type)\n\ttrue\n}\n\n"+
		"test_allow if {\n\tprint(\""+canary+"\")\n\tallow with input as {\"event_type\": \"x\"}\n}\n")
	var out bytes.Buffer
	rep, err := policy.RunTests(context.Background(), dir, &out, true, false)
	if err != nil || !rep.Passed {
		t.Fatalf("RunTests: %v %v\n%s", err, rep, out.String())
	}
	if !strings.Contains(out.String(), canary) {
		t.Errorf("policy test does not show what the test printed:\n%s", out.String())
	}

	// Deciding: nothing reaches stdout or stderr.
	captured := captureStd(t, func() {
		set, err := policy.Load(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		in, _ := set.NewInput(&veil.Event{Source: "s", Vendor: "greenhouse", EventType: "x"}, nil)
		d, err := set.Decide(context.Background(), "p", in, "d", veil.Processor{})
		if err != nil || !d.Allow {
			t.Fatalf("decide: %v %v", d, err)
		}
	})
	if strings.Contains(captured, canary) {
		t.Errorf("a decision printed: %q", captured)
	}
}

// captureStd runs fn with stdout and stderr going to a pipe and returns
// what they received.
func captureStd(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() {
		os.Stdout, os.Stderr = stdout, stderr
	}()
	fn()
	w.Close()
	return <-done
}

// TestDecisionBounds: a decision that runs past the set's Timeout fails
// with ErrTimeout within about the timeout, and is not cached; one whose
// result is over MaxResultBytes fails with ErrTooLarge.
func TestDecisionBounds(t *testing.T) {
	slow := writePolicy(t, "package p\n\nallow if {\n\tcount({[x, y] | some x in numbers.range(1, 3000); some y in numbers.range(1, 3000)}) > 0\n}\n")
	set, err := policy.Load(context.Background(), slow)
	if err != nil {
		t.Fatal(err)
	}
	set.Timeout = 20 * time.Millisecond
	in, _ := set.NewInput(&veil.Event{Source: "s", Vendor: "greenhouse", EventType: "x"}, nil)
	for range 2 { // the second is not answered from the cache
		_, err := set.Decide(context.Background(), "p", in, "d", veil.Processor{})
		if !errors.Is(err, policy.ErrTimeout) {
			t.Fatalf("decide: %v, want ErrTimeout", err)
		}
	}

	big := writePolicy(t, "package p\n\nallow := true\n\nkeep contains sprintf(\"field_%d_padded_to_be_long_enough\", [i]) if some i in numbers.range(1, 40000)\n")
	set, err = policy.Load(context.Background(), big)
	if err != nil {
		t.Fatal(err)
	}
	set.Timeout = 10 * time.Second
	in, _ = set.NewInput(&veil.Event{Source: "s", Vendor: "greenhouse", EventType: "x"}, nil)
	if _, err := set.Decide(context.Background(), "p", in, "d", veil.Processor{}); !errors.Is(err, policy.ErrTooLarge) {
		t.Fatalf("decide: %v, want ErrTooLarge", err)
	}
}
