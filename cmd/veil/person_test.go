package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/internal/pgtest"
)

// offersLookup lets a consumer "recruiter" fetch offers with everything
// personal in them: the lookup that showed an erased candidate's offer.
const offersLookup = `
allow if {
	input.consumer == "recruiter"
	input.purpose == "offers"
}

keep_categories := {"user", "system"} if input.purpose == "offers"
`

// personDestinations point the shipped destinations at a body sink; HRIS
// is told of erasures (notify_erasure).
func personDestinations(url string) string {
	return fmt.Sprintf(`
destinations:
  - {name: slack-hiring, url: "%[1]s/slack", sources: [greenhouse], policy: veil.destinations.slack_hiring, allow_private_network: true, signing_secret: %[2]q}
  - {name: bi-warehouse, url: "%[1]s/bi", sources: [greenhouse], policy: veil.destinations.bi_events, allow_private_network: true, signing_secret: %[2]q}
  - name: hris-onboarding
    url: "%[1]s/hris"
    sources: [greenhouse]
    policy: veil.destinations.hris_onboarding
    allow_private_network: true
    signing_secret: %[2]q
    notify_erasure: true
    country: DE
    processor: {name: HRIS, dpa: DPA-1, purpose: onboarding, legal_basis: contract}
controller: {name: "Example Recruiting Ltd", dpo: "dpo@example.com", supervisory_authority: "ICO, ico.org.uk"}
`, url, sinkSecret)
}

// adminDo calls the admin API and decodes its JSON answer.
func adminDo(t *testing.T, method, url string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer e2e-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, out); err != nil {
			if s, ok := out.(*string); ok {
				*s = string(b)
			}
		}
	}
	return resp.StatusCode
}

// TestPerson_ErasureFollowsThePerson: the offer names only the
// application, which Veil saw belong to the candidate; erasing the
// candidate erases the offer too (its lookup answers 410), and the access
// report of the candidate counts both events.
func TestPerson_ErasureFollowsThePerson(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testErasureFollowsThePerson(t, "") })
	t.Run("postgres", func(t *testing.T) { testErasureFollowsThePerson(t, pgtest.Schema(t, "veil_e2e")) })
}

func testErasureFollowsThePerson(t *testing.T, dsn string) {
	dir := t.TempDir()
	sink := newBodySink(t)
	config := writeConfigDests(t, dir, personDestinations(sink.URL))
	if dsn != "" {
		config = pgConfig(t, dir, dsn, personDestinations(sink.URL))
	}
	pol := filepath.Join(dir, "policies", "lookup.rego")
	if err := os.WriteFile(pol, append(mustRead(t, pol), offersLookup...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, key := runVeil(t, "consumer", "add", "recruiter", "--purpose", "offers", "--config", config)
	if code != 0 {
		t.Fatal(key)
	}
	key = strings.TrimSpace(key[strings.LastIndex(strings.TrimSpace(key), "\n")+1:])
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	if status, _, err := postGreenhouse(ctx, client, p.url, mustRead(t, "../../testdata/samples/greenhouse/candidate_stage_change.json"), "p-stage"); err != nil || status != 200 {
		t.Fatalf("stage change: %d %v", status, err)
	}
	status, out, err := postGreenhouse(ctx, client, p.url, mustRead(t, "../../testdata/samples/greenhouse/offer_created.json"), "p-offer")
	if err != nil || status != 200 {
		t.Fatalf("offer: %d %v", status, err)
	}
	offer := out["event_id"].(string)
	lookup := func() (int, string) { return lookupRecord(t, p.url, offer, key, "offers") }
	if code, body := lookup(); code != 200 || !strings.Contains(body, "compensation") {
		t.Fatalf("offer lookup before the erasure: %d %s", code, body)
	}
	var rep veil.SubjectReport
	ref := url.PathEscape("greenhouse:candidate:61550219")
	if code := adminDo(t, http.MethodGet, p.url+"/v1/subjects/"+ref+"/report", &rep); code != 200 || rep.Events != 2 ||
		rep.References < 3 || rep.Holdings.Payloads != 2 {
		t.Fatalf("report before the erasure: %d, %d events, %d references, %d payloads; want 2, ≥3, 2", code, rep.Events, rep.References, rep.Holdings.Payloads)
	}
	var md string
	if code := adminDo(t, http.MethodGet, p.url+"/v1/subjects/"+ref+"/report?format=md", &md); code != 200 ||
		!strings.HasPrefix(md, "# Access to your personal data (GDPR Art. 15)") || strings.Contains(md, "sub_") {
		t.Fatalf("report as Markdown: %d\n%s", code, md)
	}
	var erased struct {
		veil.Erasure
		Receipt veil.ErasureReceipt
	}
	if code := adminDo(t, http.MethodDelete, p.url+"/v1/subjects/"+ref, &erased); code != 200 || erased.Events != 2 {
		t.Fatalf("erase: %d, %d events shredded; want 200, 2", code, erased.Events)
	}
	if code, body := lookup(); code != 410 {
		t.Fatalf("offer lookup after the erasure: %d %s, want 410", code, body)
	}
	// The offer's own reference finds the same person, and her report.
	var byOffer veil.SubjectReport
	if code := adminDo(t, http.MethodGet, p.url+"/v1/subjects/"+url.PathEscape("greenhouse:application:88213407")+"/report", &byOffer); code != 200 ||
		byOffer.Subject != rep.Subject || byOffer.Erased == nil || byOffer.Holdings.Payloads != 0 {
		t.Fatalf("report by the application: %d %+v", code, byOffer)
	}
	p.stop(t)
}

// TestPerson_ErasureStaysErased: erase a hire, send the same webhook
// again: 200, nothing stored, every delivery filtered as erased_subject,
// nothing reaches the sink but the signed subject.erased notice to HRIS
// (ids only); a second erasure returns the first receipt. After a restore
// the hire is delivered again, and its pseudonyms are new.
func TestPerson_ErasureStaysErased(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testErasureStaysErased(t, "") })
	t.Run("postgres", func(t *testing.T) { testErasureStaysErased(t, pgtest.Schema(t, "veil_e2e")) })
}

