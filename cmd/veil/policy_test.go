package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runVeil runs one veil command in-process and returns its exit code and output.
func runVeil(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), args, &out, &out)
	return code, out.String()
}

func TestPolicyTest(t *testing.T) {
	code, out := runVeil(t, "policy", "test", "../../policies")
	if code != 0 || !strings.Contains(out, "PASS:") {
		t.Fatalf("shipped policies: exit %d, want 0 with OPA's summary:\n%s", code, out)
	}
	broken := t.TempDir()
	copyPolicies(t, broken)
	os.WriteFile(filepath.Join(broken, "extra_test.rego"), []byte("package x_test\n\ntest_fails if false\n"), 0o644)
	code, out = runVeil(t, "policy", "test", broken)
	if code != 1 || !strings.Contains(out, "FAIL") {
		t.Fatalf("failing test: exit %d, want 1 with FAIL:\n%s", code, out)
	}
	if code, _ := runVeil(t, "policy", "test", "a", "b"); code != 2 {
		t.Fatalf("usage error: exit %d, want 2", code)
	}
}

// personalPath matches payload paths that hold personal data in the samples:
// people (candidate, recruiters, referrers…), contact fields, free text,
// custom fields and survey answers, EEO and onboarding data.
var personalPath = regexp.MustCompile(`(?i)(candidate\.|credited_?to|recruiter|coordinator|hiringteam|moved_by|referrer|interviewers|author|emergency_contact|eeo|onboarding|custom_?fields|submittedvalues|attachments|filehandles)|(content|notes?|submitterclientip|submitteruseragent|\.url)$`)

// notPersonal are leaf names under those paths that are record ids or enums.
var notPersonal = regexp.MustCompile(`(?i)(\.id|id|\.type|\.kind|\.isprimary|\.title|\.role|\.status|\.isenabled|_at|at|\.globalrole|employments\..*|\.company|\.can_email|\.is_private|\.external_id|\.name)$`)

// personalValues returns the sample's personal string values of 4+ characters.
func personalValues(t *testing.T, body []byte) map[string]string {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(path+"."+k, c)
			}
		case []any:
			for _, c := range x {
				walk(path+".#", c)
			}
		case string:
			named := strings.HasSuffix(path, "name") && personalPath.MatchString(path) && !strings.Contains(path, "custom")
			if len([]rune(x)) >= 4 && personalPath.MatchString(path) && (named || !notPersonal.MatchString(path)) {
				out[path] = x
			}
		}
	}
	walk("", v)
	return out
}

// TestPolicyPreview_NoPersonalData: for every sample, what slack-hiring and
// bi-warehouse would receive holds no name, email, phone, address, resume
// URL or free-text note of the sample.
func TestPolicyPreview_NoPersonalData(t *testing.T) {
	config := writeConfig(t, t.TempDir(), "")
	samples, _ := filepath.Glob("../../testdata/samples/*/*.json")
	sources := map[string]string{"greenhouse": "greenhouse", "lever": "lever", "ashby": "ashby", "standard-webhooks": "standard"}
	checked := 0
	for _, f := range samples {
		src, ok := sources[filepath.Base(filepath.Dir(f))]
		if !ok {
			continue
		}
		pii := personalValues(t, mustRead(t, f))
		for _, dest := range []string{"slack-hiring", "bi-warehouse"} {
			code, out := runVeil(t, "policy", "preview", "--config", config, "--destination", dest, "--source", src, f)
			if code != 0 {
				t.Fatalf("%s %s: exit %d\n%s", f, dest, code, out)
			}
			body := out
			if i := strings.Index(out, "\nkept ("); i >= 0 {
				body = out[:i] // the paths listed after the body are names, not values
			}
			for path, v := range pii {
				if strings.Contains(strings.ToLower(body), strings.ToLower(v)) {
					t.Errorf("%s -> %s: the value of %s is in the preview", filepath.Base(f), dest, path)
				}
			}
			checked++
		}
		if len(pii) == 0 && src != "lever" {
			t.Errorf("%s: no personal values found: the check would see nothing", f)
		}
	}
	if checked < 30 {
		t.Fatalf("checked %d previews, want every sample for both destinations", checked)
	}
}

