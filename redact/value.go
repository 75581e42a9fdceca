package redact

import (
	"strconv"
	"strings"
)

// Value is one value of a parsed document, for reading it: what the
// normalisers use, walking the index built once per event instead of
// scanning the bytes again for every field. The zero Value is absent.
type Value struct {
	d *Doc
	n int32 // node index, 0 with d nil when absent
}

// Raw returns the whole document's JSON text.
func (d *Doc) Raw() string { return d.raw }

// Root returns the document's top-level object.
func (d *Doc) Root() Value { return Value{d: d, n: 0} }

// Exists reports whether the value is present (null is present).
func (v Value) Exists() bool { return v.d != nil }

// Get returns the value at a dotted path of object keys and array indices
// below v ("application.candidate.id", "jobs.0.name"); absent if any step
// is missing.
func (v Value) Get(path string) Value {
	for v.d != nil && path != "" {
		seg := path
		if i := strings.IndexByte(path, '.'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		v = v.child(seg)
	}
	return v
}

// child returns the value under key seg of an object, or at index seg of
// an array.
func (v Value) child(seg string) Value {
	jn := &v.d.nodes[v.n]
	switch jn.kind {
	case '{':
		for c := jn.first; c >= 0; c = v.d.nodes[c].next {
			if v.d.nodes[c].key == seg {
				return Value{d: v.d, n: c}
			}
		}
	case '[':
		i := 0
		for c := jn.first; c >= 0; c = v.d.nodes[c].next {
			if strconv.Itoa(i) == seg {
				return Value{d: v.d, n: c}
			}
			i++
		}
	}
	return Value{}
}

// Text returns a string's text, or a number's or boolean's JSON, and true;
// "" and false for null, objects, arrays and absent values. What a
// normaliser reads as an id or a name.
func (v Value) Text() (string, bool) {
	if v.d == nil {
		return "", false
	}
	jn := &v.d.nodes[v.n]
	switch jn.kind {
	case '"':
		return v.d.leaves[jn.leaf].str, true
	case 0:
		raw := v.d.raw[jn.off:jn.end]
		if raw == "null" {
			return "", false
		}
		return raw, true
	}
	return "", false
}

// Ptr returns Text as a pointer, nil when there is no text or it is "".
func (v Value) Ptr() *string {
	if s, ok := v.Text(); ok && s != "" {
		return &s
	}
	return nil
}

// IsNull reports whether the value is JSON null.
func (v Value) IsNull() bool {
	return v.d != nil && v.d.nodes[v.n].kind == 0 && v.d.raw[v.d.nodes[v.n].off:v.d.nodes[v.n].end] == "null"
}

// Raw returns the value's JSON text as the vendor wrote it.
func (v Value) Raw() string {
	if v.d == nil {
		return ""
	}
	return v.d.raw[v.d.nodes[v.n].off:v.d.nodes[v.n].end]
}

// Each calls fn with every element of an array (nothing for other values).
func (v Value) Each(fn func(Value)) {
	if v.d == nil || v.d.nodes[v.n].kind != '[' {
		return
	}
	for c := v.d.nodes[v.n].first; c >= 0; c = v.d.nodes[c].next {
		fn(Value{d: v.d, n: c})
	}
}

// IsArray reports whether the value is an array.
func (v Value) IsArray() bool { return v.d != nil && v.d.nodes[v.n].kind == '[' }

// IsObject reports whether the value is an object.
func (v Value) IsObject() bool { return v.d != nil && v.d.nodes[v.n].kind == '{' }
