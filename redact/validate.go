package redact

// Validation of untrusted bodies, before gjson, the index or OPA see them:
// one pass, no recursion, memory bounded by the body's size.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultMaxDepth is the deepest nesting Validate accepts when given 0.
const DefaultMaxDepth = 64

// InvalidError says which rule a body broke and where (a byte offset,
// never a value from the body).
type InvalidError struct {
	Rule   string // "syntax", "utf8", "depth", "duplicate_key", "not_object"
	Offset int
	msg    string
}

func (e *InvalidError) Error() string { return e.msg }

func invalid(rule string, off int, format string, args ...any) *InvalidError {
	return &InvalidError{Rule: rule, Offset: off, msg: fmt.Sprintf(format, args...)}
}

// keyRef is one object key seen by Validate: 8 bytes, so that a body
// holding 90,000 keys costs 720 KB here. Equal hashes are compared by
// content, so a 32-bit hash only costs an occasional extra comparison.
type keyRef struct {
	hash uint32
	off  int32 // the opening quote
}

type validator struct {
	b        []byte
	i        int
	maxDepth int
	values   int
	// keys of the objects still open, each object's from objStart[depth]
	keys     []keyRef
	objStart []int
	scratch  [2][]byte // unescaped keys being compared
}

var validators = sync.Pool{New: func() any { return &validator{} }}

var keySeed = maphash.MakeSeed()

// Validate checks that body is one JSON object and that it is valid UTF-8,
// nests at most maxDepth levels (DefaultMaxDepth when 0) and has no object
// with the same key twice (compared after unescaping). It returns the
// number of values in it (objects, arrays and scalars), a measure of what
// indexing it will cost, or an *InvalidError naming the rule broken.
func Validate(body []byte, maxDepth int) (values int, err error) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	v := validators.Get().(*validator)
	*v = validator{b: body, maxDepth: maxDepth, keys: v.keys[:0], objStart: v.objStart[:0], scratch: v.scratch}
	defer func() {
		v.b = nil
		if cap(v.keys) <= 1<<16 {
			validators.Put(v)
		}
	}()
	v.ws()
	if v.i >= len(body) || body[v.i] != '{' {
		return 0, invalid("not_object", v.i, "The body is not a JSON object.")
	}
	if err := v.run(); err != nil {
		return 0, err
	}
	v.ws()
	if v.i != len(body) {
		return 0, invalid("syntax", v.i, "The body is not valid JSON: unexpected data after the object at byte %d.", v.i)
	}
	return v.values, nil
}

// run parses one value iteratively; containers are a stack of their kinds.
func (v *validator) run() error {
	var stack []byte // '{' or '['
	expectValue := true
	for {
		v.ws()
		if v.i >= len(v.b) {
			return invalid("syntax", v.i, "The body is not valid JSON: it ends early.")
		}
		if expectValue {
			c := v.b[v.i]
			v.values++
			switch {
			case c == '{' || c == '[':
				if len(stack) >= v.maxDepth {
					return invalid("depth", v.i, "The body nests deeper than %d levels.", v.maxDepth)
				}
				stack = append(stack, c)
				v.i++
				if c == '{' {
					v.objStart = append(v.objStart, len(v.keys))
				}
				v.ws()
				if v.i < len(v.b) && (v.b[v.i] == '}' && c == '{' || v.b[v.i] == ']' && c == '[') {
					expectValue = false // empty: closed below
					break
				}
				if c == '{' {
					if err := v.key(); err != nil {
						return err
					}
				}
				continue
			case c == '"':
				if _, _, err := v.str(false); err != nil {
					return err
				}
			case c == 't':
				if err := v.lit("true"); err != nil {
					return err
				}
			case c == 'f':
				if err := v.lit("false"); err != nil {
					return err
				}
			case c == 'n':
				if err := v.lit("null"); err != nil {
					return err
				}
			case c == '-' || (c >= '0' && c <= '9'):
				if err := v.num(); err != nil {
					return err
				}
			default:
				return invalid("syntax", v.i, "The body is not valid JSON: unexpected character at byte %d.", v.i)
			}
			expectValue = false
			if len(stack) == 0 {
				return nil
			}
			continue
		}
		// After a value: a comma, or the end of the innermost container.
		top := stack[len(stack)-1]
		switch c := v.b[v.i]; {
		case c == ',':
			v.i++
			if top == '{' {
				v.ws()
				if err := v.key(); err != nil {
					return err
				}
			}
			expectValue = true
		case c == '}' && top == '{', c == ']' && top == '[':
			if top == '{' {
				if err := v.closeObject(); err != nil {
					return err
				}
			}
			v.i++
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return nil
			}
		default:
			return invalid("syntax", v.i, "The body is not valid JSON: unexpected character at byte %d.", v.i)
		}
	}
}

