package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

// ErrNotObject is returned by Parse for a payload that is not a JSON object.
var ErrNotObject = errors.New("payload is not a JSON object")

// Doc is a parsed payload: its bytes and every leaf (scalar, or empty
// object or array) in document order, with what the leak guard needs
// computed once. Parse it once per event and apply it per destination.
type Doc struct {
	raw      string
	nodes    []jnode // every value; nodes[0] is the root object
	leaves   []leaf  // in document (and so offset) order
	patterns []string
	// Every pattern this Doc has indexed, across the payloads it was
	// reused for: those of one source mostly share their paths, so a
	// pattern's string is made once rather than per event.
	known map[string]*knownPattern
	gen   uint32 // which Parse of this Doc; knownPattern.id is valid when gen matches
}

type knownPattern struct {
	s   string
	gen uint32
	id  int32 // index into patterns
}

type leaf struct {
	off, end int32 // the value's bytes in raw
	pat      int32 // index into Doc.patterns: the path with # for indices
	isStr    bool
	str      string // the unescaped value of a string leaf
	// Filled on first use by the leak guard (an event's leaves are shared
	// by its destinations, which are decided one after the other).
	norm   bool
	long   bool   // at least minLeak runes: looked for
	word   bool   // starts with a letter or digit
	first  uint64 // then: wordHash of its first word, lower-cased
	lower  string // str lower-cased, once a search needed it
	digits string // str's digits when it looks like a phone number, else ""
}

// docs holds released documents, so that the index of the next payload
// reuses their slices: allocating them was most of a decision's garbage.
var docs = sync.Pool{New: func() any { return &Doc{} }}

// Parse checks that payload is one JSON object and indexes its leaves.
func Parse(payload []byte) (*Doc, error) {
	if !gjson.ValidBytes(payload) {
		return nil, ErrNotObject
	}
	d := docs.Get().(*Doc)
	if cap(d.nodes) == 0 {
		// Sized from what the samples hold: a value per 35 to 65 bytes, a
		// leaf per 46 to 81.
		d.nodes, d.leaves = make([]jnode, 0, len(payload)/34+8), make([]leaf, 0, len(payload)/45+8)
	}
	d.raw = string(payload)
	d.gen++
	if d.known == nil || len(d.known) > 4096 || d.gen == 0 {
		d.known, d.gen = map[string]*knownPattern{}, 1
	}
	sc := scanner{d: d, s: d.raw, pat: make([]byte, 0, 256)}
	sc.ws()
	if sc.i >= len(sc.s) || sc.s[sc.i] != '{' {
		d.Release()
		return nil, ErrNotObject
	}
	sc.value("", 0, 0)
	return d, nil
}

// Release hands the document back for reuse by a later Parse. Call it once
// nothing uses d any more (Results and Paths' strings stay valid; d does
// not); a document that is never released is simply collected.
func (d *Doc) Release() {
	if len(d.nodes) > 4096 {
		return // an outsized payload: let its index go
	}
	clear(d.nodes) // drop the references into the payload
	clear(d.leaves)
	clear(d.patterns)
	*d = Doc{nodes: d.nodes[:0], leaves: d.leaves[:0], patterns: d.patterns[:0], known: d.known, gen: d.gen}
	docs.Put(d)
}

// appendSeg appends one path segment, escaping a key.
func appendSeg(path []byte, seg string, isKey bool) []byte {
	if len(path) > 0 {
		path = append(path, '.')
	}
	if !isKey {
		return append(path, seg...)
	}
	return appendKey(path, seg)
}

// Paths returns the distinct leaf patterns of the payload, in document
// order: what schema drift compares. The slice is the document's: copy
// what must outlive Release.
func (d *Doc) Paths() []string { return d.patterns }

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
	root, err := trieFor(dec)
	if err != nil {
		return nil, err
	}
	pr := projector{doc: d, key: key, kept: make([]bool, len(d.leaves)), exempt: dec.LeakExempt}
	buf := make([]byte, 0, 512)
	buf, ok := pr.emit(buf, 0, []*node{root}, make([]byte, 0, 256))
	if !ok {
		buf = append(buf[:0], "{}"...)
	}
	res := &Result{Body: buf, Kept: dedup(pr.keptPats), Pseudonymized: dedup(pr.pseudoPats)}
	if dec.Body != nil {
		res.Body = d.fill(dec.Body)
	}
	seen := make([]bool, len(d.patterns))
	res.Dropped = make([]string, 0, len(d.patterns))
	for i, l := range d.leaves {
		if !pr.kept[i] && !seen[l.pat] {
			seen[l.pat] = true
			res.Dropped = append(res.Dropped, d.patterns[l.pat])
		}
	}
	if res.Dropped == nil {
		res.Dropped = []string{}
	}
	if i := d.leak(res.Body, &pr); i >= 0 {
		res.LeakPath = d.pathOf(d.leaves[i].off)
	}
	return res, nil
}

