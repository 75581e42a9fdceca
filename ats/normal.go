package ats

// What every vendor's normaliser and category map share.

import (
	"encoding/json"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/redact"
)

// Classifier gives the data category of a payload path pattern (keys
// joined by '.', '#' for array elements), "" when the vendor does not know
// the path: unclassified, treated as personal data.
type Classifier interface {
	Category(pattern string) string
}

// Normalizer builds the normal form of an event.
type Normalizer interface {
	// Normalize returns the normal form of a verified, validated body
	// whose vendor event type is eventType (as Describe read it).
	Normalize(eventType string, doc *redact.Doc) *veil.NormalEvent
}

// newEvent starts a normal event: the envelope filled, every other field
// absent.
func newEvent(source, vendor, vendorType string, types map[string]string) *veil.NormalEvent {
	t := types[vendorType]
	if t == "" {
		t = veil.TypeUnknown
	}
	return &veil.NormalEvent{Schema: veil.NormalSchema, Type: t, VendorType: vendorType, Source: source, Vendor: vendor}
}

// refs reads an array of objects into id/name references.
func refs(arr redact.Value, idKey, nameKey string) []veil.NormalRef {
	var out []veil.NormalRef
	arr.Each(func(v redact.Value) {
		out = append(out, veil.NormalRef{ID: v.Get(idKey).Ptr(), Name: v.Get(nameKey).Ptr()})
	})
	return out
}

// texts reads the texts at sub below each element of an array ("" for the
// elements themselves).
func texts(arr redact.Value, sub string) []string {
	var out []string
	arr.Each(func(v redact.Value) {
		if sub != "" {
			v = v.Get(sub)
		}
		if s, ok := v.Text(); ok && s != "" {
			out = append(out, s)
		}
	})
	return out
}

// first returns the first present, non-empty text of vs.
func first(vs ...redact.Value) *string {
	for _, v := range vs {
		if p := v.Ptr(); p != nil {
			return p
		}
	}
	return nil
}

// joinName is "first last" when both are there.
func joinName(first, last *string) *string {
	switch {
	case first != nil && last != nil:
		return veil.Str(*first + " " + *last)
	case first != nil:
		return first
	}
	return last
}

