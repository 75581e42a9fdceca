package redact

// The leak guard: a dropped value that still appears in the outbound body
// blocks the delivery.

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/veilhq/veil"
)

// minLeak is the shortest dropped string the leak guard looks for; shorter
// ones ("NY", "yes") would match by chance.
const minLeak = 4

// hayText is what the leak guard searches: the strings that entered the
// outbound body, lower-cased, each ended by a NUL, and their digits.
// Values of system data (a job title, a department) are left out, so a
// personal phrase that happens to be part of one (a candidate's title
// inside the job's title) is not a leak; personal values that were kept,
// keys, the policy's own text and anything Veil cannot attribute are in.
type hayText struct {
	words, digits []byte
	// Each entry's end in words and digits, and where it came from (a kept
	// field's path; "" for the policy's body), to say where a leak was found.
	wordEnds, digitEnds []int
	from                []string
}

// grow sizes the hay for about n bytes in k strings.
func (h *hayText) grow(n, k int) {
	h.words, h.digits = make([]byte, 0, n), make([]byte, 0, n/4)
	h.wordEnds, h.digitEnds, h.from = make([]int, 0, k), make([]int, 0, k), make([]string, 0, k)
}

func (h *hayText) add(s, from string) {
	if h.from == nil {
		h.grow(256, 16)
	}
	h.words = appendLower(h.words, s)
	h.words = append(h.words, 0)
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			h.digits = append(h.digits, s[i])
		}
	}
	h.digits = append(h.digits, 0)
	h.wordEnds, h.digitEnds = append(h.wordEnds, len(h.words)), append(h.digitEnds, len(h.digits))
	h.from = append(h.from, from)
}

// addJSON adds every string of a JSON text (keys included), as the
// policy's body.
func (h *hayText) addJSON(body []byte) {
	h.grow(len(body), 16)
	eachString(string(body), func(s string) { h.add(s, "") })
}

// source says where the entry holding offset off of words (or digits)
// came from.
func (h *hayText) source(off int, inDigits bool) string {
	ends := h.wordEnds
	if inDigits {
		ends = h.digitEnds
	}
	i, _ := slices.BinarySearch(ends, off+1)
	if i < len(h.from) && h.from[i] != "" {
		return h.from[i]
	}
	return "the policy's body"
}

// leak returns the index of the first dropped string leaf of personal data
// (cats gives each pattern's category: user.* or unclassified is personal)
// whose value appears in the hay, and where in the outbound body it was
// found; or -1. kept says which leaves the
// projection copied (nil when d is not the projected document). Comparison
// is case-insensitive at word boundaries, phone numbers as their digits. A
// value the policy kept at some other path is allowed, and so are
// leak_exempt paths.
//
// A value that starts with a letter or digit can only be found at a word
// boundary if its first word is one of the hay's words, so those words are
// hashed into a bitmap first and only values whose first word hits it are
// searched for: most dropped values are ruled out by one bit.
//
// The values of identifying fields (veil.Identifying: names, contact
// details, ids) are also looked for in sys, the system values that left:
// words only, and digits for phone numbers.
func (d *Doc) leak(hay, sys *hayText, p *projector, kept []bool, cats []string) (int, string) {
	h, dg := string(hay.words), string(hay.digits)
	var words, sysWords wordSet
	forWords(h, func(w string) { words.add(w) })
	sh, sdg := string(sys.words), string(sys.digits)
	forWords(sh, func(w string) { sysWords.add(w) })
	for i := range d.leaves {
		l := &d.leaves[i]
		if !l.isStr || (kept != nil && kept[i]) || !veil.Personal(cats[l.pat]) {
			continue
		}
		if !l.norm {
			l.normalise()
		}
		if !l.long {
			continue
		}
		if at, inDigits := l.find(h, dg, &words, true); at >= 0 {
			if !p.keptValue(l.str) && !exempt(d.patterns[l.pat], p.exempt) {
				return i, hay.source(at, inDigits)
			}
			continue
		}
		if len(sh) == 0 || !veil.Identifying(cats[l.pat]) {
			continue
		}
		at, inDigits := l.find(sh, sdg, &sysWords, veil.Under(cats[l.pat], veil.CategoryPhone))
		if at >= 0 && !p.keptValue(l.str) && !exempt(d.patterns[l.pat], p.exempt) {
			return i, sys.source(at, inDigits)
		}
	}
	return -1, ""
}

// find returns where a (normalised) string leaf stands in a hay: as its
// digits in dg when byDigits and it has any, else as words in h at a word
// boundary (only when its first word is among ws); -1 when it is not.
func (l *leaf) find(h, dg string, ws *wordSet, byDigits bool) (at int, inDigits bool) {
	at = -1
	if byDigits && l.digits != "" {
		at, inDigits = strings.Index(dg, l.digits), true
	}
	if at < 0 && (!l.word || ws.has(l.first)) {
		if l.lower == "" {
			l.lower = strings.ToLower(l.str)
		}
		at, inDigits = indexWord(h, l.lower), false
	}
	return at, inDigits
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
func containsWord(hay, needle string) bool { return indexWord(hay, needle) >= 0 }

// indexWord returns where needle first occurs in hay at word boundaries,
// or -1.
func indexWord(hay, needle string) int {
	for off := 0; ; {
		i := strings.Index(hay[off:], needle)
		if i < 0 {
			return -1
		}
		start, end := off+i, off+i+len(needle)
		before, _ := utf8.DecodeLastRuneInString(hay[:start])
		after, _ := utf8.DecodeRuneInString(hay[end:])
		if !isWordRune(before) || !isWordRune(firstRune(needle)) {
			if !isWordRune(after) || !isWordRune(lastRune(needle)) {
				return start
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
// (7 to 15 digits, otherwise only + ( ) - . / and spaces, and not a date),
// else "".
func phoneDigits(s string) string {
	if isDate(s) {
		return "" // 2027-01-11 is not 20270111 inside a record id
	}
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

// isDate reports whether s is a calendar date written as three groups of
// digits with one separator: 2027-01-11, 01/11/2027, 11.1.2027.
func isDate(s string) bool {
	var groups []int
	var sep byte
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			n++
		case (c == '-' || c == '/' || c == '.') && n > 0 && (sep == 0 || sep == c):
			sep, groups, n = c, append(groups, n), 0
		default:
			return false
		}
	}
	groups = append(groups, n)
	if len(groups) != 3 {
		return false
	}
	short := func(g int) bool { return g == 1 || g == 2 }
	return (groups[0] == 4 && short(groups[1]) && short(groups[2])) || (short(groups[0]) && short(groups[1]) && groups[2] == 4)
}
