package policy

// Authoring safety: policies are type-checked against the input Veil
// gives them (with the normal form's JSON Schema under input.event), and
// the paths and categories a format "event" policy keeps must exist.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policies"
)

// inputSchema returns the JSON Schema of input for destination and lookup
// policies: the keys Veil sets, the normal form under event, and any JSON
// object under payload. A reference to a key that is not there (a typo in
// input.event.aplication) fails to compile.
func inputSchema() (any, error) {
	var event map[string]any
	if err := json.Unmarshal(policies.EventSchema(), &event); err != nil {
		return nil, fmt.Errorf("normal form schema: %w", err)
	}
	delete(event, "$schema")
	delete(event, "$id")
	str := map[string]any{"type": "string"}
	return map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"properties": map[string]any{
			"source": str, "vendor": str, "event_type": str, "received_at": str, "destination": str,
			"consumer": str, "purpose": str, "event_id": str,
			"processor": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
				"name": str, "dpa": str, "purpose": str, "legal_basis": str}},
			"event":   event,
			"payload": map[string]any{"type": "object"},
		},
	}, nil
}

// schemaSet is the compiler's schema set: inputSchema as input's.
func schemaSet() (*ast.SchemaSet, error) {
	s, err := inputSchema()
	if err != nil {
		return nil, err
	}
	ss := ast.NewSchemaSet()
	ss.Put(ast.SchemaRootRef, s)
	return ss, nil
}

// PathError is a keep, pseudonymize or category entry of a policy that no
// event can match, with where it is written.
type PathError struct {
	File string
	Row  int
	Rule string // keep, pseudonymize, keep_categories, pseudonymize_categories
	Path string
	Why  string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("%s:%d: %s entry %q %s", e.File, e.Row, e.Rule, e.Path, e.Why)
}

