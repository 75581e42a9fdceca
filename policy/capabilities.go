package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Policies are data, written by people and synced by jobs that are not
// Veil's, and they run on every webhook with the whole payload in input:
// a built-in that reaches the network (http.send, net.lookup_ip_addr)
// would let a policy send that payload anywhere, past the leak guard, the
// SSRF guard and the audit log. So policies compile against OPA's
// capabilities minus every built-in that reaches outside the evaluation or
// depends on more than its input: the network, the runtime, the clock and
// randomness (the decision time is input.received_at, so a decision can be
// replayed and tested).

// refusedNames are the built-ins a policy may not call besides OPA's
// non-deterministic ones (http.send, net.lookup_ip_addr, opa.runtime,
// time.now_ns, rand.intn, uuid.rfc4122, io.jwt.encode_sign…): the rest of
// net.*, built-ins that read the clock when the input gives no time, and
// rego.parse_module, which no decision needs.
var refusedNames = []string{"net.", "rego.parse_module", "providers.aws.sign_req", "io.jwt.decode_verify",
	"crypto.x509.parse_and_verify_certificates", "crypto.x509.parse_and_verify_certificates_with_options"}

// Refused reports whether a policy may not call the built-in name.
func Refused(name string) bool {
	if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic {
		return true
	}
	for _, r := range refusedNames {
		if name == r || (strings.HasSuffix(r, ".") && strings.HasPrefix(name, r)) {
			return true
		}
	}
	return false
}

// refusedReason says, for a user, why a built-in is refused.
func refusedReason(name string) string {
	switch {
	case strings.HasPrefix(name, "http."), strings.HasPrefix(name, "net."), strings.HasPrefix(name, "providers."):
		return "it reaches the network"
	case name == "opa.runtime":
		return "it reads the process's environment and configuration"
	case name == "rego.parse_module":
		return "no decision needs to compile policies"
	case name == "time.now_ns", strings.HasPrefix(name, "crypto.x509.parse_and_verify"), name == "io.jwt.decode_verify":
		return "it reads the clock (the decision time is input.received_at)"
	}
	return "its result is not a function of the input"
}

var (
	capsOnce sync.Once
	caps     *ast.Capabilities
)

// Capabilities returns what Veil's policies may use: this OPA's
// capabilities without the refused built-ins, and no host a remote schema
// may be fetched from. The result is shared: do not modify it.
func Capabilities() *ast.Capabilities {
	capsOnce.Do(func() {
		caps = ast.CapabilitiesForThisVersion()
		caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool { return Refused(b.Name) })
		caps.AllowNet = []string{}
	})
	return caps
}

// CapabilitiesJSON is Capabilities as OPA's capabilities file, for
// `opa check --capabilities`.
func CapabilitiesJSON() ([]byte, error) {
	b, err := json.MarshalIndent(Capabilities(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode capabilities: %w", err)
	}
	return append(b, '\n'), nil
}

// explainRefused rewrites the compiler's "undefined function" errors for
// refused built-ins into a sentence that says why; file and line stay.
func explainRefused(errs ast.Errors) error {
	for _, e := range errs {
		name, ok := strings.CutPrefix(e.Message, "undefined function ")
		if ok && Refused(name) {
			e.Message = fmt.Sprintf("%s is not allowed in Veil policies: %s", name, refusedReason(name))
		}
	}
	return errs
}
