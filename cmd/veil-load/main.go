// Command veil-load fires signed ~5 KB Greenhouse webhooks at a running Veil
// over loopback and reports throughput and time-to-answer percentiles. In
// the same run it fires the same load at a bare net/http handler (read the
// body, answer 200) in its own process, and prints Veil's share of that
// baseline, so the figure says how much Veil costs, not how fast the machine is.
//
// By default it starts both servers itself: `veil serve` from -veil-bin on a
// temporary data dir, and the baseline as a child process of its own binary.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

const secret = "gh-fixture-secret-Qm7v2Lx9"

func main() {
	var (
		serveBaseline = flag.Bool("serve-baseline", false, "internal: run the bare baseline handler and print its address")
		url           = flag.String("url", "", "Veil base URL to load (default: start -veil-bin on a temp dir)")
		veilBin       = flag.String("veil-bin", "", "veil binary to start (default: veil beside this binary, then ./bin/veil)")
		concurrency   = flag.Int("concurrency", 32, "requests in flight")
		duration      = flag.Duration("duration", 10*time.Second, "how long each phase runs")
		rate          = flag.Int("rate", 0, "fixed arrival rate in requests/s (0 = as fast as answers come)")
		baseline      = flag.Bool("baseline", true, "also load a bare net/http handler in its own process")
		fanout        = flag.Bool("fanout", true, "configure the three shipped destinations, so each event is also decided and projected for them before its commit")
		e2e           = flag.Bool("e2e", false, "deliver for real: three destinations (each allowed every event) pointing at a sink process; report events/s from ATS request to receipt at all three sinks, and loss")
		serveSink     = flag.Bool("serve-sink", false, "internal: run the counting sink and print its address")
		lookups       = flag.Bool("lookup", false, "load GET /v1/events/{id}/record (vault lookups with the lookup policy) instead of webhooks")
		seedAudit     = flag.Int("seed-audit", 0, "append this many audit rows to the store in -data-dir (for the export benchmark) and exit")
		dataDir       = flag.String("data-dir", "", "with -seed-audit: the data_dir of the config to seed")
		sample        = flag.String("sample", "testdata/samples/greenhouse/new_candidate_application.json", "Greenhouse body to send (ids are varied per request)")
		soak          = flag.Bool("soak", false, "soak: flapping destinations (down 20 s of every minute, 5% random 503s), purges every 3 minutes, at -rate for -duration; then drain, and check that every delivery ended once, metrics match the audit log, disk and memory")
		serveFlapping = flag.Bool("serve-flapping-sink", false, "internal: run the flapping sink and print its address")
		purgeEvery    = flag.Duration("purge-every", 3*time.Minute, "with -soak: run `veil audit purge` this often")
		keep          = flag.Bool("keep", false, "with -soak: keep its data folder after the run (it is removed otherwise)")
		retention     = flag.Duration("retention", 5*time.Minute, "with -soak: retention.payload")
		stores        = flag.Bool("stores", false, "ingest with fan-out side by side on SQLite, on PostgreSQL with one replica, and with three replicas sharing the database (loaded round robin)")
		consoleEvents = flag.Int("console", 0, "time the console's Events and Audit pages on a store of this many events (and -console-audit audit rows in all)")
		consoleAudit  = flag.Int("console-audit", 1_000_000, "with -console: the audit rows the store holds in all")
		reconcileN    = flag.Int("reconcile", 0, "time one `veil reconcile run` over this many changed applications in a fake Lever API (RSS, request rate)")
		profiles      = flag.Bool("profile", false, "take a CPU profile of every veil over each phase (pprof on a loopback port of its own) and print where veil's CPU went: webhook handlers, HTTP server, store writer, checkpointer, deliveries, collector, the rest")
		profileOut    = flag.String("profile-out", "", "as -profile, and write each veil's CPU profile of each phase to this folder (made if missing), for `go tool pprof`")
		postgres      = flag.String("postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "with -stores: the PostgreSQL server (a schema is made per run and dropped)")
	)
	flag.Parse()
	profileVeil = *profiles || *profileOut != ""
	if profileDir = *profileOut; profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			fatal(err)
		}
	}
	if *serveBaseline {
		runBaseline()
		return
	}
	if *serveSink {
		runSink()
		return
	}
	if *serveFlapping {
		runFlappingSink()
		return
	}
	exitOnSignal()
	if *soak {
		runSoak(*veilBin, *rate, *duration, *purgeEvery, *retention, *keep)
		return
	}
	if *consoleEvents > 0 {
		runConsole(*veilBin, *consoleEvents, *consoleAudit)
		return
	}
	if *reconcileN > 0 {
		runReconcile(*veilBin, *reconcileN)
		return
	}
	if *seedAudit > 0 {
		seed(*dataDir, *seedAudit)
		return
	}
	body, err := os.ReadFile(*sample)
	if err != nil {
		fatal(err)
	}
	ctx := context.Background()

	if *lookups {
		runLookups(ctx, *veilBin, *concurrency, *duration)
		return
	}
	if *e2e {
		runE2E(ctx, *veilBin, body, *concurrency, *duration, *rate)
		return
	}
	if *stores {
		runStores(ctx, *veilBin, *postgres, body, *concurrency, *duration)
		return
	}
	target, stopVeil := *url, func() {}
	if target == "" {
		stop, u, err := startVeil(*veilBin, destinationsFor(*fanout, ""))
		if err != nil {
			fatal(err)
		}
		target, stopVeil = u, stop
	}
	fmt.Printf("load: %d B body, concurrency %d, duration %s, rate %s, decided for 3 destinations: %v\n", len(body), *concurrency, *duration, rateName(*rate), *fanout && *url == "")
	w := watchVeils([]string{target}, *duration)
	veil := run(ctx, target+"/hooks/greenhouse", body, *concurrency, *duration, *rate)
	w.end(veil)
	veil.print("veil (durable)")
	w.print()
	stopVeil() // the bare handler has the machine to itself, as veil had
	if !*baseline {
		return
	}
	stop, u, err := startChild(exec.Command(mustExecutable(), "-serve-baseline"))
	if err != nil {
		fatal(err)
	}
	defer stop()
	cpu := sampleCPU()
	base := run(ctx, u+"/hooks/greenhouse", body, *concurrency, *duration, *rate)
	after := sampleCPU()
	base.print("bare net/http")
	printCPU(cpu, after, base.ok)
	fmt.Printf("ratio: veil/bare = %.1f%% of throughput\n", 100*veil.rps/base.rps)
}