// placeholder is {{path}} inside a string of a policy's body.
var placeholder = regexp.MustCompile(`\{\{([^{}"]+)\}\}`)

// fill replaces each {{path}} in the body's strings with the payload's
// value there (a string's text, any other value's JSON; "" when absent), so
// a policy can format a message without reading input.payload, which spares
// converting the payload for OPA. The leak guard still checks the result.
func (d *Doc) fill(body []byte) []byte {
	if !bytes.Contains(body, []byte("{{")) {
		return body
	}
	t := templateFor(body)
	out := make([]byte, 0, len(body)+64)
	for _, c := range t {
		out = append(out, c.lit...)
		if c.segs == nil {
			continue
		}
		if v, ok := d.lookup(c.segs); ok {
			out = appendEscaped(out, v)
		}
	}
	return out
}

// chunk is a literal part of a body template and the path that follows it
// (nil after the last literal, or for a placeholder that is not a path).
type chunk struct {
	lit  []byte
	segs []segment
}

// templates caches the parsed chunks of each body: a policy returns the
// same few bodies for every event.
var templates struct {
	sync.Mutex
	m map[string][]chunk
}

func templateFor(body []byte) []chunk {
	templates.Lock()
	t, ok := templates.m[string(body)]
	templates.Unlock()
	if ok {
		return t
	}
	body = bytes.Clone(body) // the chunks outlive the decision
	prev := 0
	for _, m := range placeholder.FindAllSubmatchIndex(body, -1) {
		c := chunk{lit: body[prev:m[0]], segs: []segment{}}
		var path string
		// The match sits inside a JSON string: unescape it.
		raw := append(append([]byte{'"'}, body[m[2]:m[3]]...), '"')
		if json.Unmarshal(raw, &path) == nil {
			if segs, err := parsePath(path); err == nil {
				c.segs = segs
			}
		}
		t = append(t, c)
		prev = m[1]
	}
	t = append(t, chunk{lit: body[prev:]})
	templates.Lock()
	if templates.m == nil || len(templates.m) >= 1024 {
		templates.m = map[string][]chunk{} // bodies built per event: start over
	}
	templates.m[string(body)] = t
	templates.Unlock()
	return t
}

// appendEscaped appends s escaped for the inside of a JSON string, as
// encoding/json writes it.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q[1:len(q)-1]...)
		}
	}
	return append(b, s...)
}

// lookup returns the text of the value at a concrete path (no wildcards).
func (d *Doc) lookup(segs []segment) (string, bool) {
	if len(segs) == 0 {
		return "", false
	}
	n := int32(0)
	for _, s := range segs {
		if s.kind != segKey {
			return "", false
		}
		found, i := int32(-1), 0
		for c := d.nodes[n].first; c >= 0; c = d.nodes[c].next {
			if (d.nodes[n].kind == '[' && strconv.Itoa(i) == s.key) || (d.nodes[n].kind == '{' && d.nodes[c].key == s.key) {
				found = c
				break
			}
			i++
		}
		if found < 0 {
			return "", false
		}
		n = found
	}
	return d.text(n), true
}

// text is what a pseudonym or a template uses of a value: a string's
// text, any other value's JSON.
func (d *Doc) text(n int32) string {
	if d.nodes[n].kind == '"' {
		return d.leaves[d.nodes[n].leaf].str
	}
	return d.raw[d.nodes[n].off:d.nodes[n].end]
}

// pathOf returns the concrete path (with indices) of the leaf at offset off.
func (d *Doc) pathOf(off int32) string {
	var path []byte
	n := int32(0)
	for {
		next, i := int32(-1), 0
		for c := d.nodes[n].first; c >= 0; c = d.nodes[c].next {
			if off >= d.nodes[c].off && off < d.nodes[c].end {
				next = c
				break
			}
			i++
		}
		if next < 0 {
			return string(path)
		}
		if d.nodes[n].kind == '[' {
			path = appendSeg(path, strconv.Itoa(i), false)
		} else {
			path = appendSeg(path, d.nodes[next].key, true)
		}
		n = next
	}
}

// tries caches the parsed path trie of each distinct (keep, pseudonymize)
// pair: policies mostly return the same sets, and parsing them was a
// quarter of Apply's time. Tries are never modified once built.
var tries struct {
	sync.Mutex
	m map[uint64][]cachedTrie // by hash of the two lists
}

type cachedTrie struct {
	keep, pseudo []string
	root         *node
}

var trieSeed = maphash.MakeSeed()

