package redact

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

// bruteLeak is the leak guard without its word filter: every dropped value
// searched for in every string of the body. The guard must agree with it.
func bruteLeak(d *Doc, body []byte, p *projector) int {
	var hay, digits strings.Builder
	var walk func(r gjson.Result)
	add := func(s string) {
		hay.WriteString(strings.ToLower(s))
		hay.WriteByte(0)
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				digits.WriteByte(s[i])
			}
		}
		digits.WriteByte(0)
	}
	walk = func(r gjson.Result) {
		switch {
		case r.IsObject():
			r.ForEach(func(k, v gjson.Result) bool { add(k.Str); walk(v); return true })
		case r.IsArray():
			r.ForEach(func(_, v gjson.Result) bool { walk(v); return true })
		case r.Type == gjson.String:
			add(r.Str)
		}
	}
	walk(gjson.ParseBytes(body))
	for i, l := range d.leaves {
		if !l.isStr || p.kept[i] || len([]rune(l.str)) < minLeak || p.keptValue(l.str) || exempt(d.patterns[l.pat], p.exempt) {
			continue
		}
		if containsWord(hay.String(), strings.ToLower(l.str)) {
			return i
		}
		if dg := phoneDigits(l.str); dg != "" && strings.Contains(digits.String(), dg) {
			return i
		}
	}
	return -1
}

var leakWords = []string{"Mara", "amara", "MARA", "Jane Doe", "jane", "doe", "O'Brien", "Ünal", "ünal", "straße",
	"STRASSE", "+1 (555) 010-2030", "555-010-2030", "15550102030", "a.b@example.com", "A.B@Example.com",
	"-dash", "#tag", "Accepted", "CandidateAccepted", "日本語", "x", "café", "CAFÉ", "42", "4242", "\u00a0nbsp", "id:7",
	"\u212aate", "Kate", "İstanbul", "istanbul", "Jos\u00e9e", "Jose", "tab\there", "q\"uote"}

func randText(r *rand.Rand) string {
	n := 1 + r.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = leakWords[r.IntN(len(leakWords))]
	}
	seps := []string{" ", "", "-", ", ", ".", "\n", "é"}
	return strings.Join(parts, seps[r.IntN(len(seps))])
}

func TestLeakMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 3000 {
		fields := map[string]any{}
		for i := range 2 + r.IntN(6) {
			fields[string(rune('a'+i))] = randText(r)
		}
		payload, _ := json.Marshal(map[string]any{"id": 1, "f": fields, "list": []any{randText(r), randText(r)}})
		d, err := Parse(payload)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"text": randText(r) + " " + randText(r), randText(r): []string{randText(r)}})
		dec := &veil.Decision{Allow: true, Keep: []string{"id"}, Body: body}
		if r.IntN(3) == 0 {
			dec.Keep = append(dec.Keep, "f.a")
		}
		if r.IntN(4) == 0 {
			dec.LeakExempt = []string{"list"}
		}
		res, err := d.Apply(dec, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		root, _ := trieFor(dec)
		pr := projector{doc: d, kept: make([]bool, len(d.leaves)), exempt: dec.LeakExempt, cats: d.categories(nil)}
		pr.emit(nil, 0, []*node{root}, nil)
		want := bruteLeak(d, body, &pr)
		wantPath := ""
		if want >= 0 {
			wantPath = d.pathOf(d.leaves[want].off)
		}
		if res.LeakPath != wantPath {
			t.Fatalf("round %d: leak %q, brute force %q\npayload %s\nbody %s", round, res.LeakPath, wantPath, payload, body)
		}
	}
}

// TestReleaseReuse: a document parsed into a released one's slices
// projects exactly as a fresh one.
func TestReleaseReuse(t *testing.T) {
	payloads := [][]byte{
		[]byte(`{"a":{"b":"Jane Doe","c":[1,2,{"d":"x"}]},"e":"note about Jane"}`),
		[]byte(`{"z":1}`),
		[]byte(`{"a":{"b":"Other Person"},"list":["one","two","three"],"e":"Other"}`),
	}
	dec := &veil.Decision{Allow: true, Keep: []string{"a.c", "e", "list.#"}}
	want := make([]string, len(payloads))
	for i, p := range payloads {
		d, err := Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		res, _ := d.Apply(dec, []byte("k"))
		want[i] = string(res.Body) + " leak=" + res.LeakPath + " dropped=" + strings.Join(res.Dropped, ",") + " paths=" + strings.Join(d.Paths(), ",")
	}
	for round := range 3 {
		for i, p := range payloads {
			d, _ := Parse(p)
			res, _ := d.Apply(dec, []byte("k"))
			got := string(res.Body) + " leak=" + res.LeakPath + " dropped=" + strings.Join(res.Dropped, ",") + " paths=" + strings.Join(d.Paths(), ",")
			d.Release()
			if got != want[i] {
				t.Fatalf("round %d payload %d: %s, want %s", round, i, got, want[i])
			}
		}
	}
}