func testErasureStaysErased(t *testing.T, dsn string) {
	dir := t.TempDir()
	sink := newBodySink(t)
	config := writeConfigDests(t, dir, personDestinations(sink.URL))
	if dsn != "" {
		config = pgConfig(t, dir, dsn, personDestinations(sink.URL))
	}
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	hire := mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json")
	send := func(id string) string {
		t.Helper()
		status, out, err := postGreenhouse(ctx, client, p.url, hire, id)
		if err != nil || status != 200 || out["duplicate"] != false {
			t.Fatalf("send %s: %d %v %v", id, status, out, err)
		}
		return out["event_id"].(string)
	}
	send("s-1")
	waitFor(t, "the hire at the three destinations", func() bool {
		return len(sink.got("/bi")) == 1 && len(sink.got("/hris")) == 1 && len(sink.got("/slack")) == 1
	})
	biBefore := sink.got("/bi")[0]
	ref := url.PathEscape("greenhouse:candidate:61548830")
	var first struct {
		veil.Erasure
		Receipt veil.ErasureReceipt
	}
	if code := adminDo(t, http.MethodDelete, p.url+"/v1/subjects/"+ref, &first); code != 200 || len(first.Receipt.Notified) != 1 {
		t.Fatalf("erase: %d, %d notices, want 200 and one (HRIS)", code, len(first.Receipt.Notified))
	}
	waitFor(t, "the subject.erased notice at HRIS", func() bool { return len(sink.got("/hris")) == 2 })
	notice := string(sink.got("/hris")[1])
	if !strings.Contains(notice, `"type":"subject.erased"`) || !strings.Contains(notice, `"id":"61548830"`) ||
		strings.Contains(notice, "Mateus") || strings.Contains(notice, "@") {
		t.Errorf("notice: %s", notice)
	}

	replayed := send("s-2") // the replay: a new Greenhouse-Event-ID, the same body
	time.Sleep(300 * time.Millisecond)
	if n := len(sink.got("/bi")) + len(sink.got("/slack")); n != 2 {
		t.Errorf("after the replay the sink got %d deliveries to BI and Slack, want the 2 from before", n)
	}
	var again struct {
		veil.Erasure
		Receipt veil.ErasureReceipt
	}
	if code := adminDo(t, http.MethodDelete, p.url+"/v1/subjects/"+ref, &again); code != 200 || !again.Already ||
		again.Receipt.Signature != first.Receipt.Signature {
		t.Errorf("second erasure: %d already=%v, want the first receipt", code, again.Already)
	}
	var rep veil.SubjectReport
	adminDo(t, http.MethodGet, p.url+"/v1/subjects/"+ref+"/report", &rep)
	if rep.Erased == nil || rep.Holdings.Payloads != 0 {
		t.Errorf("report after the replay: erased %v, %d payloads held; want erased and 0", rep.Erased, rep.Holdings.Payloads)
	}

	// New consent: the erasure is lifted, and the person's pseudonyms are new.
	if code, out := runVeil(t, "subject", "restore", "greenhouse:candidate:61548830", "--reason", "re-applied, consent C-88", "--config", config); code != 0 {
		t.Fatalf("restore: %s", out)
	}
	hire = []byte(strings.Replace(string(hire), `"hire_candidate"`, `"hire_candidate" `, 1)) // another body: not a duplicate
	send("s-3")
	waitFor(t, "the hire after the restore", func() bool { return len(sink.got("/bi")) == 2 })
	biAfter := sink.got("/bi")[1]
	idBefore, idAfter := candidatePseudonym(t, biBefore), candidatePseudonym(t, biAfter)
	if !strings.HasPrefix(idBefore, "ps_") || idBefore == idAfter {
		t.Errorf("BI's candidate pseudonym before %q and after %q: want two different ps_ values", idBefore, idAfter)
	}
	p.stop(t)

	var st *audit.Store
	if dsn != "" {
		st = openPGStore(t, dsn)
	} else {
		st = openE2EStore(t, dir)
	}
	if _, err := st.Event(ctx, replayed); veil.ErrorCode(err) != veil.EGONE {
		t.Errorf("the replayed event's payload: %v, want gone (never stored)", err)
	}
	ds, _ := st.EventDeliveries(ctx, replayed)
	for _, d := range ds {
		if d.Status != veil.DeliveryFiltered || d.Detail != veil.DetailErasedSubject {
			t.Errorf("replayed → %s: %s %s, want filtered erased_subject", d.Destination, d.Status, d.Detail)
		}
	}
	rows := map[string]int{}
	st.AuditEntries(ctx, func(e *veil.AuditEntry) error {
		if e.EventID == replayed {
			rows[e.Action+"/"+e.Outcome]++
		}
		if e.Action == veil.ActionSubjectRestored {
			rows["restored"]++
		}
		return nil
	})
	if rows["received/erased_subject"] != 1 || rows["filtered/erased_subject"] != 3 || rows["restored"] != 1 {
		t.Errorf("audit rows: %v; want one received and three filtered erased_subject rows for the replay, one subject_restored", rows)
	}
}