func trieFor(dec *veil.Decision) (*node, error) {
	var h maphash.Hash
	h.SetSeed(trieSeed)
	for _, p := range dec.Keep {
		h.WriteString(p)
		h.WriteByte(0)
	}
	h.WriteByte(1)
	for _, p := range dec.Pseudonymize {
		h.WriteString(p)
		h.WriteByte(0)
	}
	key := h.Sum64()
	tries.Lock()
	for _, c := range tries.m[key] {
		if slices.Equal(c.keep, dec.Keep) && slices.Equal(c.pseudo, dec.Pseudonymize) {
			tries.Unlock()
			return c.root, nil
		}
	}
	tries.Unlock()
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
	tries.Lock()
	if tries.m == nil || len(tries.m) >= 1024 {
		tries.m = map[uint64][]cachedTrie{} // policies that build paths per event: start over
	}
	tries.m[key] = append(tries.m[key], cachedTrie{slices.Clone(dec.Keep), slices.Clone(dec.Pseudonymize), root})
	tries.Unlock()
	return root, nil
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
	doc        *Doc
	key        []byte
	kept       []bool          // per leaf: copied as it was
	keptPats   []string        // patterns of kept subtrees
	pseudoPats []string        // patterns of pseudonymised values
	keptValues map[string]bool // string values copied: the policy allowed these
	exempt     []string        // leak_exempt paths
	scratch    [][]*node       // per depth: the trie nodes of the child being emitted
	depth      int
}

// emit appends the projection of node n under the trie nodes ns to buf
// and reports whether it wrote anything. pat is n's path pattern.
func (p *projector) emit(buf []byte, n int32, ns []*node, pat []byte) ([]byte, bool) {
	d := p.doc
	jn := &d.nodes[n]
	keep := false
	for _, t := range ns {
		if t.pseudo {
			p.pseudoPats = append(p.pseudoPats, string(pat))
			return strconv.AppendQuote(buf, Pseudonym(p.key, d.text(n))), true
		}
		keep = keep || t.keep
	}
	if keep {
		p.keptPats = append(p.keptPats, string(pat))
		p.markKept(jn.off, jn.end)
		return appendCompact(buf, d.raw[jn.off:jn.end]), true
	}
	isArr := jn.kind == '['
	if !isArr && jn.kind != '{' {
		return buf, false // the path goes deeper than this scalar
	}
	start := len(buf)
	buf = append(buf, jn.kind)
	wrote := false
	// The trie nodes of a child live in this depth's scratch slice: the
	// callee only reads them, and uses the next depth's for its own.
	if p.depth == len(p.scratch) {
		p.scratch = append(p.scratch, nil)
	}
	child := p.scratch[p.depth]
	p.depth++
	defer func() { p.depth--; p.scratch[p.depth] = child[:0] }()
	i := -1
	for c := jn.first; c >= 0; c = d.nodes[c].next {
		child = child[:0]
		mark := len(pat)
		if isArr {
			i++
			seg := strconv.Itoa(i)
			explicit := true // an explicit index stays in the reported pattern
			for _, t := range ns {
				if t.elems != nil {
					child = append(child, t.elems)
					explicit = false
				}
				if x := t.keys[seg]; x != nil {
					child = append(child, x)
				}
			}
			// Every position is kept so indices stay the vendor's: an
			// element with nothing kept becomes null.
			if i > 0 {
				buf = append(buf, ',')
			}
			var ok bool
			if len(child) > 0 {
				if explicit {
					pat = appendSeg(pat, seg, false)
				} else {
					pat = appendSeg(pat, "#", false)
				}
				buf, ok = p.emit(buf, c, child, pat)
				pat = pat[:mark]
			}
			if !ok {
				buf = append(buf, "null"...)
			}
			wrote = wrote || ok
			continue
		}
		key := d.nodes[c].key
		for _, t := range ns {
			if t.allKeys != nil {
				child = append(child, t.allKeys)
			}
			if x := t.keys[key]; x != nil {
				child = append(child, x)
			}
		}
		if len(child) == 0 {
			continue
		}
		bmark := len(buf)
		if wrote {
			buf = append(buf, ',')
		}
		buf = append(buf, d.raw[d.nodes[c].keyOff:d.nodes[c].keyEnd]...)
		buf = append(buf, ':')
		var ok bool
		buf, ok = p.emit(buf, c, child, appendSeg(pat, key, true))
		pat = pat[:mark]
		if ok {
			wrote = true
		} else {
			buf = buf[:bmark]
		}
	}
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

// markKept records every leaf inside [off, end) as copied.
func (p *projector) markKept(off, end int32) {
	ls := p.doc.leaves
	i := sort.Search(len(ls), func(i int) bool { return ls[i].off >= off })
	for ; i < len(ls) && ls[i].off < end; i++ {
		p.kept[i] = true
		if ls[i].isStr {
			if p.keptValues == nil {
				p.keptValues = map[string]bool{}
			}
			p.keptValues[ls[i].str] = true
		}
	}
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

// leak returns the index of the first dropped string leaf whose value
// appears in body, or -1. Comparison is case-insensitive at word
// boundaries, phone numbers as their digits. A value the policy kept at some
// other path is allowed, and so are leak_exempt paths.
//
// A value that starts with a letter or digit can only be found at a word
// boundary if its first word is one of the body's words, so the body's
// words are hashed into a bitmap first and only values whose first word
// hits it are searched for: most dropped values are ruled out by one bit.
func (d *Doc) leak(body []byte, p *projector) int {
	hay, digits := make([]byte, 0, len(body)), make([]byte, 0, len(body)/2)
	eachString(string(body), func(s string) {
		hay = appendLower(hay, s)
		hay = append(hay, 0)
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				digits = append(digits, s[i])
			}
		}
		digits = append(digits, 0)
	})
	h, dg := string(hay), string(digits)
	var words wordSet
	forWords(h, func(w string) { words.add(w) })
	for i := range d.leaves {
		l := &d.leaves[i]
		if !l.isStr || p.kept[i] {
			continue
		}
		if !l.norm {
			l.normalise()
		}
		if !l.long {
			continue
		}
		found := l.digits != "" && strings.Contains(dg, l.digits)
		if !found && (!l.word || words.has(l.first)) {
			if l.lower == "" {
				l.lower = strings.ToLower(l.str)
			}
			found = containsWord(h, l.lower)
		}
		if found && !p.keptValues[l.str] && !exempt(d.patterns[l.pat], p.exempt) {
			return i
		}
	}
	return -1
}

