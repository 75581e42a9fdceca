package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

// ErrNotObject is returned by Parse for a payload that is not a JSON object.
var ErrNotObject = errors.New("payload is not a JSON object")

// Doc is a parsed payload: its bytes and every leaf (scalar, or empty
// object or array) in document order. Parse it once per event and apply
// it once per destination.
type Doc struct {
	raw    []byte
	leaves []leaf
}

type leaf struct {
	path    string // concrete: a.list.0.name
	pattern string // with # for indices: a.list.#.name
	str     string // the unescaped value of a string leaf
	raw     string // the leaf's JSON
	isStr   bool
}

// Parse checks that payload is one JSON object and indexes its leaves.
func Parse(payload []byte) (*Doc, error) {
	if !gjson.ValidBytes(payload) {
		return nil, ErrNotObject
	}
	root := gjson.ParseBytes(payload)
	if !root.IsObject() {
		return nil, ErrNotObject
	}
	d := &Doc{raw: payload}
	d.walk(root, "", "")
	return d, nil
}

func (d *Doc) walk(r gjson.Result, path, pattern string) {
	if r.IsObject() || r.IsArray() {
		empty := true
		i := 0
		r.ForEach(func(k, v gjson.Result) bool {
			empty = false
			if r.IsArray() {
				idx := strconv.Itoa(i)
				i++
				d.walk(v, join(path, idx, false), join(pattern, "#", false))
			} else {
				d.walk(v, join(path, k.Str, true), join(pattern, k.Str, true))
			}
			return true
		})
		if !empty || path == "" {
			return
		}
	}
	d.leaves = append(d.leaves, leaf{path: path, pattern: pattern, str: r.Str, raw: r.Raw, isStr: r.Type == gjson.String})
}

// join appends one segment to a path, escaping a key.
func join(path, seg string, isKey bool) string {
	var b strings.Builder
	b.Grow(len(path) + len(seg) + 2)
	if path != "" {
		b.WriteString(path)
		b.WriteByte('.')
	}
	if isKey {
		escapeKey(&b, seg)
	} else {
		b.WriteString(seg)
	}
	return b.String()
}

// Paths returns the distinct leaf patterns of the payload, in document
// order: what schema drift compares.
func (d *Doc) Paths() []string {
	seen := make(map[string]bool, len(d.leaves))
	var out []string
	for _, l := range d.leaves {
		if !seen[l.pattern] {
			seen[l.pattern] = true
			out = append(out, l.pattern)
		}
	}
	return out
}

// Result is what one destination would receive.
type Result struct {
	Body          []byte   // the outbound JSON
	Kept          []string // path patterns copied as they were
	Dropped       []string // leaf patterns not copied (pseudonymised ones included)
	Pseudonymized []string // path patterns replaced by pseudonyms
	// LeakPath names the first dropped field whose value still appears in
	// Body; "" when the leak guard passed. It never holds the value.
	LeakPath string
}

// Apply projects the document for a decision: the kept paths copied byte
// for byte in the vendor's shape and key order, the pseudonymised paths
// replaced by Pseudonym(key, value), or dec.Body instead when the policy
// gives one. Then it runs the leak guard. key is the destination's
// pseudonym key (DestinationKey). A malformed path is an error.
func (d *Doc) Apply(dec *veil.Decision, key []byte) (*Result, error) {
	root := &node{}
	for _, p := range dec.Keep {
		if err := root.insert(p, false); err != nil {
			return nil, fmt.Errorf("keep %q: %w", p, err)
		}
	}
	for _, p := range dec.Pseudonymize {
		if err := root.insert(p, true); err != nil {
			return nil, fmt.Errorf("pseudonymize %q: %w", p, err)
		}
	}
	pr := projector{key: key, keptLeaves: map[string]bool{}, keptValues: map[string]bool{}, exempt: dec.LeakExempt}
	buf := make([]byte, 0, 256)
	buf, ok := pr.emit(buf, gjson.ParseBytes(d.raw), []*node{root}, "", "")
	if !ok {
		buf = append(buf[:0], "{}"...)
	}
	res := &Result{Body: buf, Kept: dedup(pr.kept), Pseudonymized: dedup(pr.pseudo)}
	if dec.Body != nil {
		res.Body = dec.Body
	}
	var dropped []string
	for _, l := range d.leaves {
		if !pr.keptLeaves[l.path] {
			dropped = append(dropped, l.pattern)
		}
	}
	res.Dropped = dedup(dropped)
	res.LeakPath = d.leak(res.Body, &pr)
	return res, nil
}

