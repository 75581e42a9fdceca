// Package redact turns a vendor payload into what one destination may see:
// it parses Veil's path syntax, projects the kept paths (preserving key
// order and the exact bytes of every kept value), replaces pseudonymised
// values with keyed pseudonyms, and runs the leak guard. Pure functions on
// JSON bytes, built on gjson.
package redact

import (
	"errors"
	"strings"
)

// Segment kinds of a path.
const (
	segKey     = iota // an object key (or, on an array, a decimal index)
	segElems          // #: every element of an array
	segAllKeys        // *: every key of an object
)

type segment struct {
	kind int
	key  string
}

// ErrPath is returned for a malformed path.
var ErrPath = errors.New("malformed path")

// parsePath splits a path into segments: keys joined by '.', '#' for every
// array element, '*' for every object key, "" for the empty key, and a '\'
// escaping the next character ('\.', '\#', '\*', '\\', '\"'). An empty path, an empty segment
// or a dangling '\' is malformed.
func parsePath(p string) ([]segment, error) {
	if p == "" {
		return nil, ErrPath
	}
	var (
		segs    []segment
		cur     strings.Builder
		escaped bool // cur holds an escaped character, so "#" or "*" is literal
	)
	flush := func() error {
		s := cur.String()
		switch {
		case s == "" && !escaped:
			return ErrPath
		case s == "#" && !escaped:
			segs = append(segs, segment{kind: segElems})
		case s == "*" && !escaped:
			segs = append(segs, segment{kind: segAllKeys})
		case s == `""` && !escaped:
			segs = append(segs, segment{kind: segKey}) // the empty key
		default:
			segs = append(segs, segment{kind: segKey, key: s})
		}
		cur.Reset()
		escaped = false
		return nil
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 == len(p) {
				return nil, ErrPath
			}
			i++
			cur.WriteByte(p[i])
			escaped = true
		case '.':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			cur.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return segs, nil
}

// appendKey appends key as one path segment, escaped.
func appendKey(path []byte, key string) []byte {
	if key != "" && key != "#" && key != "*" && !needsEscape(key) {
		return append(path, key...) // the common case needs no escaping
	}
	var b strings.Builder
	escapeKey(&b, key)
	return append(path, b.String()...)
}

func needsEscape(key string) bool {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c == '.' || c == '\\' || c == '"' {
			return true
		}
	}
	return false
}

// escapeKey writes key as one path segment; the empty key is "".
func escapeKey(b *strings.Builder, key string) {
	switch key {
	case "":
		b.WriteString(`""`)
		return
	case "#", "*":
		b.WriteByte('\\')
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c == '.' || c == '\\' || c == '"' {
			b.WriteByte('\\')
		}
		b.WriteByte(key[i])
	}
}
