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
	b := strings.Replace(string(mustRead(t, p)), `"payload.application.status",`, `"payload.application.source.name",`, 1)
	os.WriteFile(p, []byte(b), 0o644)
	code, out := runVeil(t, "policy", "diff", "--config", config, "--policies", candidate, "--samples", "../../testdata/samples")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"+ payload.application.source.name  (newly leaves", "- payload.application.status  (stops leaving", "slack-hiring:\n  no change"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
}
