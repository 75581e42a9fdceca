package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/veilhq/veil"
)

// ErrNotObject is returned by Parse for a payload that is not a JSON object.
var ErrNotObject = errors.New("payload is not a JSON object")

var errTooLarge = errors.New("payload is larger than 2 GiB")

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
	// patKnown is each pattern's entry in known.
	patKnown []*knownPattern
	// cats is each pattern's category, filled by the first classification
	// (a document has one classifier: its vendor's, or the normal form's)
	// and shared by every destination's projection.
	cats       []string
	classified bool
}

type knownPattern struct {
	s   string
	gen uint32
	id  int32 // index into patterns
	// The pattern's category as by last classified it.
	by  Classifier
	cat string
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

// maxParseDepth is the nesting Parse accepts: the most a config may allow
// (max_depth), so a payload stored under any config parses again.
const maxParseDepth = 1000

// Parse checks that payload is one JSON object (valid UTF-8, unique keys,
// bounded nesting: see Validate) and indexes its leaves.
func Parse(payload []byte) (*Doc, error) {
	values, err := Validate(payload, maxParseDepth)
	if err != nil {
		return nil, err
	}
	return ParseValidated(payload, values)
}

// ParseValidated indexes a payload Validate accepted, with the number of
// values Validate counted, which sizes the index exactly.
func ParseValidated(payload []byte, values int) (*Doc, error) {
	if len(payload) > math.MaxInt32 {
		return nil, errTooLarge // the index holds int32 offsets
	}
	d := docs.Get().(*Doc)
	if cap(d.nodes) < values {
		d.nodes = make([]jnode, 0, values)
	}
	if cap(d.leaves) < values {
		d.leaves = make([]leaf, 0, values)
	}
	d.raw = string(payload)
	d.gen++
	if d.known == nil || len(d.known) > 4096 || d.gen == 0 {
		d.known, d.gen = make(map[string]*knownPattern, min(values, 1<<17)), 1
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
	clear(d.cats)
	clear(d.patKnown)
	*d = Doc{nodes: d.nodes[:0], leaves: d.leaves[:0], patterns: d.patterns[:0], known: d.known, gen: d.gen, cats: d.cats[:0],
		patKnown: d.patKnown[:0]}
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
	// Categories are the data categories of the kept and pseudonymised
	// leaves, sorted: what the body releases.
	Categories []string
	// LeakPath names the first dropped field whose value still appears in
	// Body, and LeakIn the kept field (or "the policy's body") it appears
	// in; "" when the leak guard passed. Neither ever holds the value.
	LeakPath, LeakIn string
}

// Classifier gives the data category of a path pattern; "" means
// unclassified, which the leak guard treats as personal. It must be a
// pointer that lives as long as its answers hold (a vendor's map, a
// schema's): documents remember the category each pattern was given by it,
// so a payload of a known shape is classified without asking again.
type Classifier interface {
	Category(pattern string) string
}

// Options say how to classify a document and where the leak guard looks.
type Options struct {
	// Classify categorises this document's leaves; nil leaves every one
	// unclassified (so every dropped string is looked for).
	Classify Classifier
	// Hunt, when set, is the document whose dropped personal values the
	// leak guard looks for instead of this one's: the vendor's payload, when
	// this document is its normal form (whose keys, a schema's names, are
	// then not searched). HuntClassify categorises it.
	Hunt         *Doc
	HuntClassify Classifier
	// Expand, when set, gives the paths of every field under some
	// categories from the document's schema, in place of the document's
	// own patterns under them (a schema's list is the same for every
	// event, so the projection's trie is built once).
	Expand func(cats []string) []string
}

// Apply projects the document for a decision with every leaf
// unclassified: see ApplyWith.
func (d *Doc) Apply(dec *veil.Decision, key []byte) (*Result, error) {
	return d.ApplyWith(dec, key, Options{})
}

// ApplyWith projects the document for a decision: the kept paths (and
// every field whose category is under one of dec.KeepCategories) copied
// byte for byte in the document's shape and key order, the pseudonymised
// ones replaced by Pseudonym(key, value), or dec.Body instead when the
// policy gives one. Then it runs the leak guard, which looks for the
// dropped values of personal data (a user.* category, or unclassified),
// not those of system data. key is the destination's pseudonym key
// (DestinationKey). A malformed path is an error.
func (d *Doc) ApplyWith(dec *veil.Decision, key []byte, opt Options) (*Result, error) {
	cats := d.categories(opt.Classify)
	if len(dec.KeepCategories) > 0 || len(dec.PseudonymizeCategories) > 0 {
		under := func(c []string) []string { return d.patternsUnder(cats, c) }
		if opt.Expand != nil {
			under = func(c []string) []string {
				if len(c) == 0 {
					return nil
				}
				return opt.Expand(c)
			}
		}
		expanded := *dec
		expanded.Keep = append(slices.Clone(dec.Keep), under(dec.KeepCategories)...)
		expanded.Pseudonymize = append(slices.Clone(dec.Pseudonymize), under(dec.PseudonymizeCategories)...)
		dec = &expanded
	}
	root, err := trieFor(dec)
	if err != nil {
		return nil, err
	}
	pr := projector{doc: d, key: key, kept: make([]bool, len(d.leaves)), exempt: dec.LeakExempt, cats: cats, schemaKeys: opt.Hunt != nil,
		keptPats: make([]string, 0, 32), scratch: make([][]*node, 0, 8)}
	buf := make([]byte, 0, 512)
	buf, ok := pr.emit(buf, 0, []*node{root}, make([]byte, 0, 256))
	if !ok {
		buf = append(buf[:0], "{}"...)
	}
	res := &Result{Body: buf, Kept: dedup(pr.keptPats), Pseudonymized: dedup(pr.pseudoPats)}
	hay, sys := &pr.hay, &pr.sys // what the projection put in
	if dec.Body != nil {
		var masked []byte
		var filled []string
		res.Body, masked, filled = d.fill(dec.Body, cats)
		hay, sys = &hayText{}, &hayText{}
		hay.addJSON(masked)
		for _, v := range filled {
			sys.add(v, "the policy's body")
		}
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
	res.Categories = d.releasedCategories(cats, pr.kept, res.Pseudonymized, opt.Classify)
	hunt, huntCats, kept := d, cats, pr.kept
	if opt.Hunt != nil {
		hunt, huntCats, kept = opt.Hunt, opt.Hunt.categories(opt.HuntClassify), nil
	}
	if i, in := hunt.leak(hay, sys, &pr, kept, huntCats); i >= 0 {
		res.LeakPath, res.LeakIn = hunt.pathOf(hunt.leaves[i].off), in
	}
	return res, nil
}

// categories returns the category of each of the document's patterns,
// classified once: the first classifier a document is given is its only
// one (nil leaves every pattern unclassified).
func (d *Doc) categories(classify Classifier) []string {
	if d.classified {
		return d.cats
	}
	d.classified = true
	d.cats = slices.Grow(d.cats[:0], len(d.patterns))[:len(d.patterns)]
	for i, p := range d.patterns {
		d.cats[i] = ""
		if classify == nil {
			continue
		}
		k := d.patKnown[i]
		if k.by != classify {
			k.by, k.cat = classify, classify.Category(p)
		}
		d.cats[i] = k.cat
	}
	return d.cats
}

// patternsUnder returns the document's patterns whose category is under one
// of cats. Categories are few: each is tested once.
func (d *Doc) patternsUnder(cats []string, under []string) []string {
	if len(under) == 0 {
		return nil
	}
	var out []string
	var memo [16]struct {
		cat string
		in  bool
	}
	n := 0
	for i, p := range d.patterns {
		c := cats[i]
		if c == "" {
			// Unclassified: only a policy that names the category itself
			// receives it, never one that keeps all of user.
			if slices.Contains(under, veil.CategoryUnclassified) {
				out = append(out, p)
			}
			continue
		}
		in, found := false, false
		for j := range n {
			if memo[j].cat == c {
				in, found = memo[j].in, true
				break
			}
		}
		if !found {
			in = veil.AnyUnder(c, under)
			if n < len(memo) {
				memo[n].cat, memo[n].in = c, in
				n++
			}
		}
		if in {
			out = append(out, p)
		}
	}
	return out
}

// releasedCategories is the sorted set of categories of the kept leaves
// and the pseudonymised patterns that carried a value: a field that is
// null (or an empty object or list) releases nothing.
func (d *Doc) releasedCategories(cats []string, kept []bool, pseudo []string, classify Classifier) []string {
	set := map[string]bool{}
	var valued []bool // per pattern: some leaf of it carried a value
	if len(pseudo) > 0 {
		valued = make([]bool, len(d.patterns))
	}
	for i, l := range d.leaves {
		if d.empty(l) {
			continue
		}
		if valued != nil {
			valued[l.pat] = true
		}
		if kept[i] {
			set[orUnclassified(cats[l.pat])] = true
		}
	}
	for _, p := range pseudo {
		if id, ok := d.patternID(p); ok && !valued[id] {
			continue
		}
		c := ""
		if classify != nil {
			c = classify.Category(p)
		}
		set[orUnclassified(c)] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// empty reports whether a leaf holds no value: null, "", {} or [].
func (d *Doc) empty(l leaf) bool {
	switch v := d.raw[l.off:l.end]; v {
	case "null", `""`:
		return true
	default:
		return len(v) >= 2 && (v[0] == '{' || v[0] == '[') && strings.TrimSpace(v[1:len(v)-1]) == ""
	}
}

// patternID returns the index of pattern among the document's patterns.
func (d *Doc) patternID(pattern string) (int32, bool) {
	if k, ok := d.known[pattern]; ok && k.gen == d.gen {
		return k.id, true
	}
	return 0, false
}

func orUnclassified(c string) string {
	if c == "" {
		return veil.CategoryUnclassified
	}
	return c
}

// lookupNode returns the node at a concrete path.
func (d *Doc) lookupNode(segs []segment) (int32, bool) {
	if len(segs) == 0 {
		return 0, false
	}
	n := int32(0)
	for _, s := range segs {
		if s.kind != segKey {
			return 0, false
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
			return 0, false
		}
		n = found
	}
	return n, true
}

// text is what a pseudonym or a template uses of a value: a string's
// text, any other value's JSON.
func (d *Doc) text(n int32) string {
	if d.nodes[n].kind == '"' {
		return d.leaves[d.nodes[n].leaf].str
	}
	return d.raw[d.nodes[n].off:d.nodes[n].end]
}

// isNothing reports whether node n is null or the empty string.
func (d *Doc) isNothing(n int32) bool {
	raw := d.raw[d.nodes[n].off:d.nodes[n].end]
	return raw == "null" || raw == `""`
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
	kept       []bool   // per leaf: copied as it was
	keptPats   []string // patterns of kept subtrees
	pseudoPats []string // patterns of pseudonymised values
	exempt     []string // leak_exempt paths
	cats       []string // category of each pattern of doc
	hay        hayText  // the strings the projection wrote, system values left out
	// sys holds the system values it wrote: searched only for the dropped
	// values that identify someone (a name, an email, an id), so a name
	// quoted in a kept "operational" note is caught and a candidate's
	// title inside the job's title is not.
	sys        hayText
	schemaKeys bool      // the keys are a schema's names, not data: not hunted in
	scratch    [][]*node // per depth: the trie nodes of the child being emitted
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
			if d.isNothing(n) {
				// null and "" carry no identity: a pseudonym of them would
				// make every missing value the same ps_ and join unrelated
				// records. They stay what they are, and count as kept.
				p.keptPats = append(p.keptPats, string(pat))
				p.markKept(n)
				return appendCompact(buf, d.raw[jn.off:jn.end]), true
			}
			p.pseudoPats = append(p.pseudoPats, intern(pat))
			return strconv.AppendQuote(buf, Pseudonym(p.key, d.text(n))), true
		}
		keep = keep || t.keep
	}
	if keep {
		p.keptPats = append(p.keptPats, intern(pat))
		p.markKept(n)
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
		if !p.schemaKeys {
			p.hay.add(key, "a key")
		}
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

// patterns interns the path patterns projections report: the same few
// for every event of a policy, so each string is made once.
var patterns struct {
	sync.Mutex
	m map[string]string
}

func intern(pat []byte) string {
	patterns.Lock()
	defer patterns.Unlock()
	if s, ok := patterns.m[string(pat)]; ok {
		return s
	}
	if patterns.m == nil || len(patterns.m) >= 1<<14 {
		patterns.m = map[string]string{} // paths built per event: start over
	}
	s := string(pat)
	patterns.m[s] = s
	return s
}

// appendCompact appends raw JSON without insignificant white space; every
// number and string keeps its exact bytes. raw was validated.
func appendCompact(buf []byte, raw string) []byte {
	if !strings.ContainsAny(raw, " \t\r\n") {
		return append(buf, raw...)
	}
	inStr := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inStr:
			buf = append(buf, c)
			if c == '\\' && i+1 < len(raw) {
				i++
				buf = append(buf, raw[i])
			} else if c == '"' {
				inStr = false
			}
		case c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			inStr = c == '"'
			buf = append(buf, c)
		}
	}
	return buf
}

// markKept records every leaf of node n's subtree as copied, and adds
// its keys and its personal string values to the hay.
func (p *projector) markKept(n int32) {
	d := p.doc
	off, end := d.nodes[n].off, d.nodes[n].end
	for c := n + 1; int(c) < len(d.nodes) && d.nodes[c].off < end; c++ {
		if d.nodes[c].key != "" && !p.schemaKeys {
			p.hay.add(d.nodes[c].key, "a key")
		}
	}
	ls := d.leaves
	i := sort.Search(len(ls), func(i int) bool { return ls[i].off >= off })
	for ; i < len(ls) && ls[i].off < end; i++ {
		p.kept[i] = true
		if !ls[i].isStr {
			continue
		}
		if veil.Personal(p.cats[ls[i].pat]) {
			p.hay.add(ls[i].str, d.patterns[ls[i].pat])
		} else {
			p.sys.add(ls[i].str, d.patterns[ls[i].pat])
		}
	}
}

// keptValue reports whether the projection copied a string leaf equal to
// s: a value the policy allowed at some path is no leak at another. Asked
// only when the leak guard has found a dropped value, so a scan.
func (p *projector) keptValue(s string) bool {
	for i, l := range p.doc.leaves {
		if p.kept[i] && l.isStr && l.str == s {
			return true
		}
	}
	return false
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

// SaltedKey is a destination's pseudonym key for a person whose erasure
// was lifted: keyed with the salt her erasure made, so her pseudonyms
// after it cannot be linked to those before.
func SaltedKey(key, salt []byte) []byte {
	if salt == nil {
		return key
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("veil pseudonym salt v1\x00"))
	m.Write(salt)
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
