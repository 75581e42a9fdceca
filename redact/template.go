package redact

// Body templates: {{path}} placeholders in a policy's body, filled from the
// payload.

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sync"
	"unicode/utf8"
)

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
