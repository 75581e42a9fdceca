package redact

import "github.com/tidwall/gjson"

// scanner indexes the leaves of a document gjson has already validated, in
// one pass. Walking it with gjson's ForEach re-scanned every nested value
// once per level above it, and was the largest cost of a decision.
type scanner struct {
	d   *Doc
	s   string
	i   int
	pat []byte
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
	return gjson.Parse(raw).Str // valid: gjson checked the document
}

// jnode is one value of the document: the structure projection walks, so
// that nothing is scanned twice.
type jnode struct {
	off, end       int32  // the value's bytes
	keyOff, keyEnd int32  // its key's bytes, quoted as the vendor wrote them
	first, next    int32  // first child, next sibling; -1 for none
	leaf           int32  // index into Doc.leaves, or -1
	kind           byte   // '{', '[', '"' (string) or 0 (number, boolean, null)
	key            string // its key in the parent object, unescaped
}

// value scans one value, records it and the leaves in it, and returns its
// node index.
func (sc *scanner) value(key string, keyOff, keyEnd int) int32 {
	sc.ws()
	start := sc.i
	id := int32(len(sc.d.nodes))
	sc.d.nodes = append(sc.d.nodes, jnode{off: int32(start), keyOff: int32(keyOff), keyEnd: int32(keyEnd), key: key, first: -1, next: -1, leaf: -1})
	switch c := sc.s[sc.i]; c {
	case '{', '[':
		sc.d.nodes[id].kind = c
		sc.i++
		sc.ws()
		last := int32(-1)
		for sc.s[sc.i] != '}' && sc.s[sc.i] != ']' {
			mark := len(sc.pat)
			var k string
			kstart, kend := sc.i, sc.i
			if c == '{' {
				k = sc.str()
				kend = sc.i
				sc.ws()
				sc.i++ // ':'
				sc.pat = appendSeg(sc.pat, k, true)
			} else {
				sc.pat = appendSeg(sc.pat, "#", false)
			}
			child := sc.value(k, kstart, kend)
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
	scalar:
		for ; sc.i < len(sc.s); sc.i++ {
			switch sc.s[sc.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				break scalar
			}
		}
		sc.d.nodes[id].leaf = sc.leaf(start, "", false)
	}
	sc.d.nodes[id].end = int32(sc.i)
	return id
}

func (sc *scanner) leaf(start int, str string, isStr bool) int32 {
	k := sc.d.known[string(sc.pat)]
	if k == nil {
		k = &knownPattern{s: string(sc.pat)}
		sc.d.known[k.s] = k
	}
	if k.gen != sc.d.gen {
		k.gen, k.id = sc.d.gen, int32(len(sc.d.patterns))
		sc.d.patterns = append(sc.d.patterns, k.s)
		sc.d.patKnown = append(sc.d.patKnown, k)
	}
	l := leaf{off: int32(start), end: int32(sc.i), pat: k.id, isStr: isStr, str: str}
	sc.d.leaves = append(sc.d.leaves, l)
	return int32(len(sc.d.leaves) - 1)
}
