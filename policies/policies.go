// Package policies holds what ships in the policies folder that Veil also
// needs compiled in: the normal form's JSON Schema, with the data category
// of every field.
package policies

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/veilhq/veil"
)

//go:embed schema/event.v1.json
var eventSchema []byte

// EventSchema returns the JSON Schema of the normal form (veil.event/v1).
func EventSchema() []byte { return eventSchema }

var (
	categoriesOnce sync.Once
	categories     map[string]string
	upper          map[string]string // intermediate paths -> the category all below share, or ""
)

// EventCategories returns the data category of every leaf path of the
// normal form ("candidate.emails.#", "job.departments.#.name"), read from
// the x-category of the schema.
func EventCategories() map[string]string {
	categoriesOnce.Do(func() {
		var s schemaNode
		if err := json.Unmarshal(eventSchema, &s); err != nil {
			panic(fmt.Sprintf("policies/schema/event.v1.json: %v", err)) // compiled in: a test keeps it valid
		}
		categories = map[string]string{}
		s.walk("", categories)
		upper = map[string]string{}
		for p, c := range categories {
			for i := len(p) - 1; i > 0; i-- {
				if p[i] != '.' {
					continue
				}
				u := p[:i]
				if prev, seen := upper[u]; !seen {
					upper[u] = c
				} else if prev != c {
					upper[u] = ""
				}
			}
		}
	})
	return categories
}

// EventCategory returns the data category of a path pattern of the normal
// form: a leaf's, or for an object or list (null, or empty) the category
// everything under it shares; "" when there is none.
func EventCategory(pattern string) string {
	cats := EventCategories()
	if c, ok := cats[pattern]; ok {
		return c
	}
	return upper[pattern]
}

// EventClassifier classifies the normal form's paths with EventCategory.
var EventClassifier = &eventClassifier{}

type eventClassifier struct{}

func (*eventClassifier) Category(pattern string) string { return EventCategory(pattern) }

// EventPaths returns the normal form's leaf paths in order.
func EventPaths() []string {
	cats := EventCategories()
	out := make([]string, 0, len(cats))
	for p := range cats {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

type schemaNode struct {
	Category   string                 `json:"x-category"`
	Properties map[string]*schemaNode `json:"properties"`
	Items      *schemaNode            `json:"items"`
}

func (n *schemaNode) walk(path string, out map[string]string) {
	join := func(seg string) string {
		if path == "" {
			return seg
		}
		return path + "." + seg
	}
	switch {
	case n.Properties != nil:
		for k, c := range n.Properties {
			c.walk(join(k), out)
		}
	case n.Items != nil && n.Items.Properties != nil:
		n.Items.walk(join("#"), out)
	case n.Items != nil:
		out[join("#")] = n.Category
	default:
		out[path] = n.Category
	}
}

var pathsUnder sync.Map // joined categories -> []string

// PathsUnder returns the fewest normal-form paths that address every
// field whose category is, or lies under, one of cats: an object or list
// whose fields all qualify is one path ("job.departments"), so it is kept
// whole, null or empty included. The result is cached and shared: callers
// must not modify it.
func PathsUnder(cats []string) []string {
	key := strings.Join(cats, "\x00")
	if v, ok := pathsUnder.Load(key); ok {
		return v.([]string)
	}
	leaves := EventCategories()
	qualifies := func(p string) bool {
		c, ok := leaves[p]
		if !ok {
			c = upper[p]
		}
		return c != "" && veil.AnyUnder(c, cats)
	}
	var out []string
	seen := map[string]bool{}
	for _, leaf := range EventPaths() {
		// The highest qualifying path on the way down to the leaf.
		for i := 0; i <= len(leaf); i++ {
			if i < len(leaf) && leaf[i] != '.' {
				continue
			}
			p := leaf[:i]
			if qualifies(p) {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
				break
			}
		}
	}
	pathsUnder.Store(key, out)
	return out
}