func rateName(r int) string {
	if r == 0 {
		return "max"
	}
	return fmt.Sprintf("%d/s", r)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "veil-load:", err)
	exit(1)
}

func mustExecutable() string {
	p, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	return p
}

// runBaseline serves the bare handler on loopback and prints its address.
func runBaseline() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	fmt.Printf("{\"msg\":\"listening\",\"addr\":\"http://%s\"}\n", ln.Addr())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"event_id":"evt_baseline","duplicate":false}` + "\n"))
	}))
}

// startVeil runs `veil serve` on a temp data dir with the fixture secret.
// destinationsFor returns the destinations section of the load config: the
// three shipped ones (on the discard port, never reached: decisions only),
// three bi_events copies at sinkURL (delivered), or none.
func destinationsFor(fanout bool, sinkURL string) string {
	if sinkURL != "" {
		var b strings.Builder
		b.WriteString("destinations:\n")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(&b, "  - {name: sink-%d, url: \"%s/d%d\", sources: [greenhouse], policy: veil.destinations.bi_events, allow_private_network: true, concurrency: 16, signing_secret: \"whsec_ZGVtby1zaWduaW5nLXNlY3JldC1mb3ItdmVpbC1zaW5r\", retry: {max_attempts: 20, backoff: [200ms, 1s]}}\n", i, sinkURL, i)
		}
		return b.String()
	}
	if !fanout {
		return ""
	}
	return `
destinations:
  - {name: slack-hiring, url: "http://127.0.0.1:9/slack", sources: [greenhouse], policy: veil.destinations.slack_hiring, allow_private_network: true}
  - {name: bi-warehouse, url: "http://127.0.0.1:9/bi", sources: [greenhouse], policy: veil.destinations.bi_events, allow_private_network: true}
  - name: hris-onboarding
    url: "http://127.0.0.1:9/hris"
    sources: [greenhouse]
    policy: veil.destinations.hris_onboarding
    allow_private_network: true
    processor: {name: HRIS, dpa: DPA-1, purpose: onboarding, legal_basis: contract}
