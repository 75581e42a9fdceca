package redact

import (
	"strings"
	"testing"

	"github.com/veilhq/veil"
)

// funcClassifier adapts a function: a pointer, as Classifier wants.
type funcClassifier struct{ f func(string) string }

func (c *funcClassifier) Category(p string) string { return c.f(p) }

func classifierFunc(f func(string) string) Classifier { return &funcClassifier{f} }

// classifyHire is a small vendor map for the tests below.
func classifyHire(p string) string {
	switch {
	case p == "candidate.name", p == "candidate.first":
		return "user.name"
	case p == "candidate.email":
		return "user.contact.email"
	case p == "candidate.id":
		return "user.unique_id"
	case strings.HasPrefix(p, "job."), p == "type":
		return "system.operations"
	case p == "note":
		return "user.content.private"
	}
	return "" // unclassified
}

const hire = `{"type":"hired","candidate":{"id":"c1","name":"Adaline Platform","first":"Adaline","email":"ada@x.example","title":"Platform Lead at Acme"},` +
	`"job":{"title":"Senior Platform Engineer","department":"Platform"},"note":"Adaline was great","extra":"Platform Lead"}`

func TestApply_Categories(t *testing.T) {
	d, err := Parse([]byte(hire))
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Classify: classifierFunc(classifyHire)}
	for _, c := range []struct {
		name      string
		dec       veil.Decision
		body      string
		leak, in  string
		released  string
		kept      string
		pseudonym string
	}{
		{name: "keep a category and what lies under it",
			dec:  veil.Decision{Allow: true, KeepCategories: []string{"system"}},
			body: `{"type":"hired","job":{"title":"Senior Platform Engineer","department":"Platform"}}`, released: "system.operations",
			kept: "type,job.title,job.department"},
		{name: "pseudonymise a category",
			dec:  veil.Decision{Allow: true, Keep: []string{"type"}, PseudonymizeCategories: []string{"user.unique_id"}},
			body: `{"type":"hired","candidate":{"id":"` + Pseudonym([]byte("k"), "c1") + `"}}`, released: "system.operations,user.unique_id",
			kept: "type", pseudonym: "candidate.id"},
		{name: "system values are not hunted: a department inside the job title",
			dec:  veil.Decision{Allow: true, Keep: []string{"job.title"}},
			body: `{"job":{"title":"Senior Platform Engineer"}}`, released: "system.operations", kept: "job.title"},
		{name: "a kept personal value is hunted in: the name inside a kept note",
			dec:  veil.Decision{Allow: true, Keep: []string{"note"}},
			leak: "candidate.first", in: "note", released: "user.content.private", kept: "note"},
		{name: "unclassified is personal: a dropped unknown field inside a kept one",
			dec:  veil.Decision{Allow: true, Keep: []string{"candidate.title"}},
			leak: "extra", in: "candidate.title", released: "user.unclassified", kept: "candidate.title"},
		{name: "a system value filled into a body is not hunted in",
			dec:  veil.Decision{Allow: true, Keep: []string{"job.title"}, Body: []byte(`{"text":"hired for {{job.title}}"}`)},
			body: `{"text":"hired for Senior Platform Engineer"}`, released: "system.operations", kept: "job.title"},
		{name: "a personal value filled into a body is",
			dec:  veil.Decision{Allow: true, Keep: []string{"note"}, Body: []byte(`{"text":"{{note}}"}`)},
			leak: "candidate.first", in: "the policy's body", released: "user.content.private", kept: "note"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := d.ApplyWith(&c.dec, []byte("k"), opt)
			if err != nil {
				t.Fatal(err)
			}
			if res.LeakPath != c.leak || res.LeakIn != c.in {
				t.Errorf("leak %q in %q, want %q in %q", res.LeakPath, res.LeakIn, c.leak, c.in)
			}
			if c.body != "" && string(res.Body) != c.body {
				t.Errorf("body %s, want %s", res.Body, c.body)
			}
			if got := strings.Join(res.Categories, ","); got != c.released {
				t.Errorf("categories %s, want %s", got, c.released)
			}
			if got := strings.Join(res.Kept, ","); got != c.kept {
				t.Errorf("kept %s, want %s", got, c.kept)
			}
			if got := strings.Join(res.Pseudonymized, ","); got != c.pseudonym {
				t.Errorf("pseudonymised %s, want %s", got, c.pseudonym)
			}
		})
	}
}