// node is a trie of parsed paths.
type node struct {
	keep, pseudo bool
	keys         map[string]*node
	elems        *node // #
	allKeys      *node // *
}

func (n *node) insert(path string, pseudo bool) error {
	segs, err := parsePath(path)
	if err != nil {
		return err
	}
	for _, s := range segs {
		var next **node
		switch s.kind {
		case segElems:
			next = &n.elems
		case segAllKeys:
			next = &n.allKeys
		default:
			if n.keys == nil {
				n.keys = map[string]*node{}
			}
			c := n.keys[s.key]
			if c == nil {
				c = &node{}
				n.keys[s.key] = c
			}
			n = c
			continue
		}
		if *next == nil {
			*next = &node{}
		}
		n = *next
	}
	if pseudo {
		n.pseudo = true
	} else {
		n.keep = true
	}
	return nil
}

type projector struct {
	key        []byte
	kept       []string        // patterns of kept subtrees
	pseudo     []string        // patterns of pseudonymised values
	keptLeaves map[string]bool // concrete paths of leaves copied as they were
	keptValues map[string]bool // their string values: the policy allowed these
	exempt     []string        // leak_exempt patterns
}

// emit appends the projection of r under the trie nodes ns to buf and
// reports whether it wrote anything.
func (p *projector) emit(buf []byte, r gjson.Result, ns []*node, path, pattern string) ([]byte, bool) {
	keep := false
	for _, n := range ns {
		if n.pseudo {
			p.pseudo = append(p.pseudo, pattern)
			return strconv.AppendQuote(buf, Pseudonym(p.key, valueText(r))), true
		}
		keep = keep || n.keep
	}
	if keep {
		p.kept = append(p.kept, pattern)
		p.markKept(r, path)
		return appendCompact(buf, r.Raw), true
	}
	isArr := r.IsArray()
	if !isArr && !r.IsObject() {
		return buf, false // the path goes deeper than this scalar
	}
	start := len(buf)
	if isArr {
		buf = append(buf, '[')
	} else {
		buf = append(buf, '{')
	}
	wrote := false
	i := -1
	var child []*node
	r.ForEach(func(k, v gjson.Result) bool {
		child = child[:0]
		var seg, pseg string
		if isArr {
			i++
			seg = strconv.Itoa(i)
			pseg = seg // an explicit index stays in the reported pattern
			for _, n := range ns {
				if n.elems != nil {
					child = append(child, n.elems)
					pseg = "#"
				}
				if c := n.keys[seg]; c != nil {
					child = append(child, c)
				}
			}
		} else {
			seg, pseg = k.Str, k.Str
			for _, n := range ns {
				if n.allKeys != nil {
					child = append(child, n.allKeys)
				}
				if c := n.keys[seg]; c != nil {
					child = append(child, c)
				}
			}
		}
		if isArr {
			// Every position is kept so indices stay the vendor's: an
			// element with nothing kept becomes null.
			if i > 0 {
				buf = append(buf, ',')
			}
			var ok bool
			if len(child) > 0 {
				buf, ok = p.emit(buf, v, append([]*node(nil), child...), join(path, seg, false), join(pattern, pseg, false))
			}
			if !ok {
				buf = append(buf, "null"...)
			}
			wrote = wrote || ok
			return true
		}
		if len(child) == 0 {
			return true
		}
		mark := len(buf)
		if wrote {
			buf = append(buf, ',')
		}
		buf = append(buf, k.Raw...)
		buf = append(buf, ':')
		var ok bool
		buf, ok = p.emit(buf, v, append([]*node(nil), child...), join(path, seg, true), join(pattern, pseg, true))
		if ok {
			wrote = true
		} else {
			buf = buf[:mark]
		}
		return true
	})
	if !wrote {
		return buf[:start], false
	}
	if isArr {
		return append(buf, ']'), true
	}
	return append(buf, '}'), true
}

// appendCompact appends raw JSON without insignificant white space; every
// number and string keeps its exact bytes.
func appendCompact(buf []byte, raw string) []byte {
	if !strings.ContainsAny(raw, " \t\r\n") {
		return append(buf, raw...)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		return append(buf, raw...) // gjson validated it; cannot happen
	}
	return append(buf, b.Bytes()...)
}

