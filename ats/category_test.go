package ats

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/redact"
)

const categoryTable = "../testdata/categories.tsv"

// TestSampleCategories: every path of every sample has the category the
// checked-in table testdata/categories.tsv gives it, a key Veil knows,
// and none is unclassified: a new sample, or a vendor's new field, fails
// here until someone decides what it holds (go test ./ats -run
// TestSampleCategories -update rewrites the table; read the diff).
func TestSampleCategories(t *testing.T) {
	var got bytes.Buffer
	fmt.Fprintln(&got, "# sample\tpath\tcategory (go test ./ats -run TestSampleCategories -update rewrites this; read the diff)")
	all := samples(t)
	slices.SortFunc(all, func(a, b sample) int { return strings.Compare(a.file, b.file) })
	for _, s := range all {
		sch := mustScheme(t, source(s.vendor))
		doc, err := redact.Parse(s.body)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range doc.Paths() {
			c := sch.Category(p)
			switch {
			case c == "":
				t.Errorf("%s: %s is unclassified: decide its category in ats/%s.go", s.file, p, s.vendor)
			case !veil.KnownCategory(c):
				t.Errorf("%s: %s has category %q, which is not a fideslang key Veil knows", s.file, p, c)
			}
			fmt.Fprintf(&got, "%s\t%s\t%s\n", s.file, p, c)
		}
		doc.Release()
	}
	if *update {
		if err := os.WriteFile(categoryTable, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(categoryTable)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := map[string]string{}
	for sc := bufio.NewScanner(bytes.NewReader(want)); sc.Scan(); {
		if f := strings.Split(sc.Text(), "\t"); len(f) == 3 && !strings.HasPrefix(f[0], "#") {
			wantRows[f[0]+"\t"+f[1]] = f[2]
		}
	}
	seen := map[string]bool{}
	for sc := bufio.NewScanner(&got); sc.Scan(); {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		k := f[0] + "\t" + f[1]
		seen[k] = true
		if w, ok := wantRows[k]; !ok {
			t.Errorf("%s: %s (%s) is not in %s", f[0], f[1], f[2], categoryTable)
		} else if w != f[2] {
			t.Errorf("%s: %s is %s, the table says %s", f[0], f[1], f[2], w)
		}
	}
	for k := range wantRows {
		if !seen[k] {
			t.Errorf("%s lists %q, which no sample has", categoryTable, k)
		}
	}
}

// TestCategoryRulesKnown: every category any vendor's rules can give is a
// key Veil knows, and so is everything labelCategory says.
func TestCategoryRulesKnown(t *testing.T) {
	for name, r := range map[string]*catRules{"greenhouse": greenhouseCategories, "ashby": ashbyCategories,
		"lever": leverCategories, "standard": standardCategories, "smartrecruiters": smartRecruitersCategories} {
		for _, rule := range r.rules {
			if !veil.KnownCategory(rule.cat) {
				t.Errorf("%s: rule %s gives %q, not a known key", name, strings.Join(rule.segs, "."), rule.cat)
			}
		}
	}
	for _, lw := range labelWords {
		if !veil.KnownCategory(lw.cat) {
			t.Errorf("label words %v give %q, not a known key", lw.words, lw.cat)
		}
	}
}

// TestUnknownFieldsFailClosed: fields a vendor's home does not know are
// unclassified (personal), wherever they sit — no catch-all calls them
// operational — and customer-defined fields are read by their names.
func TestUnknownFieldsFailClosed(t *testing.T) {
	for _, c := range []struct{ vendor, path, want string }{
		{"greenhouse", "payload.application.candidate.date_of_birth", ""},
		{"greenhouse", "payload.application.candidate.gender", ""},
		{"greenhouse", "payload.application.health_questionnaire.answer", ""},
		{"greenhouse", "payload.application.candidate.custom_fields.national_insurance_number.value", "user.government_id.national_identification_number"},
		{"greenhouse", "payload.application.candidate.custom_fields.health_needs.value", "user.health"},
		{"greenhouse", "payload.application.candidate.custom_fields.religion.value", "user.demographic.religious_belief"},
		{"greenhouse", "payload.application.candidate.custom_fields.sexual_orientation.value", "user.demographic.sexual_orientation"},
		{"greenhouse", "payload.application.candidate.custom_fields.trade_union_member.value", "user.demographic.union_membership"},
		{"greenhouse", "payload.application.candidate.custom_fields.favourite_colour.value", veil.CategoryPrivate},
		{"greenhouse", "payload.application.jobs.#.hiring_team.hiring_managers.#.employee_id", veil.CategoryUniqueID},
		{"ashby", "data.application.candidate.primaryEmailAddress.value", veil.CategoryEmail},
		{"ashby", "data.application.candidate.primaryPhoneNumber.value", veil.CategoryPhone},
		{"ashby", "data.application.nationality", ""},
		{"ashby", "data.offer.latestVersion.notes", ""},
		{"standard", "data.stage.name", veil.CategoryOperations},
		{"standard", "data.onboarding.ssn_last4", "user.government_id.national_identification_number"},
		{"standard", "data.candidate.ni_number", ""},
		{"lever", "data.secretNote", ""},
		{"smartrecruiters", "candidate.firstName", ""},
	} {
		if got := mustScheme(t, source(c.vendor)).Category(c.path); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.vendor, c.path, got, c.want)
		}
	}
}
