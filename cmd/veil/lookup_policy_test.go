package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
	"github.com/veilhq/veil/policy"
)

// TestLookupPolicy_Samples: for every sample of every vendor, the shipped
// lookup policy releases to onboarding the hire's ids, name and email and
// the job (hires only), to analytics the pipeline facts with pseudonymised
// ids and no personal value at all.
func TestLookupPolicy_Samples(t *testing.T) {
	set, err := policy.Load(context.Background(), "../../policies")
	if err != nil {
		t.Fatal(err)
	}
	onboardingMay := map[string]bool{"type": true, "job.id": true, "job.title": true, "offer.starts_at": true,
		"candidate.id": true, "application.id": true, "candidate.first_name": true, "candidate.last_name": true,
		"candidate.name": true, "candidate.emails": true, "candidate.emails.#": true}
	hires := map[string]bool{"greenhouse/hire_candidate.json": true, "ashby/candidateHire.json": true,
		"lever/candidateHired.json": true, "standard-webhooks/candidate.hired.json": true}
	sources := map[string]string{"greenhouse": veil.VendorGreenhouse, "lever": veil.VendorLever, "ashby": veil.VendorAshby,
		"standard-webhooks": veil.VendorStandard, "smartrecruiters": veil.VendorSmartRecruiters}
	headers := sampleHeaders("../../testdata/samples")
	files, _ := filepath.Glob("../../testdata/samples/*/*.json")
	checked := 0
	for _, f := range files {
		rel := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		vendor, ok := sources[filepath.Base(filepath.Dir(f))]
		if !ok {
			continue
		}
		checked++
		src := &veil.Source{Name: vendor, Vendor: vendor, Secret: "whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw="}
		body := mustRead(t, f)
		ev, err := gateway.NewEvent(src, headers[rel], body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		release := func(consumer, purpose string) (bool, []string, []string, string) {
			dec, err := set.DecideLookup(context.Background(), consumer, purpose, ev.Event, ev.Normal)
			if err != nil {
				t.Fatal(err)
			}
			if !dec.Allow {
				return false, nil, nil, ""
			}
			res, err := gateway.Project(ev, dec, []byte("k"))
			if err != nil || res.LeakPath != "" {
				t.Fatalf("%s %s: %v leak %q in %q", rel, consumer, err, res.LeakPath, res.LeakIn)
			}
			paths := append(slices.Clone(res.Kept), res.Pseudonymized...)
			slices.Sort(paths)
			return true, paths, res.Categories, string(res.Body)
		}
		allowed, paths, cats, body1 := release("onboarding", "onboarding")
		if allowed != hires[rel] {
			t.Errorf("%s onboarding: allowed %v, want %v", rel, allowed, hires[rel])
		}
		for _, p := range paths {
			if !onboardingMay[p] {
				t.Errorf("%s onboarding: released %s", rel, p)
			}
		}
		for _, c := range cats {
			if veil.Personal(c) && !veil.AnyUnder(c, []string{"user.unique_id", "user.name", "user.contact.email"}) {
				t.Errorf("%s onboarding: released category %s", rel, c)
			}
		}
		if name := ev.Normal.Candidate.Name; allowed && name != nil && !strings.Contains(body1, *name) {
			t.Errorf("%s onboarding: the hire's name is not released: %s", rel, body1)
		}
		allowed, _, cats, body2 := release("analytics", "analytics")
		if !allowed {
			t.Errorf("%s analytics: denied, want allowed", rel)
		}
		for _, c := range cats {
			if veil.Personal(c) && c != "user.unique_id" {
				t.Errorf("%s analytics: released category %s", rel, c)
			}
		}
		if id := ev.Normal.Candidate.ID; id != nil && strings.Contains(body2, *id) {
			t.Errorf("%s analytics: the candidate id is released in clear", rel)
		}
		for path, v := range personalValues(t, body) {
			if strings.Contains(strings.ToLower(body2), strings.ToLower(v)) {
				t.Errorf("%s analytics: the value of %s is released", rel, path)
			}
		}
		if allowed, _, _, _ := release("onboarding", "analytics"); allowed {
			t.Errorf("%s: onboarding with another purpose is allowed", rel)
		}
		ev.Release()
	}
	if checked < 17 {
		t.Errorf("checked %d samples, want every vendor's", checked)
	}
}