// TestApply_Hunt: projecting a normal form, the leak guard looks for the
// vendor payload's dropped personal values, except those the projection
// kept.
func TestApply_Hunt(t *testing.T) {
	vendor, _ := Parse([]byte(`{"cand":{"first":"Ada","full":"Ada Lovelace","mail":"ada@x.example"},"job":{"name":"Lovelace Engines"},"memo":"call Ada Lovelace"}`))
	vendorCats := func(p string) string {
		switch p {
		case "cand.first", "cand.full":
			return "user.name"
		case "cand.mail":
			return "user.contact.email"
		case "job.name":
			return "system.operations"
		}
		return ""
	}
	normal, _ := Parse([]byte(`{"candidate":{"name":"Ada Lovelace","emails":["ada@x.example"]},"job":{"title":"Lovelace Engines"},"note":"call Ada Lovelace"}`))
	normalCats := func(p string) string {
		switch p {
		case "candidate.name":
			return "user.name"
		case "candidate.emails.#":
			return "user.contact.email"
		case "job.title":
			return "system.operations"
		}
		return "user.content.private"
	}
	opt := Options{Classify: classifierFunc(normalCats), Hunt: vendor, HuntClassify: classifierFunc(vendorCats)}
	res, _ := normal.ApplyWith(&veil.Decision{Allow: true, Keep: []string{"job.title"}}, []byte("k"), opt)
	if res.LeakPath != "" {
		t.Errorf("job title only: leak %s in %s", res.LeakPath, res.LeakIn)
	}
	res, _ = normal.ApplyWith(&veil.Decision{Allow: true, Keep: []string{"note"}}, []byte("k"), opt)
	if res.LeakPath != "cand.full" || res.LeakIn != "note" {
		t.Errorf("note: leak %q in %q, want cand.full in note", res.LeakPath, res.LeakIn)
	}
	res, _ = normal.ApplyWith(&veil.Decision{Allow: true, Keep: []string{"note", "candidate.name"}}, []byte("k"), opt)
	if res.LeakPath != "" {
		t.Errorf("note and the name it quotes: leak %s in %s", res.LeakPath, res.LeakIn)
	}
}

// TestDatesAreNotPhoneNumbers: a dropped date's digits inside a kept
// record id are no leak; a phone number's still are.
func TestDatesAreNotPhoneNumbers(t *testing.T) {
	for s, want := range map[string]string{"2027-01-11": "", "09/01/2010": "", "11.1.2027": "", "+1 415 555 0182": "14155550182",
		"415-555-0182": "4155550182", "0770 090 0418": "07700900418", "2027-01-11-5": "202701115"} {
		if got := phoneDigits(s); got != want {
			t.Errorf("phoneDigits(%q) = %q, want %q", s, got, want)
		}
	}
	d, _ := Parse([]byte(`{"app":"509012010 AB-5559012010","start":"09/01/2010","phone":"555 901 2010"}`))
	res, _ := d.Apply(&veil.Decision{Allow: true, Keep: []string{"app"}}, []byte("k"))
	if res.LeakPath != "phone" {
		t.Errorf("leak %q, want the phone number (and not the date)", res.LeakPath)
	}
}

// TestApply_FailClosed: an unclassified field leaves only for a policy
// that names user.unclassified (keeping all of user is not enough); a
// null field releases no category; and the values that identify someone
// are looked for in kept system values too, while a candidate's title
// inside a job's title is no leak.
func TestApply_FailClosed(t *testing.T) {
	classify := classifierFunc(func(p string) string {
		switch p {
		case "candidate.first_name":
			return "user.name.first"
		case "candidate.title":
			return "user.professional_information.job_title"
		case "candidate.email":
			return "user.contact.email"
		case "job.title", "offer.note", "stage":
			return "system.operations"
		}
		return ""
	})
	const doc = `{"candidate":{"first_name":"Priya","title":"Backend Engineer","email":null},"job":{"title":"Senior Backend Engineer"},` +
		`"offer":{"note":"approved, Priya asked for more"},"stage":"Offer","dob":"1990-04-02"}`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Classify: classify}
	for _, c := range []struct {
		name             string
		dec              veil.Decision
		kept, cats, leak string
	}{
		{"keeping user keeps no unclassified field", veil.Decision{Allow: true, KeepCategories: []string{"user"}},
			"candidate.first_name,candidate.title,candidate.email", "user.name.first,user.professional_information.job_title", ""},
		{"naming user.unclassified keeps it", veil.Decision{Allow: true, Keep: []string{"candidate.first_name"}, KeepCategories: []string{"user.unclassified"}},
			"candidate.first_name,dob", "user.name.first,user.unclassified", ""},
		{"a null field releases no category", veil.Decision{Allow: true, Keep: []string{"stage", "candidate.email"}},
			"candidate.email,stage", "system.operations", ""},
		{"a first name inside a kept system value is a leak", veil.Decision{Allow: true, Keep: []string{"offer.note"}},
			"offer.note", "system.operations", "candidate.first_name"},
		{"a candidate's title inside the job's title is not", veil.Decision{Allow: true, Keep: []string{"job.title"}},
			"job.title", "system.operations", ""},
		{"nor inside a system value filled into a body", veil.Decision{Allow: true, Keep: []string{"job.title"}, Body: []byte(`{"text":"{{job.title}}"}`)},
			"job.title", "system.operations", ""},
		{"but a name inside one is", veil.Decision{Allow: true, Body: []byte(`{"text":"{{offer.note}}"}`)},
			"", "", "candidate.first_name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := d.ApplyWith(&c.dec, []byte("k"), opt)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(res.Kept, ","); got != c.kept {
				t.Errorf("kept %s, want %s", got, c.kept)
			}
			if got := strings.Join(res.Categories, ","); got != c.cats {
				t.Errorf("categories %s, want %s", got, c.cats)
			}
			if res.LeakPath != c.leak {
				t.Errorf("leak %q (in %q), want %q", res.LeakPath, res.LeakIn, c.leak)
			}
		})
	}
}
