package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/proxy"
)

// TestLookupPolicy_Samples: for every sample, the shipped lookup policy
// releases exactly the documented fields: to onboarding the hire's ids,
// name and email (hires only), to analytics no personal value at all.
func TestLookupPolicy_Samples(t *testing.T) {
	set, err := policy.Load(context.Background(), "../../policies")
	if err != nil {
		t.Fatal(err)
	}
	onboardingHires := map[string][]string{
		"greenhouse/hire_candidate.json": {"action", "payload.application.candidate.email_addresses.#.value",
			"payload.application.candidate.first_name", "payload.application.candidate.id", "payload.application.candidate.last_name", "payload.application.id"},
		"ashby/candidateHire.json": {"action", "data.application.candidate.id", "data.application.candidate.name",
			"data.application.candidate.primaryEmailAddress.value", "data.application.id"},
		"lever/candidateHired.json": {"data.candidateId", "data.opportunityId", "event"},
		"standard-webhooks/candidate.hired.json": {"data.application_id", "data.candidate.emails.#.address", "data.candidate.first_name",
			"data.candidate.id", "data.candidate.last_name", "type"},
	}
	sources := map[string]string{"greenhouse": veil.VendorGreenhouse, "lever": veil.VendorLever, "ashby": veil.VendorAshby,
		"standard-webhooks": veil.VendorStandard, "smartrecruiters": veil.VendorSmartRecruiters}
	files, _ := filepath.Glob("../../testdata/samples/*/*.json")
	for _, f := range files {
		rel := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		vendor := sources[filepath.Base(filepath.Dir(f))]
		src := &veil.Source{Name: vendor, Vendor: vendor, Secret: "whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw="}
		body := mustRead(t, f)
		e, doc, err := proxy.NewEvent(src, nil, body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		release := func(consumer, purpose string) (bool, []string, string) {
			dec, err := set.DecideLookup(context.Background(), consumer, purpose, e)
			if err != nil {
				t.Fatal(err)
			}
			if !dec.Allow {
				return false, nil, ""
			}
			res, err := doc.Apply(dec, []byte("k"))
			if err != nil || res.LeakPath != "" {
				t.Fatalf("%s %s: %v leak %q", rel, consumer, err, res.LeakPath)
			}
			paths := append(slices.Clone(res.Kept), res.Pseudonymized...)
			slices.Sort(paths)
			return true, paths, string(res.Body)
		}
		allowed, paths, _ := release("onboarding", "onboarding")
		if want, hire := onboardingHires[rel]; hire != allowed || (hire && strings.Join(paths, ",") != strings.Join(want, ",")) {
			t.Errorf("%s onboarding: allowed %v, released %v; want %v %v", rel, allowed, paths, hire, want)
		}
		allowed, _, body2 := release("analytics", "analytics")
		if !allowed {
			t.Errorf("%s analytics: denied, want allowed", rel)
		}
		for path, v := range personalValues(t, body) {
			if strings.Contains(strings.ToLower(body2), strings.ToLower(v)) {
				t.Errorf("%s analytics: the value of %s is released", rel, path)
			}
		}
		if allowed, _, _ := release("onboarding", "analytics"); allowed {
			t.Errorf("%s: onboarding with another purpose is allowed", rel)
		}
	}
}
