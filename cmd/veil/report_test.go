package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policy"
)

// TestReportProcessing: the report lists every destination of the config
// with exactly the categories and fields its policy lets through for the
// samples, the data subjects, purpose, legal basis and retention in human
// units, and what the audit log shows did leave.
func TestReportProcessing(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	// What the audit log shows: one delivered hire to the HRIS, one lookup.
	cfg, st, err := loadStore(config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d := &veil.Delivery{Destination: "hris-onboarding", Status: veil.DeliveryPending, Body: []byte(`{}`),
		FieldsKept: []string{"candidate.name"}, Categories: []string{"system.operations", "user.name"}}
	ev := &veil.Event{ID: veil.NewID("evt_"), Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate",
		Subject: "greenhouse:candidate:1", ReceivedAt: time.Now(), Payload: []byte(`{}`)}
	if _, _, err := st.IngestEvent(ctx, ev, []*veil.Delivery{d}, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.ClaimDeliveries(ctx, time.Now().Add(time.Minute), map[string]int{"hris-onboarding": 1}, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	d = claimed[0]
	if err := st.FinishDelivery(ctx, d, &veil.Attempt{Status: veil.DeliveryDelivered, HTTPStatus: 200}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out := runVeil(t, "report", "processing", "--config", config, "--format", "json", "--samples", "../../testdata/samples")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var rep processingReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Destinations) != len(cfg.Destinations) {
		t.Fatalf("%d records, want one per destination (%d)", len(rep.Destinations), len(cfg.Destinations))
	}
	if rep.PayloadRetention != humanDuration(time.Duration(cfg.Retention.Payload)) || strings.Contains(rep.PayloadRetention, "h0m") {
		t.Errorf("payload retention %q", rep.PayloadRetention)
	}
	set, err := policy.Load(ctx, filepath.Join(dir, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	// Expected: the union of what each sample would carry to each destination.
	wantCats, wantFields := map[string]map[string]bool{}, map[string]map[string]bool{}
	headers := sampleHeaders("../../testdata/samples")
	files, _ := filepath.Glob("../../testdata/samples/*/*.json")
	for _, f := range files {
		src := sourceForVendor(cfg, sampleVendors[filepath.Base(filepath.Dir(f))])
		if src == nil {
			continue // no source of that vendor configured
		}
		body, _ := os.ReadFile(f)
		for _, tg := range proxyTargets(cfg) {
			d, err := decideFile(ctx, set, src, tg, body, headers[sampleKey("../../testdata/samples", f)])
			if err != nil {
				t.Fatal(err)
			}
			if wantCats[tg.Name] == nil {
				wantCats[tg.Name], wantFields[tg.Name] = map[string]bool{}, map[string]bool{}
			}
			if d.Status == veil.DeliveryPending {
				addAll(wantCats[tg.Name], d.Categories)
				addAll(wantFields[tg.Name], append(d.FieldsKept, d.Pseudonymized...))
			}
		}
	}
	for _, r := range rep.Destinations {
		if got, w := strings.Join(r.Categories, ","), strings.Join(sortedKeys(wantCats[r.Destination]), ","); got != w {
			t.Errorf("%s: categories\n got %s\nwant %s", r.Destination, got, w)
		}
		if got, w := strings.Join(r.Fields, ","), strings.Join(sortedKeys(wantFields[r.Destination]), ","); got != w {
			t.Errorf("%s: fields\n got %s\nwant %s", r.Destination, got, w)
		}
		if r.Host != "127.0.0.1" || r.Policy == "" || strings.Join(r.DataSubjects, ",") != "job_applicant" {
			t.Errorf("%s: incomplete record %+v", r.Destination, r)
		}
	}
	byName := func(n string) processingRecord {
		return rep.Destinations[slices.IndexFunc(rep.Destinations, func(r processingRecord) bool { return r.Destination == n })]
	}
	hris := byName("hris-onboarding")
	for _, c := range []string{"user.name", "user.contact.email", "user.unique_id"} {
		if !slices.Contains(hris.Categories, c) {
			t.Errorf("hris-onboarding: categories %v, want %s", hris.Categories, c)
		}
	}
	if hris.Processor.LegalBasis != "contract" || hris.Deliveries != 1 || strings.Join(hris.CategoriesObserved, ",") != "system.operations,user.name" {
		t.Errorf("hris-onboarding: %+v", hris)
	}
	bi := byName("bi-warehouse")
	if !slices.Contains(bi.Pseudonymized, "candidate.id") || slices.ContainsFunc(bi.Categories, func(c string) bool { return veil.Personal(c) && c != "user.unique_id" }) {
		t.Errorf("bi-warehouse: pseudonymised %v, categories %v", bi.Pseudonymized, bi.Categories)
	}
	slack := byName("slack-hiring")
	if slices.ContainsFunc(slack.Categories, func(c string) bool { return veil.Personal(c) && c != "user.unique_id" }) {
		t.Errorf("slack-hiring: categories %v", slack.Categories)
	}
	code, md := runVeil(t, "report", "processing", "--config", config, "--samples", "../../testdata/samples")
	if code != 0 || !strings.Contains(md, "## hris-onboarding") || !strings.Contains(md, "(pseudonymised)") ||
		!strings.Contains(md, "user.contact.email") || !strings.Contains(md, "| legal basis | contract |") || !strings.Contains(md, "(1 deliveries)") {
		t.Fatalf("markdown: exit %d\n%s", code, md)
	}
	if !strings.Contains(md, rep.PayloadRetention) {
		t.Errorf("markdown lacks the retention %q", rep.PayloadRetention)
	}
	// Without --samples, wherever it runs: the samples compiled in, and
	// the Art. 30 items the config gives and Veil fills itself.
	code, out = runVeil(t, "report", "processing", "--config", config, "--format", "json")
	var embedded processingReport
	if code != 0 || json.Unmarshal([]byte(out), &embedded) != nil {
		t.Fatalf("report without --samples: exit %d\n%s", code, out)
	}
	if h := byNameIn(embedded, "hris-onboarding"); !slices.Contains(h.Categories, "user.contact.email") ||
		!slices.Contains(h.DataSubjects, "job_applicant") || len(embedded.SecurityMeasures) < 5 ||
		!strings.Contains(embedded.Samples, "compiled into veil") {
		t.Errorf("report on the compiled-in samples: %+v, measures %d, samples %q", h, len(embedded.SecurityMeasures), embedded.Samples)
	}
	// --since after the delivery: nothing observed.
	code, out = runVeil(t, "report", "processing", "--config", config, "--format", "json", "--samples", "../../testdata/samples",
		"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	rep = processingReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if h := byNameIn(rep, "hris-onboarding"); h.Deliveries != 0 || len(h.CategoriesObserved) != 0 {
		t.Errorf("since later: %+v", h)
	}
}

func byNameIn(rep processingReport, n string) processingRecord {
	for _, r := range rep.Destinations {
		if r.Destination == n {
			return r
		}
	}
	return processingRecord{}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{72 * time.Hour: "72 hours", 365 * 24 * time.Hour: "365 days",
		5 * time.Minute: "5 minutes", time.Hour: "1 hour", 90 * time.Second: "90 seconds", 48 * time.Hour: "48 hours", 7 * 24 * time.Hour: "7 days"} {
		if got := humanDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}
