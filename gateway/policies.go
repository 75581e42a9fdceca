package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policy"
)

// Policies is what a compliance officer asks of the running policy set:
// what it is, what it decides for a stored event, and what a draft would
// change on the events stored so far. Nothing it decides is sent.
type Policies struct {
	Pipeline *Pipeline
}

// PolicyInfo describes the running policy set and, per destination, the
// policy that decides for it as written.
func (ps *Policies) PolicyInfo() veil.PolicyInfo {
	s := ps.Pipeline
	info := veil.PolicyInfo{Folder: s.Config.Policies}
	var set *policy.Set
	if s.Policies != nil {
		set = s.Policies.Current()
	}
	if set != nil {
		info.Digest, info.Files, info.Tests, info.LoadedAt, info.Untested = set.Digest, set.Files, set.Tests, set.LoadedAt, set.Untested
	}
	for _, t := range s.targets {
		d := veil.PolicyDestination{Name: t.Name, Policy: t.Policy, Processor: t.Processor, Sources: t.Sources, Review: t.Review.Enabled}
		if set != nil {
			d.Files = set.PackageFiles(t.Policy)
		}
		info.Destinations = append(info.Destinations, d)
	}
	return info
}

// Preview decides a stored event for every destination of its source
// under the running policies: what each would get, sent nowhere.
func (ps *Policies) Preview(ctx context.Context, id string) (veil.PolicyPreview, error) {
	s := ps.Pipeline
	if s.Policies == nil || s.Policies.Current() == nil {
		return veil.PolicyPreview{}, veil.Errorf(veil.ECONFLICT, "No policy set is loaded.")
	}
	ev, err := s.storedEvent(ctx, id, true)
	if err != nil {
		return veil.PolicyPreview{}, err
	}
	defer ev.Release()
	p := veil.PolicyPreview{EventID: id, Source: ev.Event.Source, EventType: ev.Normal.Type, VendorType: ev.Normal.VendorType}
	set := s.Policies.Current()
	in, err := set.NewInput(ev.Event, ev.Normal)
	if err != nil {
		return p, err
	}
	for _, t := range s.bySource[ev.Event.Source] {
		d := Decide(ctx, set, in, ev, t)
		if !allowed(d) {
			d.Body = nil
		}
		p.Decisions = append(p.Decisions, d)
	}
	return p, nil
}

// DraftImpact loads the policy folder dir (compiled and tested as a reload
// would; relative to the config's folder) and compares it with the running
// set on the last n stored events.
func (ps *Policies) DraftImpact(ctx context.Context, dir string, n int) (veil.PolicyImpact, error) {
	s := ps.Pipeline
	if s.Policies == nil || s.Policies.Current() == nil {
		return veil.PolicyImpact{}, veil.Errorf(veil.ECONFLICT, "No policy set is loaded.")
	}
	if s.History == nil {
		return veil.PolicyImpact{}, veil.Errorf(veil.EUNAVAILABLE, "Stored events are not served here.")
	}
	if !filepath.IsAbs(dir) && s.Config.Dir != "" {
		dir = filepath.Join(s.Config.Dir, dir)
	}
	draft, err := policy.Load(ctx, dir)
	if err != nil {
		return veil.PolicyImpact{}, veil.Errorf(veil.EINVALID, "The draft policies do not load: %v", err)
	}
	draft.Timeout = time.Duration(s.Config.PolicyTimeout)
	im := NewImpact(s.Policies.Current(), draft, s.targets)
	before := ""
	for n > 0 {
		evs, err := s.History.ListEvents(ctx, veil.EventQuery{Before: before, Limit: min(n, 500)})
		if err != nil {
			return veil.PolicyImpact{}, err
		}
		for _, es := range evs {
			ev, err := s.storedEvent(ctx, es.ID, false)
			if veil.ErrorCode(err) == veil.EGONE || veil.ErrorCode(err) == veil.ECONFLICT {
				im.Skip()
				continue
			} else if err != nil {
				return veil.PolicyImpact{}, err
			}
			err = im.Add(ctx, ev)
			ev.Release()
			if err != nil {
				return veil.PolicyImpact{}, err
			}
		}
		if len(evs) < min(n, 500) {
			break
		}
		n -= len(evs)
		before = evs[len(evs)-1].ID
	}
	return im.Result(), nil
}