// key reads `"key" :` and records the key of the innermost object.
func (v *validator) key() error {
	if v.i >= len(v.b) || v.b[v.i] != '"' {
		return invalid("syntax", v.i, "The body is not valid JSON: an object key is expected at byte %d.", v.i)
	}
	start := v.i
	h, _, err := v.str(true)
	if err != nil {
		return err
	}
	v.keys = append(v.keys, keyRef{hash: uint32(h), off: int32(start)})
	v.ws()
	if v.i >= len(v.b) || v.b[v.i] != ':' {
		return invalid("syntax", v.i, "The body is not valid JSON: ':' is expected at byte %d.", v.i)
	}
	v.i++
	return nil
}

// closeObject checks the keys of the innermost object for duplicates and
// forgets them.
func (v *validator) closeObject() error {
	from := v.objStart[len(v.objStart)-1]
	v.objStart = v.objStart[:len(v.objStart)-1]
	ks := v.keys[from:]
	defer func() { v.keys = v.keys[:from] }()
	if len(ks) < 2 {
		return nil
	}
	if len(ks) <= 8 {
		for i := range ks {
			for j := i + 1; j < len(ks); j++ {
				if ks[i].hash == ks[j].hash && v.sameKey(ks[i], ks[j]) {
					return v.duplicate(ks[j])
				}
			}
		}
		return nil
	}
	slices.SortFunc(ks, func(a, b keyRef) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.off - b.off)
	})
	for i := 1; i < len(ks); i++ {
		// Equal hashes are next to each other; a run longer than two is a
		// 2^-64 chance, checked all the same.
		for j := i - 1; j >= 0 && ks[j].hash == ks[i].hash; j-- {
			if v.sameKey(ks[j], ks[i]) {
				return v.duplicate(ks[i])
			}
		}
	}
	return nil
}

func (v *validator) duplicate(k keyRef) error {
	return invalid("duplicate_key", int(k.off), "The body has an object with the same key twice (at byte %d); Veil refuses it because two parsers may keep different copies.", k.off)
}

func (v *validator) sameKey(a, b keyRef) bool {
	ra, aEsc := quoted(v.b, int(a.off))
	rb, bEsc := quoted(v.b, int(b.off))
	if !aEsc && !bEsc {
		return bytes.Equal(ra, rb)
	}
	v.scratch[0] = unescapeKey(v.scratch[0][:0], ra)
	v.scratch[1] = unescapeKey(v.scratch[1][:0], rb)
	return bytes.Equal(v.scratch[0], v.scratch[1])
}

// quoted returns the quoted string starting at off (already validated)
// and whether it has escapes.
func quoted(b []byte, off int) ([]byte, bool) {
	esc := false
	for i := off + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			esc = true
			i++
		case '"':
			return b[off : i+1], esc
		}
	}
	return b[off:], esc
}

// unescapeKey appends the text of a quoted JSON string Validate accepted.
func unescapeKey(dst, quoted []byte) []byte {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return append(dst, quoted...)
	}
	return append(dst, s...)
}

// str reads a string at v.i: valid UTF-8, no raw control characters, valid
// escapes, no unpaired surrogate. With hash (keys) it returns the hash of
// the unescaped text; it always reports whether the string has escapes.
func (v *validator) str(hash bool) (uint64, bool, error) {
	start := v.i
	v.i++
	escaped := false
	for {
		if v.i >= len(v.b) {
			return 0, false, invalid("syntax", start, "The body is not valid JSON: a string starting at byte %d is not closed.", start)
		}
		c := v.b[v.i]
		switch {
		case c == '"':
			v.i++
			if !hash {
				return 0, escaped, nil
			}
			if !escaped {
				return maphash.Bytes(keySeed, v.b[start+1:v.i-1]), false, nil
			}
			v.scratch[0] = unescapeKey(v.scratch[0][:0], v.b[start:v.i])
			return maphash.Bytes(keySeed, v.scratch[0]), true, nil
		case c == '\\':
			escaped = true
			if err := v.escape(); err != nil {
				return 0, false, err
			}
		case c < 0x20:
			return 0, false, invalid("syntax", v.i, "The body is not valid JSON: a control character inside a string at byte %d.", v.i)
		case c < utf8.RuneSelf:
			v.i++
		default:
			r, size := utf8.DecodeRune(v.b[v.i:])
			if r == utf8.RuneError && size <= 1 {
				return 0, false, invalid("utf8", v.i, "The body is not valid UTF-8 (at byte %d).", v.i)
			}
			v.i += size
		}
	}
}

