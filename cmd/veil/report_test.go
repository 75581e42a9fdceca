package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policy"
)

// TestReportProcessing: the report lists every destination of the config
// with exactly the paths its policy lets through for the samples.
func TestReportProcessing(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	code, out := runVeil(t, "report", "processing", "--config", config, "--format", "json", "--samples", "../../testdata/samples")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var recs []processingRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cfg, err := veil.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(cfg.Destinations) {
		t.Fatalf("%d records, want one per destination (%d)", len(recs), len(cfg.Destinations))
	}
	set, err := policy.Load(context.Background(), filepath.Join(dir, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	// Expected: the union of what each sample would carry to each destination.
	want := map[string]map[string]bool{}
	files, _ := filepath.Glob("../../testdata/samples/*/*.json")
	for _, f := range files {
		src := sourceForVendor(cfg, sampleVendors[filepath.Base(filepath.Dir(f))])
		if src == nil {
			continue // no source of that vendor configured
		}
		body, _ := os.ReadFile(f)
		for _, tg := range proxyTargets(cfg) {
			d, err := decideFile(context.Background(), set, src, tg, body)
			if err != nil {
				t.Fatal(err)
			}
			if want[tg.Name] == nil {
				want[tg.Name] = map[string]bool{}
			}
			if d.Status == veil.DeliveryPending {
				for _, p := range append(d.FieldsKept, d.Pseudonymized...) {
					want[tg.Name][p] = true
				}
			}
		}
	}
	for _, r := range recs {
		if got, w := strings.Join(r.Paths, ","), strings.Join(sortedKeys(want[r.Destination]), ","); got != w {
			t.Errorf("%s: paths\n got %s\nwant %s", r.Destination, got, w)
		}
		if r.Host != "127.0.0.1" || r.Policy == "" || r.PayloadRetained == "" {
			t.Errorf("%s: incomplete record %+v", r.Destination, r)
		}
	}
	hris := recs[slices.IndexFunc(recs, func(r processingRecord) bool { return r.Destination == "hris-onboarding" })]
	if !slices.Contains(hris.Paths, "payload.application.candidate.first_name") || len(hris.EventTypes) == 0 {
		t.Errorf("hris-onboarding: %v %v, want the hire's name among its paths", hris.Paths, hris.EventTypes)
	}
	bi := recs[slices.IndexFunc(recs, func(r processingRecord) bool { return r.Destination == "bi-warehouse" })]
	if !slices.Contains(bi.Pseudonymized, "payload.application.candidate.id") {
		t.Errorf("bi-warehouse: pseudonymised %v, want the candidate id", bi.Pseudonymized)
	}
	code, md := runVeil(t, "report", "processing", "--config", config, "--samples", "../../testdata/samples")
	if code != 0 || !strings.Contains(md, "## hris-onboarding") || !strings.Contains(md, "(pseudonymised)") {
		t.Fatalf("markdown: exit %d\n%s", code, md)
	}
}