// CheckPaths returns, for every package whose format rule is "event", each
// constant path of its keep and pseudonymize rules that addresses no field
// of the normal form, and each category of keep_categories and
// pseudonymize_categories under which no field lies.
func CheckPaths(modules map[string]*ast.Module) []error {
	leaves := policies.EventCategories()
	var errs []error
	byPkg := map[string][]*ast.Module{}
	for _, m := range modules {
		byPkg[m.Package.Path.String()] = append(byPkg[m.Package.Path.String()], m)
	}
	for _, ms := range byPkg {
		if !constantFormat(ms, veil.FormatEvent) {
			continue
		}
		for _, m := range ms {
			for _, r := range m.Rules {
				rule := r.Head.Name.String()
				if rule == "" && len(r.Head.Reference) > 0 {
					rule = r.Head.Reference[0].String()
				}
				var check func(string) string
				switch rule {
				case "keep", "pseudonymize":
					check = func(p string) string { return eventPathProblem(p, leaves) }
				case "keep_categories", "pseudonymize_categories":
					check = func(c string) string { return categoryProblem(c, leaves) }
				default:
					continue
				}
				for _, t := range constantValues(r, ms) {
					s, ok := t.Value.(ast.String)
					if !ok {
						continue
					}
					if why := check(string(s)); why != "" {
						loc := t.Location
						if loc == nil {
							loc = r.Location
						}
						errs = append(errs, &PathError{File: loc.File, Row: loc.Row, Rule: rule, Path: string(s), Why: why})
					}
				}
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// constantFormat reports whether the package sets format to f as a constant.
func constantFormat(ms []*ast.Module, f string) bool {
	for _, m := range ms {
		for _, r := range m.Rules {
			if r.Head.Name.String() == "format" && r.Head.Value != nil {
				if s, ok := r.Head.Value.Value.(ast.String); ok && string(s) == f {
					return true
				}
			}
		}
	}
	return false
}

// constantValues returns the terms a rule can contribute that are written
// as constants: its head (a string, or a set or array of strings), and the
// elements of a collection its head variable is drawn from (`some p in
// {...}`, or in another rule of the package whose value is such a
// collection).
func constantValues(r *ast.Rule, pkg []*ast.Module) []*ast.Term {
	head := r.Head.Value
	if r.Head.Key != nil {
		head = r.Head.Key // keep contains "x"
	}
	if head == nil {
		return nil
	}
	var out []*ast.Term
	collect := func(t *ast.Term) {
		switch v := t.Value.(type) {
		case ast.String:
			out = append(out, t)
		case ast.Set:
			v.Foreach(func(x *ast.Term) { out = append(out, x) })
		case *ast.Array:
			v.Foreach(func(x *ast.Term) { out = append(out, x) })
		case ast.Ref:
			// another rule of the package: its constant value
			name := v[len(v)-1].Value
			for _, m := range pkg {
				for _, o := range m.Rules {
					if o.Head.Name.Equal(name) && o.Head.Value != nil {
						switch ov := o.Head.Value.Value.(type) {
						case ast.Set:
							ov.Foreach(func(x *ast.Term) { out = append(out, x) })
						case *ast.Array:
							ov.Foreach(func(x *ast.Term) { out = append(out, x) })
						}
					}
				}
			}
		}
	}
	if _, isVar := head.Value.(ast.Var); !isVar {
		collect(head)
		return out
	}
	// keep contains p if { some p in <collection> }
	for _, expr := range r.Body {
		if sd, ok := expr.Terms.(*ast.SomeDecl); ok {
			for _, sym := range sd.Symbols {
				if call, ok := sym.Value.(ast.Call); ok && len(call) == 3 && call[1].Equal(head) {
					collect(call[2])
				}
			}
		}
	}
	return out
}

// eventPathProblem says why a path matches no field of the normal form,
// or "" when it matches one.
func eventPathProblem(p string, leaves map[string]string) string {
	segs := strings.Split(p, ".")
	for leaf := range leaves {
		if coversOrUnder(segs, strings.Split(leaf, ".")) {
			return ""
		}
	}
	return "addresses no field of the normal form (see `veil policy schema`)"
}

// coversOrUnder reports whether path (with * and #) addresses the leaf or
// an object above it.
func coversOrUnder(path, leaf []string) bool {
	if len(path) > len(leaf) {
		return false
	}
	for i, s := range path {
		switch {
		case s == leaf[i], s == "*" && leaf[i] != "#":
		case leaf[i] == "#" && (s == "#" || isIndex(s)):
		default:
			return false
		}
	}
	return true
}

func isIndex(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// categoryProblem says why no field of the normal form lies under c.
func categoryProblem(c string, leaves map[string]string) string {
	for _, cat := range leaves {
		if veil.Under(cat, c) {
			return ""
		}
	}
	return "is a category no field of the normal form has or lies under (see `veil policy schema`)"
}

// untested returns the destination packages (veil.destinations.*) that no
// test rule refers to.
func untested(modules map[string]*ast.Module) []string {
	tested := map[string]bool{}
	var dests []string
	for _, m := range modules {
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		isTest := strings.HasSuffix(pkg, "_test")
		if !isTest && strings.HasPrefix(pkg, "veil.destinations.") {
			hasRules := false
			for _, r := range m.Rules {
				if !strings.HasPrefix(r.Head.Name.String(), "test_") {
					hasRules = true
				}
			}
			if hasRules && !slices.Contains(dests, pkg) {
				dests = append(dests, pkg)
			}
		}
		for _, r := range m.Rules {
			if !strings.HasPrefix(r.Head.Name.String(), "test_") {
				continue
			}
			ast.WalkRefs(r, func(ref ast.Ref) bool {
				if ref.HasPrefix(ast.DefaultRootRef) {
					tested[strings.TrimPrefix(ref.String(), "data.")] = true
				}
				return false
			})
			tested[strings.TrimSuffix(pkg, "_test")] = true
		}
		for _, imp := range m.Imports {
			if isTest {
				tested[strings.TrimPrefix(imp.Path.String(), "data.")] = true
			}
		}
	}
	var out []string
	for _, d := range dests {
		ok := false
		for t := range tested {
			if t == d || strings.HasPrefix(t, d+".") {
				ok = true
			}
		}
		if !ok {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}