// maxDraftBytes bounds a policy module pasted or uploaded as a draft.
const maxDraftBytes = 60 << 10

var packageLine = regexp.MustCompile(`(?m)^\s*package\s+([A-Za-z_][\w.]*)`)

// DraftImpactRego compares the running set with the running set in which
// one module is replaced (the one of the same package, its tests left
// out) or added: a compliance officer's draft, pasted or uploaded. The copy is compiled
// and loaded as a reload would be, in a folder of its own, then removed.
func (ps *Policies) DraftImpactRego(ctx context.Context, rego string, n int) (veil.PolicyImpact, error) {
	if len(rego) > maxDraftBytes {
		return veil.PolicyImpact{}, veil.Errorf(veil.EINVALID, "The draft is over %d KiB; compare a folder instead.", maxDraftBytes>>10)
	}
	m := packageLine.FindStringSubmatch(rego)
	if m == nil {
		return veil.PolicyImpact{}, veil.Errorf(veil.EINVALID, "The draft has no package line (package veil.destinations.NAME).")
	}
	tmp, err := os.MkdirTemp("", "veil-draft-")
	if err != nil {
		return veil.PolicyImpact{}, err
	}
	defer os.RemoveAll(tmp)
	files, err := filepath.Glob(filepath.Join(ps.Pipeline.Config.Policies, "*.rego"))
	if err != nil {
		return veil.PolicyImpact{}, err
	}
	var leftOut []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return veil.PolicyImpact{}, err
		}
		if pm := packageLine.FindSubmatch(b); pm != nil && (string(pm[1]) == m[1] || string(pm[1]) == m[1]+"_test") {
			// The draft replaces the module; its tests test the module
			// replaced, and are left out (a draft may paste its own).
			if string(pm[1]) != m[1] {
				leftOut = append(leftOut, filepath.Base(f))
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(tmp, filepath.Base(f)), b, 0o600); err != nil {
			return veil.PolicyImpact{}, err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "draft.rego"), []byte(rego), 0o600); err != nil {
		return veil.PolicyImpact{}, err
	}
	im, err := ps.DraftImpact(ctx, tmp, n)
	im.TestsLeftOut = leftOut
	return im, err
}

// Impact compares two policy sets event by event: per destination, the
// fields the candidate would newly send and those it would stop sending.
type Impact struct {
	before, after      *policy.Set
	targets            []Target
	events, skipped    int
	gained, lost       map[string]map[string]int // destination → field → events
	catGained, catLost map[string]map[string]int // destination → category → events
	samples            map[string][]veil.ImpactSample
}

// impactSamples is how many before-and-after bodies are kept per
// destination.
const impactSamples = 3

// NewImpact compares after with before for targets.
func NewImpact(before, after *policy.Set, targets []Target) *Impact {
	return &Impact{before: before, after: after, targets: targets,
		gained: map[string]map[string]int{}, lost: map[string]map[string]int{},
		catGained: map[string]map[string]int{}, catLost: map[string]map[string]int{}, samples: map[string][]veil.ImpactSample{}}
}

// Skip counts an event that could not be compared.
func (im *Impact) Skip() { im.skipped++ }

// Add decides ev under both sets for every destination of its source.
func (im *Impact) Add(ctx context.Context, ev *Prepared) error {
	im.events++
	inBefore, err := im.before.NewInput(ev.Event, ev.Normal)
	if err != nil {
		return fmt.Errorf("policy input: %w", err)
	}
	inAfter, err := im.after.NewInput(ev.Event, ev.Normal)
	if err != nil {
		return fmt.Errorf("policy input: %w", err)
	}
	for _, t := range im.targets {
		if !slices.Contains(t.Sources, ev.Event.Source) {
			continue
		}
		db, da := Decide(ctx, im.before, inBefore, ev, t), Decide(ctx, im.after, inAfter, ev, t)
		b, a := leaving(db), leaving(da)
		if im.gained[t.Name] == nil {
			im.gained[t.Name], im.lost[t.Name] = map[string]int{}, map[string]int{}
			im.catGained[t.Name], im.catLost[t.Name] = map[string]int{}, map[string]int{}
		}
		changed := diffCount(im.gained[t.Name], im.lost[t.Name], b, a)
		if diffCount(im.catGained[t.Name], im.catLost[t.Name], released(db), released(da)) {
			changed = true
		}
		if changed && len(im.samples[t.Name]) < impactSamples {
			im.samples[t.Name] = append(im.samples[t.Name], veil.ImpactSample{EventID: ev.Event.ID, EventType: ev.Event.EventType,
				Before: sentBody(db), After: sentBody(da)})
		}
	}
	return nil
}