// TestPolicyPreview_LeakGuardBlocksNote: a policy that keeps a free-text
// note quoting the candidate's name is blocked, naming the field, not the value.
func TestPolicyPreview_LeakGuardBlocksNote(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	os.WriteFile(filepath.Join(dir, "policies", "bi_events.rego"), []byte(`package veil.destinations.bi_events

allow := true

keep := {"payload.application.id", "payload.application.custom_fields.referral_note.value"}
`), 0o644)
	os.Remove(filepath.Join(dir, "policies", "bi_events_test.rego"))
	code, out := runVeil(t, "policy", "preview", "--config", config, "--destination", "bi-warehouse",
		"../../testdata/samples/greenhouse/candidate_stage_change.json")
	if code != 0 || !strings.Contains(out, "BLOCKED by the leak guard") {
		t.Fatalf("exit %d, want 0 and BLOCKED:\n%s", code, out)
	}
	if !strings.Contains(out, "payload.application.candidate.first_name") {
		t.Errorf("the leaked field is not named:\n%s", out)
	}
	if strings.Contains(out, "Priya") || strings.Contains(out, "7700") {
		t.Errorf("the preview of a blocked delivery shows a value:\n%s", out)
	}
}

func TestPolicyDiff(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	candidate := filepath.Join(dir, "candidate")
	copyPolicies(t, candidate)
	p := filepath.Join(candidate, "bi_events.rego")
	// The candidate sends the candidate's title in clear and stops
	// pseudonymising record ids.
	b := strings.Replace(string(mustRead(t, p)), `pseudonymize_categories := {"user.unique_id"}`, `keep := {"candidate.title"}`, 1)
	os.WriteFile(p, []byte(b), 0o644)
	os.Remove(filepath.Join(candidate, "bi_events_test.rego"))
	code, out := runVeil(t, "policy", "diff", "--config", config, "--policies", candidate, "--samples", "../../testdata/samples")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"+ candidate.title  (newly leaves", "- candidate.id (pseudonymised)  (stops leaving", "slack-hiring:\n  no change"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
}

// TestPolicyAuthoring: `veil policy test` names file and line of a
// misspelled input.event field and of a keep entry no event can match,
// names untested destination packages, prints coverage; `policy fmt
// --check` and `policy schema` work; `policy preview` infers the source or
// lists the candidates.
func TestPolicyAuthoring(t *testing.T) {
	dir := t.TempDir()
	copyPolicies(t, dir)
	p := filepath.Join(dir, "slack_hiring.rego")
	src := string(mustRead(t, p))
	typo := strings.Replace(src, "allow if input.event.type in moves", "allow if input.event.typ in moves", 1)
	if typo == src {
		t.Fatal("could not plant the typo")
	}
	os.WriteFile(p, []byte(typo), 0o644)
	code, out := runVeil(t, "policy", "test", dir)
	if code != 1 || !regexp.MustCompile(`slack_hiring\.rego:\d+: .*undefined ref: input\.event\.typ`).MatchString(out) {
		t.Errorf("typo: exit %d, want 1 naming slack_hiring.rego:line and the ref:\n%s", code, out)
	}
	os.WriteFile(p, []byte(src), 0o644)
	h := filepath.Join(dir, "hris_onboarding.rego")
	hsrc := string(mustRead(t, h))
	os.WriteFile(h, []byte(strings.Replace(hsrc, `"offer.starts_at"`, `"offer.start_date"`, 1)), 0o644)
	code, out = runVeil(t, "policy", "test", dir)
	if code != 1 || !regexp.MustCompile(`hris_onboarding\.rego:\d+: keep entry "offer\.start_date" addresses no field`).MatchString(out) {
		t.Errorf("keep typo: exit %d, want 1 naming hris_onboarding.rego:line:\n%s", code, out)
	}
	os.WriteFile(h, []byte(hsrc), 0o644)

	os.Remove(filepath.Join(dir, "bi_events_test.rego"))
	code, out = runVeil(t, "policy", "test", "--coverage", dir)
	if code != 0 || !strings.Contains(out, "no tests: veil.destinations.bi_events") || !strings.Contains(out, "coverage:") ||
		!regexp.MustCompile(`\d+\.\d%\s+in all`).MatchString(out) {
		t.Errorf("untested package and coverage: exit %d\n%s", code, out)
	}

	if code, out := runVeil(t, "policy", "fmt", "--check", "../../policies"); code != 0 {
		t.Errorf("shipped policies not formatted: exit %d\n%s", code, out)
	}
	os.WriteFile(p, []byte(strings.Replace(src, "allow if input.event.type in moves", "allow   if   input.event.type in moves", 1)), 0o644)
	if code, out := runVeil(t, "policy", "fmt", "--check", dir); code != 1 || !strings.Contains(out, "slack_hiring.rego") {
		t.Errorf("fmt --check: exit %d, want 1 naming the file\n%s", code, out)
	}
	if code, out := runVeil(t, "policy", "fmt", dir); code != 0 || string(mustRead(t, p)) != src {
		t.Errorf("fmt: exit %d, the file is not back to its formatted self\n%s", code, out)
	}

	code, out = runVeil(t, "policy", "schema")
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, `"x-category"`) {
		t.Errorf("schema: exit %d\n%.300s", code, out)
	}
	code, out = runVeil(t, "policy", "schema", "--table")
	if code != 0 || !regexp.MustCompile(`candidate\.emails\.#\s+user\.contact\.email`).MatchString(out) {
		t.Errorf("schema --table: exit %d\n%s", code, out)
	}

	// Preview: the source is inferred from the file, or the candidates listed.
	config := writeConfig(t, t.TempDir(), "")
	code, out = runVeil(t, "policy", "preview", "--config", config, "--destination", "bi-warehouse",
		"../../testdata/samples/smartrecruiters/application.created.json")
	if code != 0 || !strings.Contains(out, "source: smartrecruiters (smartrecruiters)") || !strings.Contains(out, "event: application.created") {
		t.Errorf("preview infers smartrecruiters: exit %d\n%s", code, out)
	}
	ambiguous := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(ambiguous, []byte(`{"hello":"world"}`), 0o644)
	code, out = runVeil(t, "policy", "preview", "--config", config, "--destination", "bi-warehouse", ambiguous)
	if code != 2 || !strings.Contains(out, "name one with --source") {
		t.Errorf("preview of an unrecognised file: exit %d\n%s", code, out)
	}
}