// markKept records every leaf under r as copied.
func (p *projector) markKept(r gjson.Result, path string) {
	if r.IsObject() || r.IsArray() {
		isArr, i, n := r.IsArray(), 0, 0
		r.ForEach(func(k, v gjson.Result) bool {
			n++
			if isArr {
				p.markKept(v, join(path, strconv.Itoa(i), false))
				i++
			} else {
				p.markKept(v, join(path, k.Str, true))
			}
			return true
		})
		if n > 0 {
			return
		}
	}
	p.keptLeaves[path] = true
	if r.Type == gjson.String {
		p.keptValues[r.Str] = true
	}
}

// valueText is what a pseudonym is computed over: a string's text, any
// other value's JSON.
func valueText(r gjson.Result) string {
	if r.Type == gjson.String {
		return r.Str
	}
	return r.Raw
}

// DestinationKey derives a destination's pseudonym key from the master
// pseudonym key, so pseudonyms are stable for one destination and
// unlinkable across two.
func DestinationKey(master []byte, destination string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("veil pseudonym v1\x00"))
	m.Write([]byte(destination))
	return m.Sum(nil)
}

// Pseudonym returns ps_ and 128 bits of HMAC-SHA256(key, value) in hex.
func Pseudonym(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return "ps_" + hex.EncodeToString(m.Sum(nil)[:16])
}

func dedup(in []string) []string {
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// minLeak is the shortest dropped string the leak guard looks for; shorter
// ones ("NY", "yes") would match by chance.
const minLeak = 4

// leak returns the path of the first dropped string value that appears in
// body, compared case-insensitively, emails lower-cased and phone numbers
// as their digits. A value the policy kept at some other path is allowed.
func (d *Doc) leak(body []byte, p *projector) string {
	var hay, digits strings.Builder
	collectStrings(gjson.ParseBytes(body), func(s string) {
		hay.WriteString(strings.ToLower(s))
		hay.WriteByte(0)
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				digits.WriteByte(s[i])
			}
		}
		digits.WriteByte(0)
	})
	h, dg := hay.String(), digits.String()
	for _, l := range d.leaves {
		if !l.isStr || p.keptLeaves[l.path] || p.keptValues[l.str] || utf8.RuneCountInString(l.str) < minLeak || exempt(l.pattern, p.exempt) {
			continue
		}
		if containsWord(h, strings.ToLower(l.str)) {
			return l.path
		}
		if pd := phoneDigits(l.str); pd != "" && strings.Contains(dg, pd) {
			return l.path
		}
	}
	return ""
}

// containsWord reports whether needle occurs in hay at word boundaries: not
// preceded or followed by a letter or digit, so "Mara" is not found in
// "Amara" nor "Accepted" in "CandidateAccepted".
func containsWord(hay, needle string) bool {
	for off := 0; ; {
		i := strings.Index(hay[off:], needle)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(needle)
		before, _ := utf8.DecodeLastRuneInString(hay[:start])
		after, _ := utf8.DecodeRuneInString(hay[end:])
		if !isWordRune(before) || !isWordRune(firstRune(needle)) {
			if !isWordRune(after) || !isWordRune(lastRune(needle)) {
				return true
			}
		}
		off = start + 1
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func firstRune(s string) rune { r, _ := utf8.DecodeRuneInString(s); return r }

func lastRune(s string) rune { r, _ := utf8.DecodeLastRuneInString(s); return r }

// exempt reports whether pattern is one of paths or lies under one.
func exempt(pattern string, paths []string) bool {
	for _, p := range paths {
		if pattern == p || strings.HasPrefix(pattern, p+".") {
			return true
		}
	}
	return false
}

// collectStrings calls fn with every key and string value under r.
func collectStrings(r gjson.Result, fn func(string)) {
	switch {
	case r.IsObject():
		r.ForEach(func(k, v gjson.Result) bool {
			fn(k.Str)
			collectStrings(v, fn)
			return true
		})
	case r.IsArray():
		r.ForEach(func(_, v gjson.Result) bool {
			collectStrings(v, fn)
			return true
		})
	case r.Type == gjson.String:
		fn(r.Str)
	}
}

// phoneDigits returns the digits of s when s looks like a phone number
// (7 to 15 digits, otherwise only + ( ) - . / and spaces), else "".
func phoneDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case strings.IndexByte("+()-./ ", c) >= 0:
		default:
			return ""
		}
	}
	if b.Len() < 7 || b.Len() > 15 {
		return ""
	}
	return b.String()
}