// normalise fills what the leak guard needs of a value once per event:
// whether it is long enough to look for, its digits when it looks like a
// phone number, and the hash of its lower-cased first word when it starts
// with one. The lower-cased value itself waits until a search needs it.
func (l *leaf) normalise() {
	l.norm = true
	if len(l.str) < minLeak || (len(l.str) < minLeak*utf8.UTFMax && utf8.RuneCountInString(l.str) < minLeak) {
		return
	}
	l.long, l.digits = true, phoneDigits(l.str)
	h, end := uint64(fnvOffset), 0
	for ; end < len(l.str); end++ {
		c := l.str[end]
		if c >= utf8.RuneSelf {
			l.first, l.word = l.firstWordSlow()
			return
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			break
		}
		h = (h ^ uint64(c)) * fnvPrime
	}
	l.first, l.word = h, end > 0
}

// firstWordSlow is normalise's first word when it is not plain ASCII.
func (l *leaf) firstWordSlow() (uint64, bool) {
	l.lower = strings.ToLower(l.str)
	end := 0
	for end < len(l.lower) {
		r, size := utf8.DecodeRuneInString(l.lower[end:])
		if !isWordRune(r) {
			break
		}
		end += size
	}
	return wordHash(l.lower[:end]), end > 0
}

// appendLower appends s lower-cased, without allocating for ASCII.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return append(b, strings.ToLower(s)...)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// forWords calls fn with every maximal run of letters and digits in s.
func forWords(s string, fn func(string)) {
	start := -1
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			fn(s[start:i])
			start = -1
		}
		i += size
	}
	if start >= 0 {
		fn(s[start:])
	}
}

// wordSet is a 1,024-bit Bloom filter of words: has never misses a word
// that was added, and rarely claims one that was not.
type wordSet [16]uint64

func (ws *wordSet) add(w string) {
	h := wordHash(w)
	ws[h>>6&15] |= 1 << (h & 63)
}

func (ws *wordSet) has(h uint64) bool { return ws[h>>6&15]&(1<<(h&63)) != 0 }

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

// wordHash is FNV-1a.
func wordHash(w string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(w); i++ {
		h = (h ^ uint64(w[i])) * fnvPrime
	}
	return h
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
		if strings.HasPrefix(pattern, p) && (len(pattern) == len(p) || pattern[len(p)] == '.') {
			return true
		}
	}
	return false
}

// eachString calls fn with every string of a JSON text, keys included,
// unescaped. body is Veil's own output (a projection or a policy's body);
// it stops at the first malformed string rather than guess.
func eachString(body string, fn func(string)) {
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		start, escaped := i, false
		for i++; i < len(body) && body[i] != '"'; i++ {
			if body[i] == '\\' {
				escaped = true
				i++
			}
		}
		if i >= len(body) {
			return
		}
		if !escaped {
			fn(body[start+1 : i])
			continue
		}
		var s string
		if json.Unmarshal([]byte(body[start:i+1]), &s) != nil {
			return
		}
		fn(s)
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
