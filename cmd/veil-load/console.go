package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

// runConsole measures the console's Events and Audit pages on a store
// holding nEvents events (three deliveries each) and nAudit audit rows in
// all: the store is filled in-process, then `veil serve` opens it and each
// page is fetched 200 times (first page, a page deep in the keyset, one
// event).
func runConsole(bin string, nEvents, nAudit int) {
	if bin == "" {
		bin = filepath.Join(filepath.Dir(mustExecutable()), "veil")
		if _, err := os.Stat(bin); err != nil {
			bin = "bin/veil"
		}
	}
	dir, err := os.MkdirTemp("", "veil-load-console")
	if err != nil {
		fatal(err)
	}
	defer atExit(func() { os.RemoveAll(dir) })()
	vault, _ := veil.DecodeKey("zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=")
	ps, _ := veil.DecodeKey("q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY=")
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	st := audit.NewStore(filepath.Join(dir, "data", "veil.db"), vault, ps)
	if err := st.Open(); err != nil {
		fatal(err)
	}
	start := time.Now()
	payload, err := os.ReadFile("testdata/samples/greenhouse/hire_candidate.json")
	if err != nil {
		fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	var mid string
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := n.Add(1)
				if i > int64(nEvents) {
					return
				}
				e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate",
					Subject: fmt.Sprint("greenhouse:candidate:", i), DedupKey: fmt.Sprint("console-", i), ReceivedAt: time.Now(), Payload: payload,
					Refs:       []string{fmt.Sprint("greenhouse:candidate:", i), fmt.Sprint("greenhouse:application:", 9_000_000+i)},
					NormalType: "application.hired", Job: fmt.Sprint("greenhouse:job:", 4400000+i%300)}
				ds := []*veil.Delivery{
					{Destination: "bi-warehouse", Status: veil.DeliveryPending, Body: []byte(`{"type":"application.hired","application":{"id":"ps_1"}}`), FieldsKept: []string{"type", "application.id"}, Categories: []string{"system.operations", "user.unique_id"}},
					{Destination: "slack-hiring", Status: veil.DeliveryFiltered, FieldsDropped: []string{"candidate.first_name"}},
					{Destination: "hris-onboarding", Status: veil.DeliveryFiltered, FieldsDropped: []string{"candidate.first_name"}},
				}
				id, _, err := st.IngestEvent(context.Background(), e, ds, veil.Drift{})
				if err != nil {
					fatal(err)
				}
				if i == int64(nEvents/2) {
					mid = id
				}
			}
		}()
	}
	wg.Wait()
	var have int64
	if err := st.AuditEntries(context.Background(), func(*veil.AuditEntry) error { have++; return nil }); err != nil {
		fatal(err)
	}
	// The destinations are configured (serve would give up the deliveries
	// of removed ones) and paused: nothing is sent while pages are timed.
	for _, d := range []string{"bi-warehouse", "slack-hiring", "hris-onboarding"} {
		if err := st.PauseDestination(context.Background(), d, "veil-load", "the console is being measured"); err != nil {
			fatal(err)
		}
	}
	st.Close()
	if more := int64(nAudit) - have; more > 0 {
		seed(filepath.Join(dir, "data"), int(more))
	}
	fmt.Printf("store: %d events, %d audit rows, filled in %s\n", nEvents, max(have, int64(nAudit)), time.Since(start).Round(time.Second))

	policies, _ := filepath.Abs("policies")
	config := filepath.Join(dir, "veil.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %q
admin_token: load-admin-token
keys: {vault: "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="}
policies: %q
sources:
  - {name: greenhouse, vendor: greenhouse, secret: %s}
destinations:
  - {name: bi-warehouse, url: "http://127.0.0.1:9/", sources: [greenhouse], policy: veil.destinations.bi_events, allow_private_network: true}
  - {name: slack-hiring, url: "http://127.0.0.1:9/", sources: [greenhouse], policy: veil.destinations.slack_hiring, allow_private_network: true}
  - {name: hris-onboarding, url: "http://127.0.0.1:9/", sources: [greenhouse], policy: veil.destinations.hris_onboarding, allow_private_network: true}
`, filepath.Join(dir, "data"), policies, secret)), 0o600)
	stop, base, err := startChild(exec.Command(bin, "serve", "--config", config))
	if err != nil {
		fatal(err)
	}
	defer stop()

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(path string) (string, time.Duration) {
		t0 := time.Now()
		resp, err := client.Get(base + path)
		if err != nil {
			fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fatal(fmt.Errorf("%s: %d", path, resp.StatusCode))
		}
		return string(b), time.Since(t0)
	}
	page, _ := get("/console/login")
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	resp, err := client.PostForm(base+"/console/login", url.Values{"token": {"load-admin-token"}, "csrf": {csrf[1]}})
	if err != nil {
		fatal(err)
	}
	resp.Body.Close()
	auditPage, _ := get("/console/audit")
	seqs := regexp.MustCompile(`<tr><td>(\d+)</td>`).FindAllStringSubmatch(auditPage, -1)
	if len(seqs) == 0 {
		fatal(fmt.Errorf("the audit page lists no rows"))
	}
	deep := fmt.Sprint(nAudit / 2)
	half := nEvents / 2
	since := url.QueryEscape(time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04"))
	for _, path := range []string{"/console/events", "/console/events?before=" + mid, "/console/events/" + mid,
		fmt.Sprint("/console/events?id=", 9_000_000+half),   // an application id: through the person's links
		fmt.Sprint("/console/events?id=", 4400000+half%300), // a job id: ~1/300 of the events, a page of them
		"/console/events?type=application.hired", "/console/events?type=hire_candidate&source=GREENHOUSE",
		"/console/events?outcome=pending&destination=bi-warehouse", "/console/events?since=" + since,
		"/console/dead", "/console/review",
		"/console/audit", "/console/audit?before=" + deep, "/console/audit?action=delivered",
		"/console/audit?actor=veil", "/console/audit?event=" + mid, "/console/"} {
		var lat []time.Duration
		for range 200 {
			_, d := get(path)
			lat = append(lat, d)
		}
		slices.Sort(lat)
		fmt.Printf("%-40s p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms\n", path, ms(percentile(lat, 0.50)), ms(percentile(lat, 0.95)), ms(lat[len(lat)-1]))
	}
}