`
}

func startVeil(bin string, dests string) (stop func(), url string, err error) {
	stop, url, _, err = startVeilWith(bin, dests, false)
	return stop, url, err
}

// startVeilWith also adds a lookup consumer "onboarding" (purpose
// onboarding) before the start when consumer is set, and returns its key.
func startVeilWith(bin string, dests string, consumer bool) (stop func(), url, key string, err error) {
	return startVeilExtra(bin, dests, "", consumer)
}

// startVeilExtra starts veil serve on a config with extra top-level
// settings (a storage section).
func startVeilExtra(bin, dests, extra string, consumer bool) (stop func(), url, key string, err error) {
	if bin == "" {
		bin = filepath.Join(filepath.Dir(mustExecutable()), "veil")
		if _, err := os.Stat(bin); err != nil {
			bin = "bin/veil"
		}
	}
	policies, err := filepath.Abs("policies")
	if err != nil {
		return nil, "", "", err
	}
	dir, err := os.MkdirTemp("", "veil-load")
	if err != nil {
		return nil, "", "", err
	}
	removeDir := atExit(func() { os.RemoveAll(dir) })
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %q
admin_token: load-admin-token
keys: {vault: "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="}
policies: %q
lookup: {rate: 1000000, burst: 1000000}
%s
sources:
  - {name: greenhouse, vendor: greenhouse, secret: %s}
%s`, filepath.Join(dir, "data"), policies, extra, secret, dests)
	config := filepath.Join(dir, "veil.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		return nil, "", "", err
	}
	if consumer {
		out, err := exec.Command(bin, "consumer", "add", "onboarding", "--purpose", "onboarding", "--config", config).Output()
		if err != nil {
			return nil, "", "", fmt.Errorf("add consumer: %w", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		key = lines[len(lines)-1]
	}
	serve := exec.Command(bin, "serve", "--config", config)
	env, started := pprofEnv()
	if env != "" {
		serve.Env = append(os.Environ(), env)
	}
	stopChild, url, err := startChild(serve)
	if err != nil {
		removeDir()
		return nil, "", "", err
	}
	started(url)
	return func() { stopChild(); removeDir() }, url, key, nil
}

// runLookups ingests hires, then loads GET /v1/events/{id}/record with the
// consumer's key and purpose, and the same GETs at the bare baseline.
func runLookups(ctx context.Context, veilBin string, workers int, d time.Duration) {
	body, err := os.ReadFile("testdata/samples/greenhouse/hire_candidate.json")
	if err != nil {
		fatal(err)
	}
	stop, target, key, err := startVeilWith(veilBin, "", true)
	if err != nil {
		fatal(err)
	}
	defer stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	var ids []string
	for n := 0; n < 500; n++ {
		b := bytes.Replace(body, []byte(`"id": 61548830`), []byte(fmt.Sprintf(`"id": %d`, 90000000+n)), 1)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(b)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target+"/hooks/greenhouse", bytes.NewReader(b))
		req.Header.Set("Signature", "sha256 "+hex.EncodeToString(m.Sum(nil)))
		req.Header.Set("Greenhouse-Event-ID", fmt.Sprintf("lookup-%d", n))
		resp, err := client.Do(req)
		if err != nil {
			fatal(err)
		}
		var out struct {
			EventID string `json:"event_id"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		ids = append(ids, out.EventID)
	}
	fmt.Printf("lookup load: %d events, concurrency %d, duration %s, consumer onboarding, purpose onboarding\n", len(ids), workers, d)
	res := gets(ctx, client, target, ids, key, workers, d)
	res.print("veil lookup")
	stopBase, base, err := startChild(exec.Command(mustExecutable(), "-serve-baseline"))
	if err != nil {
		fatal(err)
	}
	defer stopBase()
	bres := gets(ctx, client, base, ids, key, workers, d)
	bres.print("bare net/http")
	fmt.Printf("ratio: veil/bare = %.1f%% of throughput\n", 100*res.rps/bres.rps)
}

func gets(ctx context.Context, client *http.Client, base string, ids []string, key string, workers int, d time.Duration) *result {
	var (
		seq, ok, fail atomic.Int64
		mu            sync.Mutex
		all           []time.Duration
		wg            sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for t0 := time.Now(); t0.Before(deadline); t0 = time.Now() {
				id := ids[int(seq.Add(1))%len(ids)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events/"+id+"/record", nil)
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Veil-Purpose", "onboarding")
				resp, err := client.Do(req)
				if err != nil {
					fail.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fail.Add(1)
					continue
				}
				ok.Add(1)
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return &result{ok: ok.Load(), failed: fail.Load(), elapsed: elapsed, rps: float64(ok.Load()) / elapsed.Seconds(), latencies: all}
}

// startChild starts cmd and waits for its JSON "listening" line (on stdout
// or stderr) to learn the address.
func startChild(cmd *exec.Cmd) (stop func(), url string, err error) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// VEIL_LOAD_CHILD_LOG keeps a copy of what veil serve writes.
	if logPath := os.Getenv("VEIL_LOAD_CHILD_LOG"); logPath != "" && strings.HasSuffix(cmd.Path, "veil") {
		if f, err := os.Create(logPath); err == nil {
			cmd.Stdout, cmd.Stderr = io.MultiWriter(pw, f), io.MultiWriter(pw, f)
		}
	}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				found <- line.Addr
			}
		}
	}()
	stop = atExit(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		pw.Close()
	})
	select {
	case url = <-found:
		return stop, url, nil
	case <-time.After(30 * time.Second):
		stop()
		return nil, "", errors.New("server did not print its listening address in 30 s")
	}
}

// result is one phase's outcome.
type result struct {
	ok, failed int64
	elapsed    time.Duration
	rps        float64
	latencies  []time.Duration
}

func (r *result) print(name string) {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[int(p*float64(len(r.latencies)-1))]
	}
	fmt.Printf("%-15s %8.0f req/s  ok %d  failed %d  p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
		name, r.rps, r.ok, r.failed, ms(pct(0.50)), ms(pct(0.99)), ms(pct(1)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// run loads url for d. With rate 0, each of the workers sends as soon as it
// has its answer (closed loop); otherwise requests are scheduled at the rate
// and latency counts from the scheduled time, so a stall is not hidden.
func run(ctx context.Context, url string, body []byte, workers int, d time.Duration, rate int) *result {
	return runOn(ctx, []string{url}, body, workers, d, rate)
}

// runOn loads several servers round robin, request by request.
func runOn(ctx context.Context, urls []string, body []byte, workers int, d time.Duration, rate int) *result {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var (
		seq      atomic.Int64
		ok, fail atomic.Int64
		mu       sync.Mutex
		all      []time.Duration
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	var ticks chan time.Time
	if rate > 0 {
		ticks = make(chan time.Time, workers*4)
		go func() {
			defer close(ticks)
			interval := time.Second / time.Duration(rate)
			for t := time.Now(); t.Before(deadline); t = t.Add(interval) {
				time.Sleep(time.Until(t))
				ticks <- t
			}
		}()
	}
	start := time.Now()
	runID := time.Now().UnixNano()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for {
				var t0 time.Time
				if ticks != nil {
					var more bool
					if t0, more = <-ticks; !more {
						break
					}
				} else if t0 = time.Now(); t0.After(deadline) {
					break
				}
				n := seq.Add(1)
				b := vary(body, n)
				if send(ctx, client, urls[int(n)%len(urls)], b, fmt.Sprintf("load-%d-%d", runID, n)) {
					ok.Add(1)
					lat = append(lat, time.Since(t0))
				} else {
					fail.Add(1)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return &result{ok: ok.Load(), failed: fail.Load(), elapsed: elapsed, rps: float64(ok.Load()) / elapsed.Seconds(), latencies: all}
}

// vary gives the sample's candidate and application new ids for request
// n: each request is another candidate's application, as in real traffic.
// (With one application for every request, each batch of every replica on
// PostgreSQL updated the same app_states row, and the replicas' batches
// waited for each other's commits on its row lock.)
func vary(body []byte, n int64) []byte {
	b := bytes.Replace(body, []byte(`"id": 61559902`), []byte(fmt.Sprintf(`"id": %d`, 80000000+n)), 1)
	return bytes.Replace(b, []byte(`"id": 88240119`), []byte(fmt.Sprintf(`"id": %d`, 60000000+n)), 1)
}

func send(ctx context.Context, client *http.Client, url string, body []byte, eventID string) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Greenhouse-Event-ID", eventID)
	req.Header.Set("Signature", "sha256 "+hex.EncodeToString(m.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

// runSink counts deliveries per webhook-id and answers 200; GET /count
// reports the totals and the time of the last new receipt.
func runSink() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		dups int
		last time.Time
	)
	fmt.Printf("{\"msg\":\"listening\",\"addr\":\"http://%s\"}\n", ln.Addr())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			json.NewEncoder(w).Encode(map[string]any{"distinct": len(seen), "duplicates": dups, "last_unix_nano": last.UnixNano()})
			mu.Unlock()
			return
		}
		io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		mu.Lock()
		if seen[id] {
			dups++
		} else {
			seen[id] = true
			last = time.Now()
		}
		mu.Unlock()
	}))
}

// runE2E loads Veil with delivery to a sink process and waits until every
// accepted event reached all three destinations.
func runE2E(ctx context.Context, veilBin string, body []byte, workers int, d time.Duration, rate int) {
	stopSink, sinkURL, err := startChild(exec.Command(mustExecutable(), "-serve-sink"))
	if err != nil {
		fatal(err)
	}
	defer stopSink()
	stop, target, err := startVeil(veilBin, destinationsFor(false, sinkURL))
	if err != nil {
		fatal(err)
	}
	defer stop()
	fmt.Printf("e2e load: %d B body, concurrency %d, duration %s, rate %s, 3 destinations at a sink process\n", len(body), workers, d, rateName(rate))
	start := time.Now()
	res := run(ctx, target+"/hooks/greenhouse", body, workers, d, rate)
	res.print("ingest")
	want := 3 * int(res.ok)
	var got struct {
		Distinct, Duplicates int
		LastUnixNano         int64 `json:"last_unix_nano"`
	}
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(sinkURL + "/count")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
		}
		if got.Distinct >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Unix(0, got.LastUnixNano).Sub(start)
	fmt.Printf("delivered: %d of %d deliveries (%d events x 3), %d duplicates, lost %d\n", got.Distinct, want, res.ok, got.Duplicates, want-got.Distinct)
	fmt.Printf("end to end: %.0f events/s (%.0f deliveries/s) from the first request to the last receipt at the sinks (%.1f s)\n",
		float64(res.ok)/elapsed.Seconds(), float64(got.Distinct)/elapsed.Seconds(), elapsed.Seconds())
}

// seed appends n realistic audit rows (the shape a delivered event leaves)
// to the store in dataDir, with the demo keys of the shipped veil.yaml.
func seed(dataDir string, n int) {
	vault, _ := veil.DecodeKey("zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=")
	ps, _ := veil.DecodeKey("q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY=")
	st := audit.NewStore(filepath.Join(dataDir, "veil.db"), vault, ps)
	if err := st.Open(); err != nil {
		fatal(err)
	}
	defer st.Close()
	start := time.Now()
	const batch = 2000
	kept := []string{"action", "payload.application.id", "payload.application.current_stage.name", "payload.application.jobs.#.name"}
	dropped := []string{"payload.application.candidate.first_name", "payload.application.candidate.last_name", "payload.application.candidate.email_addresses.#.value"}
	for i := 0; i < n; i += batch {
		rows := make([]*veil.AuditEntry, 0, batch)
		for j := i; j < min(n, i+batch); j++ {
			rows = append(rows, &veil.AuditEntry{Action: veil.ActionDelivered, Actor: "veil", Source: "greenhouse",
				EventType: "candidate_stage_change", EventID: veil.NewID("evt_"), Destination: "slack-hiring",
				Subject: st.SubjectHash(fmt.Sprint("greenhouse:candidate:", j)), Outcome: "delivered", HTTPStatus: 200,
				Attempt: 1, FieldsKept: kept, FieldsDropped: dropped, Detail: "latency_ms=12"})
		}
		if err := st.Append(context.Background(), rows...); err != nil {
			fatal(err)
		}
	}
	fmt.Printf("seeded %d audit rows in %s\n", n, time.Since(start).Round(time.Millisecond))
}

// hexHMAC is Greenhouse's signature of body with the fixture secret.
func hexHMAC(body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