func candidatePseudonym(t *testing.T, body []byte) string {
	t.Helper()
	var ev struct {
		Candidate struct{ ID string } `json:"candidate"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("BI body: %v", err)
	}
	return ev.Candidate.ID
}

// TestPerson_RefusedReferences: over HTTP a malformed reference is 400
// invalid_subject and an unknown one 404 unknown_subject; neither gets a
// receipt or an audit row.
func TestPerson_RefusedReferences(t *testing.T) {
	dir := t.TempDir()
	p := startVeil(t, writeConfig(t, dir, ""), &syncBuffer{})
	for ref, want := range map[string]struct {
		status int
		code   string
	}{
		"61550219": {400, veil.EINVALIDSUBJECT}, "greenhouse:candidate:61550219 ": {400, veil.EINVALIDSUBJECT},
		"greenhouse:person:1": {400, veil.EINVALIDSUBJECT}, "greenhouse:candidate:61550218": {404, veil.EUNKNOWNSUBJECT},
	} {
		var out struct{ Error string }
		if code := adminDo(t, http.MethodDelete, p.url+"/v1/subjects/"+url.PathEscape(ref), &out); code != want.status || out.Error != want.code {
			t.Errorf("erase %q: %d %s, want %d %s", ref, code, out.Error, want.status, want.code)
		}
	}
	p.stop(t)
	st := openE2EStore(t, dir)
	st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error {
		if e.Action == veil.ActionErased {
			t.Errorf("an erased row for a refused reference: %+v", e)
		}
		return nil
	})
}

// TestPerson_Receipts: a real receipt verifies with the public key alone
// (no config, no vault key), a tampered one does not, and the receipt
// names the erased audit row.
func TestPerson_Receipts(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	if status, _, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, 5), "r-1"); err != nil || status != 200 {
		t.Fatalf("send: %d %v", status, err)
	}
	var key struct {
		PublicKey string `json:"public_key"`
	}
	req, _ := http.NewRequest(http.MethodGet, p.url+"/v1/receipts/key", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&key)
	resp.Body.Close()
	p.stop(t)
	receipt := filepath.Join(dir, "receipt.json")
	if code, out := runVeil(t, "erase", "--subject", "greenhouse:candidate:70000005", "--receipt", receipt, "--config", config); code != 0 {
		t.Fatalf("erase: %s", out)
	}
	code, cliKey := runVeil(t, "receipt", "key", "--config", config)
	if code != 0 || !strings.Contains(cliKey, key.PublicKey) {
		t.Fatalf("veil receipt key: %d %q, want the key the server published, %s", code, cliKey, key.PublicKey)
	}
	elsewhere := t.TempDir() // no config, no vault key here
	verify := func(file string) (int, string) {
		cmd := []string{"audit", "verify-receipt", file, "--public-key", key.PublicKey, "--config", filepath.Join(elsewhere, "none.yaml")}
		return runVeil(t, cmd...)
	}
	code, out := verify(receipt)
	var r veil.ErasureReceipt
	json.Unmarshal(mustRead(t, receipt), &r)
	if code != 0 || !strings.Contains(out, "OK") || r.AuditSeq == 0 || r.AuditHash == "" {
		t.Fatalf("verify a real receipt: %d %s (audit row %d %q)", code, out, r.AuditSeq, r.AuditHash)
	}
	st := openE2EStore(t, dir)
	found := false
	st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error {
		found = found || (e.Seq == r.AuditSeq && e.Hash == r.AuditHash && e.Action == veil.ActionErased)
		return nil
	})
	if !found {
		t.Errorf("the receipt names audit row %d %s, which is not the erased row", r.AuditSeq, r.AuditHash)
	}
	tampered := filepath.Join(dir, "tampered.json")
	os.WriteFile(tampered, []byte(strings.Replace(string(mustRead(t, receipt)), `"payloads_shredded": 1`, `"payloads_shredded": 0`, 1)), 0o600)
	if code, out := verify(tampered); code != 1 || !strings.Contains(out, "does not match") {
		t.Fatalf("verify a tampered receipt: %d %s, want 1", code, out)
	}
}
