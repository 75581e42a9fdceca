package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/internal/storetest"
	"github.com/veilhq/veil/proxy"
)

// newClosableServer is newTestServer that also returns the Server, whose
// Close writes the aggregated rejections.
func newClosableServer(tb testing.TB, now time.Time) (*httptest.Server, *audit.Store, *proxy.Server) {
	tb.Helper()
	clock := func() time.Time { return now }
	st := storetest.MustOpenFor(tb, mustConfig(tb), clock)
	srv := proxy.NewServer(mustConfig(tb), st)
	srv.Now = clock
	h, err := srv.Handler()
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(h)
	tb.Cleanup(ts.Close)
	return ts, st, srv
}

func auditRows(tb testing.TB, st *audit.Store) []*veil.AuditEntry {
	tb.Helper()
	var out []*veil.AuditEntry
	if err := st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error { out = append(out, e); return nil }); err != nil {
		tb.Fatal(err)
	}
	return out
}

func countActions(rows []*veil.AuditEntry, action string) int {
	n := 0
	for _, r := range rows {
		if r.Action == action {
			n++
		}
	}
	return n
}

func sampleCase(t *testing.T, file string) hookCase {
	t.Helper()
	for _, c := range hookCases(t) {
		if c.name == file {
			return c
		}
	}
	t.Fatalf("no sample %s", file)
	return hookCase{}
}

// TestHook_GreenhouseReplayWithNewEventID: Greenhouse signs neither a
// timestamp nor its Greenhouse-Event-ID, so a captured hire replayed with a
// fresh header is the same event, stored and delivered once.
func TestHook_GreenhouseReplayWithNewEventID(t *testing.T) {
	c := sampleCase(t, "greenhouse/hire_candidate.json")
	ts, st, _ := newClosableServer(t, c.now)
	url := ts.URL + "/hooks/greenhouse"
	first := post(t, url, c.header, c.body)
	if first.status != 200 || first.body["duplicate"] != false {
		t.Fatalf("first: got %d %v", first.status, first.body)
	}
	for i := 0; i < 4; i++ {
		h := c.header.Clone()
		h.Set("Greenhouse-Event-ID", fmt.Sprintf("replayed-%d", i))
		a := post(t, url, h, c.body)
		if a.status != 200 || a.body["duplicate"] != true || a.body["event_id"] != first.body["event_id"] {
			t.Fatalf("replay %d: got %d %v, want the first event as a duplicate", i, a.status, a.body)
		}
	}
	if n := countActions(auditRows(t, st), veil.ActionReceived); n != 5 {
		t.Fatalf("received rows: %d, want 5 (1 accepted, 4 duplicates)", n)
	}
	events := 0
	st.Events(context.Background(), func(*veil.Event) error { events++; return nil }, nil)
	if events != 1 {
		t.Fatalf("%d events stored, want 1", events)
	}
}

// TestHook_LeverSignatureCase: Lever's dedup key is the decoded signature,
// so upper-casing its hex is the same request.
func TestHook_LeverSignatureCase(t *testing.T) {
	c := sampleCase(t, "lever/candidateStageChange.json")
	ts, _, _ := newClosableServer(t, c.now)
	url := ts.URL + "/hooks/lever"
	first := post(t, url, c.header, c.body)
	sig := regexp.MustCompile(`"signature": ?"([0-9a-f]+)"`).FindSubmatch(c.body)
	upper := bytes.Replace(c.body, sig[1], bytes.ToUpper(sig[1]), 1)
	a := post(t, url, c.header, upper)
	if first.status != 200 || a.status != 200 || a.body["duplicate"] != true || a.body["event_id"] != first.body["event_id"] {
		t.Fatalf("got %d %v then %d %v, want the second a duplicate of the first", first.status, first.body, a.status, a.body)
	}
}

