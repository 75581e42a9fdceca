package redact

// Body templates: {{path}} placeholders in a policy's body, filled from the
// payload.

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/veilhq/veil"
)

// placeholder is {{path}} inside a string of a policy's body.
var placeholder = regexp.MustCompile(`\{\{([^{}"]+)\}\}`)

// fill replaces each {{path}} in the body's strings with the document's
// value there (a string's text, any other value's JSON), so a policy can
// format a message without reading the payload or the event, which spares
// converting them for OPA. A placeholder may give alternatives, the first
// present and non-empty one winning: {{application.stage.name|application.stage.id}},
// and end with a quoted literal: {{job.title|'a job'}}. A placeholder with
// nothing to fill becomes "".
//
// It also returns the body with the values of system data masked (cats
// gives each pattern's category), and those values, for the leak guard: a
// candidate's title inside a job title filled in is no leak, her name
// inside a filled-in note is, and so is her name inside a filled-in
// system value.
func (d *Doc) fill(body []byte, cats []string) (out, masked []byte, system []string) {
	if !bytes.Contains(body, []byte("{{")) {
		return body, body, nil
	}
	t := templateFor(body)
	out, masked = make([]byte, 0, len(body)+64), make([]byte, 0, len(body)+64)
	for _, c := range t {
		out, masked = append(out, c.lit...), append(masked, c.lit...)
		for _, alt := range c.alts {
			if alt.segs == nil {
				out, masked = appendEscaped(out, alt.lit), appendEscaped(masked, alt.lit)
				break
			}
			n, ok := d.lookupNode(alt.segs)
			if !ok || d.isNothing(n) {
				continue
			}
			v := appendEscaped(nil, d.text(n))
			out = append(out, v...)
			if l := d.nodes[n].leaf; l >= 0 && cats != nil && !veil.Personal(cats[d.leaves[l].pat]) && d.nodes[n].kind != '{' && d.nodes[n].kind != '[' {
				masked = append(masked, ' ') // system data: hunted in only for identifying values
				system = append(system, d.text(n))
			} else {
				masked = append(masked, v...)
			}
			break
		}
	}
	return out, masked, system
}

// chunk is a literal part of a body template and the placeholder that
// follows it: its alternatives, paths or a literal (none after the last
// literal, or for a placeholder that is not a path).
type chunk struct {
	lit  []byte
	alts []alt
}

// alt is one alternative of a placeholder: a path, or (segs nil) a literal.
type alt struct {
	segs []segment
	lit  string
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
		c := chunk{lit: body[prev:m[0]]}
		var text string
		// The match sits inside a JSON string: unescape it.
		raw := append(append([]byte{'"'}, body[m[2]:m[3]]...), '"')
		if json.Unmarshal(raw, &text) == nil {
			for _, a := range strings.Split(text, "|") {
				a = strings.TrimSpace(a)
				if len(a) >= 2 && a[0] == '\'' && a[len(a)-1] == '\'' {
					c.alts = append(c.alts, alt{lit: a[1 : len(a)-1]})
					break // a literal ends the alternatives
				}
				if segs, err := parsePath(a); err == nil {
					c.alts = append(c.alts, alt{segs: segs})
				}
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