// Result is the comparison so far, destinations and fields in order.
func (im *Impact) Result() veil.PolicyImpact {
	out := veil.PolicyImpact{Events: im.events, Skipped: im.skipped}
	for _, t := range im.targets {
		if im.gained[t.Name] == nil {
			continue
		}
		out.Changes = append(out.Changes, veil.DestinationImpact{Destination: t.Name,
			Gained: fieldChanges(im.gained[t.Name]), Lost: fieldChanges(im.lost[t.Name]),
			CategoriesGained: fieldChanges(im.catGained[t.Name]), CategoriesLost: fieldChanges(im.catLost[t.Name]),
			Samples: im.samples[t.Name]})
	}
	slices.SortFunc(out.Changes, func(a, b veil.DestinationImpact) int { return strings.Compare(a.Destination, b.Destination) })
	return out
}

func fieldChanges(m map[string]int) []veil.FieldChange {
	var out []veil.FieldChange
	for f, n := range m {
		out = append(out, veil.FieldChange{Field: f, Events: n})
	}
	slices.SortFunc(out, func(a, b veil.FieldChange) int { return strings.Compare(a.Field, b.Field) })
	return out
}

// diffCount counts into gained what is in after and not before, into lost
// the reverse; true when anything differs.
func diffCount(gained, lost map[string]int, before, after map[string]bool) bool {
	changed := false
	for f := range after {
		if !before[f] {
			gained[f]++
			changed = true
		}
	}
	for f := range before {
		if !after[f] {
			lost[f]++
			changed = true
		}
	}
	return changed
}

// leaving is the set of fields a decision sends with a value: kept paths,
// and pseudonymised ones marked as such, that are present and not null in
// the outbound body (a policy that keeps a field the event does not
// carry sends nothing of it). A delivery not sent sends nothing.
func leaving(d *veil.Delivery) map[string]bool {
	out := map[string]bool{}
	if !allowed(d) {
		return out
	}
	for _, p := range d.FieldsKept {
		if hasValue(d.Body, p) {
			out[p] = true
		}
	}
	for _, p := range d.Pseudonymized {
		if hasValue(d.Body, p) {
			out[p+" (pseudonymised)"] = true
		}
	}
	return out
}

// hasValue reports whether path (a pattern, # for each element of an
// array) has a non-null value in body.
func hasValue(body []byte, path string) bool {
	r := gjson.GetBytes(body, path)
	if !r.Exists() || r.Type == gjson.Null {
		return false
	}
	if strings.Contains(path, "#") && r.IsArray() {
		for _, v := range r.Array() {
			if v.Exists() && v.Type != gjson.Null && !(v.IsArray() && len(v.Array()) == 0) {
				return true
			}
		}
		return false
	}
	return true
}

// released is the set of categories a decision sends.
func released(d *veil.Delivery) map[string]bool {
	out := map[string]bool{}
	if allowed(d) {
		for _, c := range d.Categories {
			out[c] = true
		}
	}
	return out
}

// sentBody is the body a decision sends, indented; "" for none.
func sentBody(d *veil.Delivery) string {
	if !allowed(d) || d.Body == nil {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, d.Body, "", "  ") != nil {
		return string(d.Body)
	}
	return b.String()
}

// allowed reports whether a decision sends a body: now, or once a person
// approves it.
func allowed(d *veil.Delivery) bool {
	return d.Status == veil.DeliveryPending || d.Status == veil.DeliveryHeld
}