// TestHook_StrictJSON: signed bodies with duplicate keys, invalid UTF-8, a
// lone surrogate or nesting past max_depth are refused with 400 and a
// sentence naming the rule, for every vendor; nothing is stored.
func TestHook_StrictJSON(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	bodies := map[string]string{
		"duplicate key":  `{"action":"hire_candidate","action":"reject_candidate","type":"x","data":{}}`,
		"invalid utf-8":  "{\"action\":\"hire_candidate\",\"type\":\"x\",\"note\":\"\xff\xfe\"}",
		"lone surrogate": `{"action":"hire_candidate","type":"x","note":"\udc00"}`,
		"too deep":       `{"action":"x","type":"x","d":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
	}
	want := map[string]string{"duplicate key": "same key twice", "invalid utf-8": "UTF-8", "lone surrogate": "surrogate", "too deep": "deeper than 64"}
	for _, source := range []string{"greenhouse", "ashby", "lever", "standard", "smartrecruiters", "workable"} {
		for name, body := range bodies {
			t.Run(source+"/"+name, func(t *testing.T) {
				ts, st, _ := newClosableServer(t, now.Add(time.Minute))
				b := []byte(body)
				if source == "lever" { // signAs wraps the body as Lever's data
					b = []byte(strings.Replace(body, `{"action"`, `{"candidateId":"c","action"`, 1))
				}
				h, b := signAs(t, source, secrets[source], b, now)
				a := post(t, ts.URL+"/hooks/"+source, h, b)
				msg, _ := a.body["message"].(string)
				if a.status != 400 || a.body["error"] != veil.EMALFORMED || !strings.Contains(msg, want[name]) {
					t.Fatalf("got %d %v, want 400 malformed_json saying %q", a.status, a.body, want[name])
				}
				if n := countActions(auditRows(t, st), veil.ActionReceived); n != 0 {
					t.Fatalf("%d received rows, want none", n)
				}
			})
		}
	}
}

// TestHook_FloodsAreAggregated: 5,000 unauthenticated requests add at most
// 10 audit rows (one per source, reason and minute, with the count).
func TestHook_FloodsAreAggregated(t *testing.T) {
	ts, st, srv := newClosableServer(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	before := len(auditRows(t, st))
	client := ts.Client()
	for i := 0; i < 5000; i++ {
		url := ts.URL + "/hooks/greenhouse"
		h := http.Header{"Signature": {"sha256 " + strings.Repeat("0", 64)}}
		switch i % 3 {
		case 1:
			h = http.Header{}
		case 2:
			url = ts.URL + "/hooks/nosuch-" + strconv.Itoa(i)
		}
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"action":"x"}`))
		req.Header = h
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	srv.Close(context.Background())
	st.Append(context.Background()) // wait for the queued rows to commit
	rows := auditRows(t, st)[before:]
	if len(rows) > 10 {
		t.Fatalf("%d audit rows for 5,000 rejected requests, want at most 10", len(rows))
	}
	total := 0
	for _, r := range rows {
		if r.Action != veil.ActionRejected {
			t.Errorf("unexpected row %s", r.Action)
		}
		total += r.Attempt
		if !strings.Contains(r.Detail, "count=") || strings.Contains(r.Detail, "nosuch") {
			t.Errorf("row detail %q: want a count and no path text", r.Detail)
		}
	}
	if total != 5000 {
		t.Fatalf("rows count %d rejections, want 5000", total)
	}
}

// TestHook_ManyKeysBoundedAudit: one signed 90,000-key body adds at most
// 50 audit rows: schema drift records a capped number of new paths and a
// summary row with the rest.
func TestHook_ManyKeysBoundedAudit(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ts, st, _ := newClosableServer(t, now)
	var b strings.Builder
	b.WriteString(`{"action":"hire_candidate","payload":{`)
	for i := 0; i < 90000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i%10)
	}
	b.WriteString(`}}`)
	if b.Len() > 1<<20 {
		t.Fatalf("body %d bytes, over the limit", b.Len())
	}
	before := len(auditRows(t, st))
	h, body := signAs(t, "greenhouse", secrets["greenhouse"], []byte(b.String()), now)
	if a := post(t, ts.URL+"/hooks/greenhouse", h, body); a.status != 200 {
		t.Fatalf("got %d %v, want 200", a.status, a.body)
	}
	rows := auditRows(t, st)[before:]
	if len(rows) > 50 {
		t.Fatalf("%d audit rows for one event, want at most 50", len(rows))
	}
	summary := false
	for _, r := range rows {
		summary = summary || (r.Action == veil.ActionSchemaDrift && strings.Contains(r.Detail, "more new paths"))
	}
	if !summary {
		t.Fatal("no schema_drift summary row counting the paths not recorded")
	}
}

// TestAdmin_TokenExact: a prefix or an extension of the admin token, or the
// token without "Bearer ", is refused.
func TestAdmin_TokenExact(t *testing.T) {
	clock := func() time.Time { return time.Now() }
	st := storetest.MustOpenFor(t, mustConfig(t), clock)
	srv := proxy.NewServer(mustConfig(t), st)
	srv.Admin = st
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	for auth, want := range map[string]int{"Bearer test-admin-token": 200, "Bearer test-admin-toke": 401,
		"Bearer test-admin-token2": 401, "test-admin-token": 401, "Bearer ": 401, "": 401} {
		req := httptest.NewRequest(http.MethodGet, "/v1/deliveries?status=dead", nil)
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("Authorization %q: got %d, want %d", auth, w.Code, want)
		}
	}
}
