package redact

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/veilhq/veil"
)

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"a.b.c", "jobs.#.id", "custom_fields.*.value", `a\.b`, `a\\.b`, `\#.\*`, "", ".", "a..b", `a\`, "#", "*.*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs, err := parsePath(p)
		if err != nil {
			return
		}
		// Writing the segments back and parsing again gives the same segments.
		var b strings.Builder
		for i, s := range segs {
			if i > 0 {
				b.WriteByte('.')
			}
			switch s.kind {
			case segElems:
				b.WriteByte('#')
			case segAllKeys:
				b.WriteByte('*')
			default:
				escapeKey(&b, s.key)
			}
		}
		again, err := parsePath(b.String())
		if err != nil || len(again) != len(segs) {
			t.Fatalf("%q -> %q does not parse back: %v", p, b.String(), err)
		}
		for i := range segs {
			if again[i] != segs[i] {
				t.Fatalf("%q -> %q: segment %d %v != %v", p, b.String(), i, again[i], segs[i])
			}
		}
	})
}

// FuzzProject: the projector never panics, its output is valid JSON, every
// leaf it outputs is the input's leaf at the same path (or a pseudonym), and
// no leaf the decision dropped is in it.
func FuzzProject(f *testing.F) {
	f.Add([]byte(`{"a":{"b":1,"c":"secret"},"l":[{"x":"1"},{"x":"2","y":"z"}]}`), "a.b,l.#.x", "a.c")
	f.Add([]byte(`{"m":{"k.1":{"v":"x"},"k2":{"v":"y"}},"n":null}`), `m.*.v,m.k\.1`, "n")
	f.Add([]byte(`{"a":[[1,2],[3]],"b":"\u00e9\u003c"}`), "a.#.0,b", "")
	f.Add([]byte(`{"x":1e400,"y":-0}`), "x", "y")
	key := bytes.Repeat([]byte{1}, 32)
	f.Fuzz(func(t *testing.T, payload []byte, keep, pseudo string) {
		doc, err := Parse(payload)
		if err != nil {
			return
		}
		defer doc.Release() // so the next input is indexed into reused slices, as in the hook
		dec := &veil.Decision{Allow: true, Keep: splitPaths(keep), Pseudonymize: splitPaths(pseudo)}
		res, err := doc.Apply(dec, key)
		if err != nil {
			return // a malformed path
		}
		if !json.Valid(res.Body) {
			t.Fatalf("invalid JSON out: %s", res.Body)
		}
		out, err := Parse(res.Body)
		if err != nil {
			t.Fatalf("output is not an object: %s", res.Body)
		}
		defer out.Release()
		in := map[string][]tleaf{} // a path holds several leaves where keys repeat
		for _, l := range doc.testLeaves() {
			in[l.path] = append(in[l.path], l)
		}
		outLeaves := map[string]tleaf{}
		for _, l := range out.testLeaves() {
			outLeaves[l.path] = l
			if l.isStr && strings.HasPrefix(l.str, "ps_") || l.raw == "null" {
				continue // a pseudonym, or the null holding a dropped element's place
			}
			found := false
			for _, src := range in[l.path] {
				found = found || compactJSON(l.raw) == compactJSON(src.raw)
			}
			if !found {
				t.Fatalf("output leaf %q is not the input's leaf at that path", l.path)
			}
		}
		for _, l := range doc.testLeaves() {
			o, ok := outLeaves[l.path]
			if !ok || o.raw == "null" || containsPrefixOf(res.Kept, l) {
				continue
			}
			// Not kept, yet at its path in the output: only as a pseudonym.
			if !o.isStr || !strings.HasPrefix(o.str, "ps_") || (l.isStr && o.str == l.str) {
				t.Fatalf("dropped leaf %q is in the output", l.path)
			}
		}
	})
}

// containsPrefixOf reports whether a kept pattern covers leaf l: the
// pattern's segments are a prefix of the leaf's path, # matching any index.
func containsPrefixOf(kept []string, l tleaf) bool {
	leafSegs, err := parsePath(l.path)
	if err != nil {
		return false
	}
	for _, k := range kept {
		segs, err := parsePath(k)
		if err != nil || len(segs) > len(leafSegs) {
			continue
		}
		match := true
		for i, s := range segs {
			ls := leafSegs[i]
			if !(s == ls || (s.kind == segElems && ls.kind == segKey && isIndex(ls.key))) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func isIndex(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// tleaf is a leaf with its concrete path and JSON, for the checks here.
type tleaf struct {
	path, pattern, str, raw string
	isStr                   bool
}

func (d *Doc) testLeaves() []tleaf {
	out := make([]tleaf, len(d.leaves))
	for i, l := range d.leaves {
		out[i] = tleaf{path: d.pathOf(l.off), pattern: d.patterns[l.pat], str: l.str, raw: d.raw[l.off:l.end], isStr: l.isStr}
	}
	return out
}

func compactJSON(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	return b.String()
}

func splitPaths(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
