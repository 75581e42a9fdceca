package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/redact"
)

// bodySink is a destination on loopback that keeps every body it gets,
// by path.
type bodySink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies map[string][][]byte
	ids    map[string][]string // webhook-id of each body, in the same order
}

func newBodySink(t *testing.T) *bodySink {
	s := &bodySink{bodies: map[string][][]byte{}, ids: map[string][]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies[r.URL.Path] = append(s.bodies[r.URL.Path], b)
		s.ids[r.URL.Path] = append(s.ids[r.URL.Path], r.Header.Get("webhook-id"))
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *bodySink) got(path string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies[path]...)
}

func (s *bodySink) webhookIDs(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids[path]...)
}

// sinkDestinations sends the three shipped destinations, for all six
// sources, to a body sink, plus a vendor-format destination for
// Greenhouse whose policy keeps a free-text note.
func sinkDestinations(url string) string {
	return fmt.Sprintf(`
destinations:
  - {name: slack-hiring, url: "%[1]s/slack", sources: [greenhouse, lever, ashby, standard, smartrecruiters, workable], policy: veil.destinations.slack_hiring, allow_private_network: true}
  - {name: bi-warehouse, url: "%[1]s/bi", sources: [greenhouse, lever, ashby, standard, smartrecruiters, workable], policy: veil.destinations.bi_events, allow_private_network: true}
  - name: hris-onboarding
    url: "%[1]s/hris"
    sources: [greenhouse, lever, ashby, standard, smartrecruiters, workable]
    policy: veil.destinations.hris_onboarding
    allow_private_network: true
    notify_erasure: true
    processor: {name: HRIS, dpa: DPA-1, purpose: onboarding, legal_basis: contract}
  - {name: hris-notes, url: "%[1]s/notes", sources: [greenhouse], policy: veil.destinations.hris_notes, allow_private_network: true}
`, url)
}

// hrisNotes is a vendor-format policy (paths into Greenhouse's body) that
// keeps the hiring rationale, a free-text note, of each hire.
const hrisNotes = `package veil.destinations.hris_notes

allow if input.event.type == "application.hired"

keep := {"payload.application.id", "payload.application.job.name", "payload.application.custom_fields.hiring_rationale.value"}
`

const hrisNotesTest = `package veil.destinations.hris_notes_test

import data.veil.destinations.hris_notes

test_hires if hris_notes.allow with input as {"event": {"type": "application.hired"}}
`

// post signs body as the source's vendor would (with Veil's own signer,
// tested sign-then-verify) and posts it.
func post(t *testing.T, cfg *veil.Config, base, source string, body []byte) map[string]any {
	t.Helper()
	sch, err := ats.New(cfg.Source(source))
	if err != nil {
		t.Fatal(err)
	}
	h, b, err := sch.Sign(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return postWith(t, base, source, h, b)
}

// postSmartRecruiters signs as SmartRecruiters documents it: HMAC-SHA256
// of timestamp.body.event-id.event-name.event-version.link, hex, "v1=".
func postSmartRecruiters(t *testing.T, base, secret, eventName string, body []byte) map[string]any {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	id := veil.NewID("")
	h.Set("smartrecruiters-timestamp", ts)
	h.Set("event-id", id)
	h.Set("event-name", eventName)
	h.Set("event-version", "1")
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body) + "." + id + "." + eventName + ".1."))
	h.Set("smartrecruiters-signature", "v1="+hex.EncodeToString(m.Sum(nil)))
	return postWith(t, base, "smartrecruiters", h, body)
}

func postWith(t *testing.T, base, source string, h http.Header, body []byte) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/hooks/"+source, bytes.NewReader(body))
	req.Header = h
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: got %d %v, want 200", source, resp.StatusCode, out)
	}
	return out
}