// millis reads Unix milliseconds as an RFC 3339 time.
func millis(v redact.Value) *string {
	s, ok := v.Text()
	if !ok {
		return nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return veil.Str(time.UnixMilli(ms).UTC().Format(time.RFC3339Nano))
}

// compensation reads an amount and its currency, if there is an amount.
func compensation(amount, currency, period redact.Value) *veil.NormalCompensation {
	a, ok := amount.Text()
	if !ok {
		return nil
	}
	if _, err := strconv.ParseFloat(a, 64); err != nil {
		return nil
	}
	n := json.Number(a)
	return &veil.NormalCompensation{Amount: &n, Currency: currency.Ptr(), Period: period.Ptr()}
}

// catRule maps a path pattern to a category: a segment matches literally,
// "*" matches any one key, a segment with a "*" inside matches as a glob
// ("*salary*"), "**" matches any number of segments, none included, and
// "{key}" matches any one key whose words then decide the category
// (labelCategory), cat being what it is when they say nothing: the
// customer's own fields (custom_fields.date_of_birth.value).
type catRule struct {
	segs []string
	cat  string
}

// catRules is a vendor's path -> category map; the first matching rule
// wins, so specific rules go first. A path no rule matches is
// unclassified (""): personal data, released only to a policy that names
// user.unclassified. Lookups are cached per pattern.
type catRules struct {
	rules  []catRule
	cache  sync.Map // pattern -> category
	cached atomic.Int64
}

// categories builds a rule list from pattern, category pairs.
func categories(pairs ...string) *catRules {
	r := &catRules{}
	for i := 0; i+1 < len(pairs); i += 2 {
		r.rules = append(r.rules, catRule{segs: splitPattern(pairs[i]), cat: pairs[i+1]})
	}
	return r
}

// Category returns the category of pattern, "" when no rule matches.
func (r *catRules) Category(pattern string) string {
	if c, ok := r.cache.Load(pattern); ok {
		return c.(string)
	}
	segs := splitPattern(pattern)
	cat := ""
	for _, rule := range r.rules {
		if key, ok := rule.match(segs); ok {
			cat = rule.cat
			if c := labelCategory(key); key != "" && c != "" {
				cat = c
			}
			break
		}
	}
	if r.cached.Add(1) <= 100_000 { // a sender that invents keys cannot grow it without bound
		r.cache.Store(pattern, cat)
	}
	return cat
}

// match reports whether segs match the rule, and the key its {key}
// segment matched ("" without one).
func (rule catRule) match(segs []string) (string, bool) {
	var key string
	return key, matchSegs(rule.segs, segs, &key)
}

func matchSegs(rule, segs []string, key *string) bool {
	if len(rule) == 0 {
		return len(segs) == 0
	}
	if rule[0] == "**" {
		for i := 0; i <= len(segs); i++ {
			if matchSegs(rule[1:], segs[i:], key) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 || !matchSeg(rule[0], segs[0]) {
		return false
	}
	if !matchSegs(rule[1:], segs[1:], key) {
		return false
	}
	if rule[0] == "{key}" {
		*key = segs[0]
	}
	return true
}

func matchSeg(rule, seg string) bool {
	switch {
	case rule == "*", rule == "{key}":
		return true
	case strings.Contains(rule, "*"):
		ok, _ := path.Match(rule, seg)
		return ok
	}
	return rule == seg
}

// splitPattern splits a path pattern at its unescaped dots.
func splitPattern(p string) []string {
	if !strings.Contains(p, `\`) {
		return strings.Split(p, ".")
	}
	var out []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i++
			cur.WriteByte(p[i])
		case p[i] == '.':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(p[i])
		}
	}
	return append(out, cur.String())
}

// Category keys used by the vendors' maps.
const (
	ops      = veil.CategoryOperations
	uid      = veil.CategoryUniqueID
	private  = veil.CategoryPrivate
	name     = veil.CategoryName
	email    = veil.CategoryEmail
	phone    = veil.CategoryPhone
	address  = veil.CategoryAddress
	jobTitle = veil.CategoryJobTitle
	company  = veil.CategoryWorkplace
	money    = veil.CategoryFinancial
	social   = "user.contact.social_url"
	dob      = "user.demographic.date_of_birth"
	gender   = "user.demographic.gender"
	race     = "user.demographic.race_ethnicity"
	health   = "user.health"
	// protected is fideslang's key for protected classifications such as
	// veteran status (not an Art. 9 category).
	protected = "user.demographic.protected_classifications"
	govID     = "user.government_id.national_identification_number"
	image     = "user.content.self_image"
	ip        = "user.device.ip_address"
	device    = "user.device"
	bank      = "user.financial.bank_account"
	contact   = "user.contact"
	residence = "user.demographic.citizenship_or_immigration_status"
)

// labelWords say what a field holds from the words of its name or label,
// for fields the customer defines (Greenhouse custom field keys, Ashby and
// Standard Webhooks custom field titles): first match wins, so the special
// categories (GDPR Art. 9) come before the words that could hide them.
var labelWords = []struct {
	words []string
	cat   string
}{
	{[]string{"disab", "health", "medical", "illness", "allerg", "pregnan", "diagnos", "sick"}, health},
	{[]string{"ethnic", "_race", "racial"}, race},
	{[]string{"religio", "faith"}, "user.demographic.religious_belief"},
	{[]string{"orientation", "sexuality"}, "user.demographic.sexual_orientation"},
	{[]string{"trade_union", "union_member"}, "user.demographic.union_membership"},
	{[]string{"politic"}, "user.demographic.political_opinion"},
	{[]string{"biometric", "fingerprint"}, "user.biometrics"},
	{[]string{"criminal", "conviction"}, "user.criminal_history"},
	{[]string{"_ssn", "social_security", "national_insurance", "national_id", "tax_id", "taxid", "_nif", "_nino", "tax_number"}, govID},
	{[]string{"passport"}, "user.government_id.passport_number"},
	{[]string{"bank", "iban"}, bank},
	{[]string{"salary", "bonus", "equity", "compensation", "wage", "stipend", "commission", "_pay_"}, money},
	{[]string{"date_of_birth", "birth", "_dob_"}, dob},
	{[]string{"gender", "pronoun"}, gender},
	{[]string{"veteran", "military"}, protected},
	{[]string{"visa", "right_to_work", "work_auth", "citizenship", "immigration", "work_permit", "residen", "sponsorship"}, residence},
	{[]string{"emergency"}, contact},
	{[]string{"email"}, email},
	{[]string{"phone", "mobile"}, phone},
	{[]string{"address", "street", "postcode", "postal", "zip"}, address},
	{[]string{"linkedin", "github", "website", "portfolio"}, social},
	{[]string{"photo", "picture"}, image},
	{[]string{"name"}, name},
}

// labelCategory returns the category a field's name or label says it
// holds, "" when its words say nothing.
func labelCategory(label string) string {
	var b strings.Builder
	b.WriteByte('_')
	for _, r := range strings.ToLower(label) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	l := b.String()
	for _, lw := range labelWords {
		for _, w := range lw.words {
			if strings.Contains(l, w) {
				return lw.cat
			}
		}
	}
	return ""
}