// TestReadme_FirstPolicy runs "Write your first policy" from the README as
// written: its two Rego blocks, tested, and previewed for two vendors.
func TestReadme_FirstPolicy(t *testing.T) {
	readme := string(mustRead(t, "../../README.md"))
	i := strings.Index(readme, "### Write your first policy")
	if i < 0 {
		t.Fatal("README has no \"Write your first policy\"")
	}
	blocks := regexp.MustCompile("(?s)```rego\n(.*?)```").FindAllStringSubmatch(readme[i:], 2)
	if len(blocks) != 2 {
		t.Fatalf("found %d rego blocks, want the policy and its test", len(blocks))
	}
	if n := strings.Count(strings.TrimSpace(blocks[0][1]), "\n") + 1; n > 10 {
		t.Errorf("the policy is %d lines, the README promises ten", n)
	}
	dir := t.TempDir()
	config := writeConfig(t, dir, `
  - {name: offers-feed, url: "http://127.0.0.1:9/offers", sources: [greenhouse, standard], policy: veil.destinations.offers_feed, allow_private_network: true}
`)
	os.WriteFile(filepath.Join(dir, "policies", "offers_feed.rego"), []byte(blocks[0][1]), 0o644)
	os.WriteFile(filepath.Join(dir, "policies", "offers_feed_test.rego"), []byte(blocks[1][1]), 0o644)
	if code, out := runVeil(t, "policy", "test", "--coverage", "--config", config); code != 0 || strings.Contains(out, "no tests: veil.destinations.offers_feed") {
		t.Fatalf("policy test: exit %d\n%s", code, out)
	}
	if code, out := runVeil(t, "policy", "fmt", "--check", filepath.Join(dir, "policies")); code != 0 {
		t.Errorf("the README's policy is not formatted: %s", out)
	}
	for _, f := range []string{"greenhouse/offer_created.json", "standard-webhooks/offer.created.json"} {
		code, out := runVeil(t, "policy", "preview", "--config", config, "--destination", "offers-feed", "../../testdata/samples/"+f)
		if code != 0 || !strings.Contains(out, "decision: allowed") || !strings.Contains(out, `"id": "ps_`) || strings.Contains(out, "compensation\": {") ||
			!strings.Contains(out, `"starts_at": "`) {
			t.Errorf("%s: exit %d\n%s", f, code, out)
		}
	}
}