// TestNormalForm_OnePolicyEveryVendor: through the real binary, the one
// shipped slack_hiring policy sends a stage-change message for a stage
// change from Greenhouse, Lever, Ashby, Standard Webhooks, SmartRecruiters
// and a generic hmac source; a SmartRecruiters application reaches the BI
// destination with its ids; a hire whose department name is part of its
// job's name reaches the HRIS; the same hire to a destination keeping a
// note that quotes the candidate's name is blocked, the audit row naming
// the note's path.
func TestNormalForm_OnePolicyEveryVendor(t *testing.T) {
	sink := newBodySink(t)
	dir := t.TempDir()
	config := writeConfigDests(t, dir, sinkDestinations(sink.URL))
	os.WriteFile(filepath.Join(dir, "policies", "hris_notes.rego"), []byte(hrisNotes), 0o644)
	os.WriteFile(filepath.Join(dir, "policies", "hris_notes_test.rego"), []byte(hrisNotesTest), 0o644)
	cfg, err := loadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	p := startVeil(t, config, &syncBuffer{})
	sample := func(f string) []byte { return mustRead(t, "../../testdata/samples/"+f) }

	for _, s := range []struct{ source, file string }{
		{"greenhouse", "greenhouse/candidate_stage_change.json"},
		{"lever", "lever/candidateStageChange.json"},
		{"ashby", "ashby/candidateStageChange.json"},
		{"standard", "standard-webhooks/application.stage_changed.json"},
	} {
		post(t, cfg, p.url, s.source, sample(s.file))
	}
	sr := sample("smartrecruiters/application.created.json")
	postSmartRecruiters(t, p.url, "sr-fixture-secret-7Hq2Lm4x", "application.created", sr)
	postSmartRecruiters(t, p.url, "sr-fixture-secret-7Hq2Lm4x", "application.status.updated", sr)
	post(t, cfg, p.url, "workable", []byte(`{"event":"candidate_moved","data":{"id":"wk-4471","firstname":"Ingrid","lastname":"Solberg-Haugen","stage":"Phone screen"}}`))

	// The hire: its department's name is part of its job's name, and the
	// candidate's own title is the job's name.
	hire := sample("greenhouse/hire_candidate.json")
	for _, r := range [][2]string{
		{`"name": "Platform Engineer"`, `"name": "Senior Platform Engineer"`},
		{`"name": "Engineering"`, `"name": "Platform"`},
	} {
		if !bytes.Contains(hire, []byte(r[0])) {
			t.Fatalf("hire sample has no %s", r[0])
		}
		hire = bytes.ReplaceAll(hire, []byte(r[0]), []byte(r[1]))
	}
	hireID := post(t, cfg, p.url, "greenhouse", hire)["event_id"].(string)

	waitFor(t, "every delivery", func() bool {
		return len(sink.got("/slack")) == 7 && len(sink.got("/bi")) == 8 && len(sink.got("/hris")) == 1
	})
	waitSettled(t, p.url)

	// Slack: one message per stage change, whatever the vendor.
	want := []string{
		"Application 88213407 (candidate 61550219) for Senior Backend Engineer (Payments) moved to Technical Interview.",
		"Application 5a8c1d2e-7f90-4b3a-8c6d-2e1f0a9b8c71 (candidate 5a8c1d2e-7f90-4b3a-8c6d-2e1f0a9b8c71) for a job moved to f3a2b1c0-9d8e-4f7a-b6c5-d4e3f2a1b0c9.",
		"Application f2a3b4c5-d6e7-4f8a-9b0c-b3c4d5e6f708 (candidate d4e5f6a7-b8c9-4d0e-9f1a-3b4c5d6e7f80) for Staff Frontend Engineer moved to Onsite.",
		"Application app_01JD8W7A1B2C3D4E5F6G7H8J9K (candidate cand_01JD8W6X3RZQ9K7M2N4P5T6V8Y) for Site Reliability Engineer moved to Onsite.",
		"Application 3c9e5a17-2b84-4d61-9f0a-7e1d2c3b4a59:8f2d4b6a-1c3e-4a5b-9d7f-0e1a2b3c4d5e (candidate 8f2d4b6a-1c3e-4a5b-9d7f-0e1a2b3c4d5e) for a job moved to a new stage.",
		"Application  (candidate wk-4471) for a job moved to Phone screen.",
		"Application 88190254 (candidate 61548830) for Senior Platform Engineer was hired.",
	}
	var texts []string
	for _, b := range sink.got("/slack") {
		var m struct{ Text string }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("slack body %s: %v", b, err)
		}
		texts = append(texts, m.Text)
	}
	for _, w := range want {
		if !containsString(texts, w) {
			t.Errorf("slack lacks %q; got:\n%s", w, strings.Join(texts, "\n"))
		}
	}

	// BI: the SmartRecruiters application with its ids, record ids
	// pseudonymised for this destination, the job's in clear.
	pseudonymKey, _ := veil.DecodeKey("q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY=")
	key := redact.DestinationKey(pseudonymKey, "bi-warehouse")
	var srBody map[string]any
	for _, b := range sink.got("/bi") {
		var ne veil.NormalEvent
		if err := json.Unmarshal(b, &ne); err != nil {
			t.Fatalf("bi body is not the normal form: %s", b)
		}
		if ne.Vendor == "smartrecruiters" && ne.Type == veil.TypeApplicationCreated {
			json.Unmarshal(b, &srBody)
			if ne.Job.ID == nil || *ne.Job.ID != "3c9e5a17-2b84-4d61-9f0a-7e1d2c3b4a59" {
				t.Errorf("bi: SmartRecruiters job id %v: %s", ne.Job.ID, b)
			}
			if ne.Candidate.ID == nil || *ne.Candidate.ID != redact.Pseudonym(key, "8f2d4b6a-1c3e-4a5b-9d7f-0e1a2b3c4d5e") {
				t.Errorf("bi: SmartRecruiters candidate id not pseudonymised for bi-warehouse: %s", b)
			}
			if ne.Application.ID == nil || !strings.HasPrefix(*ne.Application.ID, "ps_") {
				t.Errorf("bi: SmartRecruiters application id %v", ne.Application.ID)
			}
		}
	}
	if srBody == nil {
		t.Errorf("bi: no SmartRecruiters application.created among %d bodies", len(sink.got("/bi")))
	}

	// HRIS: the hire, department and job title intact.
	var hris veil.NormalEvent
	if err := json.Unmarshal(sink.got("/hris")[0], &hris); err != nil {
		t.Fatal(err)
	}
	if hris.Job.Title == nil || *hris.Job.Title != "Senior Platform Engineer" || len(hris.Job.Departments) != 1 ||
		*hris.Job.Departments[0].Name != "Platform" || hris.Candidate.Name == nil || *hris.Candidate.Name != "Mateus Albuquerque Ferreira" {
		t.Errorf("hris got %s", sink.got("/hris")[0])
	}
	if hris.Candidate.Title != nil || hris.Offer.Compensation != nil || hris.Candidate.Address.Street != nil {
		t.Errorf("hris got more than its policy keeps: %s", sink.got("/hris")[0])
	}
	if n := len(sink.got("/notes")); n != 0 {
		t.Errorf("notes destination got %d bodies, want the hire blocked", n)
	}
	p.stop(t)

	// The audit rows: the HRIS delivery lists its fields and categories;
	// the blocked one names the leaked field and the note it is in.
	st := openE2EStore(t, dir)
	var delivered, blocked *veil.AuditEntry
	err = st.Export(context.Background(), veil.AuditFilter{}, func(e *veil.AuditEntry) error {
		if e.EventID != hireID {
			return nil
		}
		c := *e // the export reuses e
		switch {
		case e.Action == veil.ActionDelivered && e.Destination == "hris-onboarding":
			delivered = &c
		case e.Action == veil.ActionBlockedLeak && e.Destination == "hris-notes":
			blocked = &c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if delivered == nil || !containsString(delivered.FieldsKept, "candidate.name") || !containsString(delivered.Categories, "user.name") ||
		!containsString(delivered.Categories, "system.operations") {
		t.Errorf("hris delivered row: %+v", delivered)
	}
	if blocked == nil || blocked.Detail != "payload.application.candidate.first_name found in payload.application.custom_fields.hiring_rationale.value" {
		t.Errorf("blocked row: %+v", blocked)
	}
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
