package redact

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// scanner indexes the leaves of a document gjson has already validated, in
// one pass. Walking it with gjson's ForEach re-scanned every nested value
// once per level above it, and was the largest cost of a decision.
type scanner struct {
	d   *Doc
	s   string
	i   int
	pat []byte
	ids map[string]int
}

func (sc *scanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// str scans the string at sc.i and returns its unescaped text.
func (sc *scanner) str() string {
	start := sc.i
	sc.i++
	escaped := false
	for sc.s[sc.i] != '"' {
		if sc.s[sc.i] == '\\' {
			escaped = true
			sc.i++
		}
		sc.i++
	}
	sc.i++
	raw := sc.s[start:sc.i]
	if !escaped {
		return raw[1 : len(raw)-1]
	}
	var out string
	_ = json.Unmarshal([]byte(raw), &out) // valid: gjson checked the document
	return out
}

// value scans one value and records the leaves in it.
func (sc *scanner) value() {
	sc.ws()
	start := sc.i
	switch c := sc.s[sc.i]; c {
	case '{', '[':
		sc.i++
		sc.ws()
		n := 0
		for sc.s[sc.i] != '}' && sc.s[sc.i] != ']' {
			mark := len(sc.pat)
			if c == '{' {
				key := sc.str()
				sc.ws()
				sc.i++ // ':'
				sc.pat = appendSeg(sc.pat, key, true)
			} else {
				sc.pat = appendSeg(sc.pat, "#", false)
			}
			sc.value()
			sc.pat = sc.pat[:mark]
			n++
			sc.ws()
			if sc.s[sc.i] == ',' {
				sc.i++
				sc.ws()
			}
		}
		sc.i++
		if n == 0 && len(sc.pat) > 0 {
			sc.leaf(start, "", false) // an empty object or array is a leaf
		}
	case '"':
		sc.leaf(start, sc.str(), true)
	default:
		for sc.i < len(sc.s) && !strings.ContainsRune(",}] \t\r\n", rune(sc.s[sc.i])) {
			sc.i++
		}
		sc.leaf(start, "", false)
	}
}

func (sc *scanner) leaf(start int, str string, isStr bool) {
	id, ok := sc.ids[string(sc.pat)]
	if !ok {
		id = len(sc.d.patterns)
		sc.ids[string(sc.pat)] = id
		sc.d.patterns = append(sc.d.patterns, string(sc.pat))
	}
	l := leaf{off: start, end: sc.i, pat: id, isStr: isStr, str: str}
	if isStr && utf8.RuneCountInString(str) >= minLeak {
		l.lower = strings.ToLower(str)
		l.digits = phoneDigits(str)
	}
	sc.d.leaves = append(sc.d.leaves, l)
}