// escape reads one escape sequence at v.i (the backslash).
func (v *validator) escape() error {
	at := v.i
	if v.i+1 >= len(v.b) {
		return invalid("syntax", at, "The body is not valid JSON: a bad escape at byte %d.", at)
	}
	switch v.b[v.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		v.i += 2
		return nil
	case 'u':
		r, ok := hex4(v.b, v.i+2)
		if !ok {
			return invalid("syntax", at, "The body is not valid JSON: a bad \\u escape at byte %d.", at)
		}
		v.i += 6
		if !utf16.IsSurrogate(r) {
			return nil
		}
		// A high surrogate must be followed by an escaped low one.
		if r < 0xDC00 && v.i+1 < len(v.b) && v.b[v.i] == '\\' && v.b[v.i+1] == 'u' {
			if r2, ok := hex4(v.b, v.i+2); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				v.i += 6
				return nil
			}
		}
		return invalid("utf8", at, "The body is not valid UTF-8: an unpaired surrogate escape at byte %d.", at)
	}
	return invalid("syntax", at, "The body is not valid JSON: a bad escape at byte %d.", at)
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (v *validator) lit(word string) error {
	if !bytes.HasPrefix(v.b[v.i:], []byte(word)) {
		return invalid("syntax", v.i, "The body is not valid JSON: unexpected character at byte %d.", v.i)
	}
	v.i += len(word)
	return nil
}

// num reads -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
func (v *validator) num() error {
	start := v.i
	bad := func() error {
		return invalid("syntax", start, "The body is not valid JSON: a bad number at byte %d.", start)
	}
	if v.b[v.i] == '-' {
		v.i++
	}
	switch {
	case v.i < len(v.b) && v.b[v.i] == '0':
		v.i++
	case v.i < len(v.b) && v.b[v.i] >= '1' && v.b[v.i] <= '9':
		v.digits()
	default:
		return bad()
	}
	if v.i < len(v.b) && v.b[v.i] == '.' {
		v.i++
		if v.digits() == 0 {
			return bad()
		}
	}
	if v.i < len(v.b) && (v.b[v.i] == 'e' || v.b[v.i] == 'E') {
		v.i++
		if v.i < len(v.b) && (v.b[v.i] == '+' || v.b[v.i] == '-') {
			v.i++
		}
		if v.digits() == 0 {
			return bad()
		}
	}
	return nil
}

func (v *validator) digits() int {
	n := 0
	for v.i < len(v.b) && v.b[v.i] >= '0' && v.b[v.i] <= '9' {
		v.i++
		n++
	}
	return n
}

func (v *validator) ws() {
	for v.i < len(v.b) {
		switch v.b[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

// TopLevel returns the raw JSON text of the members of body's top-level
// object named by keys (nil where absent), without parsing the rest: nested
// values are skipped with a counter, in one pass and constant memory. It is
// for schemes whose signature travels in the body (Lever), which must be
// checked before the body is validated. A body that is not an object, a
// wanted key seen twice, or a malformed member is an *InvalidError.
func TopLevel(body []byte, keys ...string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	v := &validator{b: body, maxDepth: 1 << 30}
	v.ws()
	if v.i >= len(body) || body[v.i] != '{' {
		return nil, invalid("not_object", v.i, "The body is not a JSON object.")
	}
	v.i++
	v.ws()
	if v.i < len(body) && body[v.i] == '}' {
		return out, nil
	}
	for {
		v.ws()
		kstart := v.i
		if v.i >= len(body) || body[v.i] != '"' {
			return nil, invalid("syntax", v.i, "The body is not valid JSON: an object key is expected at byte %d.", v.i)
		}
		if _, _, err := v.str(false); err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(body[kstart:v.i], &key); err != nil {
			return nil, invalid("syntax", kstart, "The body is not valid JSON at byte %d.", kstart)
		}
		v.ws()
		if v.i >= len(body) || body[v.i] != ':' {
			return nil, invalid("syntax", v.i, "The body is not valid JSON: ':' is expected at byte %d.", v.i)
		}
		v.i++
		v.ws()
		vstart := v.i
		if err := v.skip(); err != nil {
			return nil, err
		}
		if i := slices.Index(keys, key); i >= 0 {
			if out[i] != nil {
				return nil, invalid("duplicate_key", kstart, "The body has an object with the same key twice (at byte %d); Veil refuses it because two parsers may keep different copies.", kstart)
			}
			out[i] = body[vstart:v.i]
		}
		v.ws()
		if v.i >= len(body) {
			return nil, invalid("syntax", v.i, "The body is not valid JSON: it ends early.")
		}
		switch body[v.i] {
		case ',':
			v.i++
		case '}':
			return out, nil
		default:
			return nil, invalid("syntax", v.i, "The body is not valid JSON: unexpected character at byte %d.", v.i)
		}
	}
}

// skip moves past one value, counting brackets outside strings.
func (v *validator) skip() error {
	depth := 0
	for v.i < len(v.b) {
		switch c := v.b[v.i]; c {
		case '"':
			if _, _, err := v.str(false); err != nil {
				return err
			}
		case '{', '[':
			depth++
			v.i++
		case '}', ']':
			if depth == 0 {
				return nil // the end of the enclosing object
			}
			depth--
			v.i++
		case ',':
			if depth == 0 {
				return nil
			}
			v.i++
		default:
			v.i++
		}
		if depth == 0 && v.i > 0 && (v.b[v.i-1] == '"' || v.b[v.i-1] == '}' || v.b[v.i-1] == ']') {
			return nil
		}
	}
	return invalid("syntax", v.i, "The body is not valid JSON: it ends early.")
}
