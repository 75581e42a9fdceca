package redact

import (
	"encoding/json"
	"strings"
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

// jnode is one value of the document: the structure projection walks, so
// that nothing is scanned twice.
type jnode struct {
	off, end    int    // the value's bytes
	key         string // its key in the parent object, unescaped
	keyRaw      string // the key's bytes, quoted as the vendor wrote them
	kind        byte   // '{', '[', '"' (string) or 0 (number, boolean, null)
	first, next int32  // first child, next sibling; -1 for none
	leaf        int32  // index into Doc.leaves, or -1
}

// value scans one value, records it and the leaves in it, and returns its
// node index.
func (sc *scanner) value(key, keyRaw string) int32 {
	sc.ws()
	start := sc.i
	id := int32(len(sc.d.nodes))
	sc.d.nodes = append(sc.d.nodes, jnode{off: start, key: key, keyRaw: keyRaw, first: -1, next: -1, leaf: -1})
	switch c := sc.s[sc.i]; c {
	case '{', '[':
		sc.d.nodes[id].kind = c
		sc.i++
		sc.ws()
		last := int32(-1)
		for sc.s[sc.i] != '}' && sc.s[sc.i] != ']' {
			mark := len(sc.pat)
			var k, kraw string
			if c == '{' {
				kstart := sc.i
				k = sc.str()
				kraw = sc.s[kstart:sc.i]
				sc.ws()
				sc.i++ // ':'
				sc.pat = appendSeg(sc.pat, k, true)
			} else {
				sc.pat = appendSeg(sc.pat, "#", false)
			}
			child := sc.value(k, kraw)
			if last < 0 {
				sc.d.nodes[id].first = child
			} else {
				sc.d.nodes[last].next = child
			}
			last = child
			sc.pat = sc.pat[:mark]
			sc.ws()
			if sc.s[sc.i] == ',' {
				sc.i++
				sc.ws()
			}
		}
		sc.i++
		if last < 0 && len(sc.pat) > 0 {
			sc.d.nodes[id].leaf = sc.leaf(start, "", false) // an empty object or array is a leaf
		}
	case '"':
		sc.d.nodes[id].kind = '"'
		str := sc.str()
		sc.d.nodes[id].leaf = sc.leaf(start, str, true)
	default:
		for sc.i < len(sc.s) && !strings.ContainsRune(",}] \t\r\n", rune(sc.s[sc.i])) {
			sc.i++
		}
		sc.d.nodes[id].leaf = sc.leaf(start, "", false)
	}
	sc.d.nodes[id].end = sc.i
	return id
}

func (sc *scanner) leaf(start int, str string, isStr bool) int32 {
	id, ok := sc.ids[string(sc.pat)]
	if !ok {
		id = len(sc.d.patterns)
		sc.ids[string(sc.pat)] = id
		sc.d.patterns = append(sc.d.patterns, string(sc.pat))
	}
	l := leaf{off: start, end: sc.i, pat: id, isStr: isStr, str: str}
	sc.d.leaves = append(sc.d.leaves, l)
	return int32(len(sc.d.leaves) - 1)
}
