package main

// The soak: Veil under steady load for a long time while its destinations
// flap and retention runs, then a check that nothing ended silently.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

// runFlappingSink is a destination that is down (500) for the first 20
// seconds of every minute and answers 5% of the rest with 503; GET /count
// reports the distinct webhook-ids it accepted.
func runFlappingSink() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		requests int
	)
	fmt.Printf("{\"msg\":\"listening\",\"addr\":\"http://%s\"}\n", ln.Addr())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			json.NewEncoder(w).Encode(map[string]int{"accepted": len(accepted), "requests": requests})
			mu.Unlock()
			return
		}
		var buf bytes.Buffer
		buf.ReadFrom(r.Body)
		mu.Lock()
		requests++
		mu.Unlock()
		switch {
		case time.Now().Second() < 20:
			w.WriteHeader(http.StatusInternalServerError)
		case rand.Float64() < 0.05:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			mu.Lock()
			accepted[r.URL.Path+" "+r.Header.Get("webhook-id")] = true
			mu.Unlock()
		}
	}))
}

// soakSample is what the sampler sees every 10 seconds.
type soakSample struct {
	at                  time.Duration // since the start
	sent, ok, busy, bad int64         // in the window
	p99                 time.Duration
	rssMB, dbMB, walMB  float64
	queue, oldest       float64
	veilCPU, stolen     float64 // cores: veil's, and the machine's taken by the hypervisor
}

func runSoak(bin string, rate int, d, purgeEvery, retention time.Duration, keep bool) {
	if rate == 0 {
		rate = 300
	}
	if bin == "" {
		bin = filepath.Join(filepath.Dir(mustExecutable()), "veil")
		if _, err := os.Stat(bin); err != nil {
			bin = "bin/veil"
		}
	}
	stopSink, sinkURL, err := startChild(exec.Command(mustExecutable(), "-serve-flapping-sink"))
	if err != nil {
		fatal(err)
	}
	defer stopSink()
	dir, err := os.MkdirTemp("", "veil-soak")
	if err != nil {
		fatal(err)
	}
	removeDir, kept := func() {}, "kept after the run (-keep)"
	if !keep {
		removeDir, kept = atExit(func() { os.RemoveAll(dir) }), "removed at the end unless -keep"
	}
	policies, _ := filepath.Abs("policies")
	config := filepath.Join(dir, "veil.yaml")
	var dests strings.Builder
	for _, dst := range []struct{ name, policy string }{{"slack-hiring", "slack_hiring"}, {"bi-warehouse", "bi_events"}, {"hris-onboarding", "hris_onboarding"}} {
		fmt.Fprintf(&dests, `  - name: %s
    url: "%s/%s"
    sources: [greenhouse]
    policy: veil.destinations.%s
    signing_secret: "whsec_ZGVtby1zaWduaW5nLXNlY3JldC1mb3ItdmVpbC1zaW5r"
    allow_private_network: true
    retry: {max_attempts: 8, backoff: [1s, 2s, 5s, 10s]}
    processor: {name: P, dpa: DPA-1, purpose: soak, legal_basis: contract}
`, dst.name, sinkURL, dst.name, dst.policy)
	}
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %q
admin_token: soak-admin-token
keys: {vault: "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="}
policies: %q
retention: {payload: %s, audit: 8760h}
sources:
  - {name: greenhouse, vendor: greenhouse, secret: %s}
destinations:
%s`, filepath.Join(dir, "data"), policies, retention, secret, dests.String())
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		fatal(err)
	}
	serve := exec.Command(bin, "serve", "--config", config)
	stopVeil, veilURL, err := startChild(serve)
	if err != nil {
		fatal(err)
	}
	body, err := os.ReadFile("testdata/samples/greenhouse/hire_candidate.json")
	if err != nil {
		fatal(err)
	}
	fmt.Printf("soak: %d hires/s for %s, 3 destinations at a sink down 20 s of every minute with 5%% random 503s,\n"+
		"retries [1s 2s 5s 10s] x 8, retention.payload %s, `veil audit purge` every %s; data in %s (%s)\n", rate, d, retention, purgeEvery, dir, kept)

	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu                   sync.Mutex
		window               []time.Duration
		sent, ok, busy, bad  atomic.Int64
		totalOK, totalBusy   atomic.Int64
		allLat               []time.Duration
		purges               []string
		samples              []soakSample
		lastSent, lastOK     int64
		lastBusy, lastBad    int64
		loadDone             = make(chan struct{})
		tr                   = &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
		client               = &http.Client{Transport: tr, Timeout: 60 * time.Second}
		runID                = time.Now().UnixNano()
		ticks                = make(chan time.Time, 4096)
		metricsURL, pid      = veilURL + "/metrics", serve.Process.Pid
		sampleDB             = filepath.Join(dir, "data", "veil.db")
		wg, purgeWG, sampleW sync.WaitGroup
	)
	// Arrivals at a fixed rate, latency from the scheduled time.
	go func() {
		defer close(ticks)
		interval := time.Second / time.Duration(rate)
		for t := time.Now(); t.Before(start.Add(d)); t = t.Add(interval) {
			time.Sleep(time.Until(t))
			ticks <- t
		}
	}()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t0 := range ticks {
				n := sent.Add(1)
				b := bytes.Replace(body, []byte(`"id": 61548830`), []byte(fmt.Sprintf(`"id": %d`, 100000000+n)), 1)
				b = bytes.Replace(b, []byte(`"id": 88190254`), []byte(fmt.Sprintf(`"id": %d`, 500000000+n)), 1)
				code := post(client, veilURL+"/hooks/greenhouse", b, fmt.Sprintf("soak-%d-%d", runID, n))
				lat := time.Since(t0)
				switch code {
				case 200:
					ok.Add(1)
					totalOK.Add(1)
					mu.Lock()
					window = append(window, lat)
					allLat = append(allLat, lat)
					mu.Unlock()
				case 503:
					busy.Add(1)
					totalBusy.Add(1)
				default:
					bad.Add(1)
				}
			}
		}()
	}
	go func() { wg.Wait(); close(loadDone) }()
	purgeWG.Add(1)
	go func() { // veil audit purge, as an operator's cron would
		defer purgeWG.Done()
		t := time.NewTicker(purgeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				t0 := time.Now()
				out, err := exec.Command(bin, "audit", "purge", "--config", config).CombinedOutput()
				line := fmt.Sprintf("%6.0fs purge took %5.1fs: %s", time.Since(start).Seconds(), time.Since(t0).Seconds(), strings.TrimSpace(string(out)))
				if err != nil {
					line += " (" + err.Error() + ")"
				}
				mu.Lock()
				purges = append(purges, line)
				mu.Unlock()
			}
		}
	}()
	sampleW.Add(1)
	go func() { // every 10 s: the window's ingest, memory, disk, queue
		defer sampleW.Done()
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		lastCPU := sampleCPU()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cpu := sampleCPU()
			wall := cpu.at.Sub(lastCPU.at).Seconds()
			mu.Lock()
			lat := window
			window = nil
			mu.Unlock()
			s := soakSample{at: time.Since(start).Round(time.Second), rssMB: rssMB(pid), dbMB: fileMB(sampleDB), walMB: fileMB(sampleDB + "-wal")}
			s.sent, s.ok, s.busy, s.bad = sent.Load()-lastSent, ok.Load()-lastOK, busy.Load()-lastBusy, bad.Load()-lastBad
			lastSent, lastOK, lastBusy, lastBad = sent.Load(), ok.Load(), busy.Load(), bad.Load()
			s.p99 = percentile(lat, 0.99)
			s.veilCPU, s.stolen = (cpu.veil-lastCPU.veil).Seconds()/wall, (cpu.steal-lastCPU.steal).Seconds()/wall
			lastCPU = cpu
			m := scrape(metricsURL)
			s.queue, s.oldest = m["veil_delivery_queue_depth"], m["veil_delivery_oldest_pending_seconds"]
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		}
	}()
	<-loadDone
	loadEnd := time.Now()
	fmt.Printf("load done: %d sent, %d accepted, %d answered 503, %d other failures\n", sent.Load(), totalOK.Load(), totalBusy.Load(), bad.Load())

	// Drain: the queue must empty by itself.
	drained := time.Duration(-1)
	for time.Since(loadEnd) < 15*time.Minute {
		time.Sleep(5 * time.Second)
		if m := scrape(metricsURL); m["veil_delivery_queue_depth"] == 0 {
			drained = time.Since(loadEnd)
			break
		}
	}
	cancel()
	purgeWG.Wait()
	sampleW.Wait()
	out, err := exec.Command(bin, "audit", "purge", "--config", config).CombinedOutput()
	fmt.Printf("final purge: %s %v\n", strings.TrimSpace(string(out)), errOrEmpty(err))
	finalRSS := rssMB(pid)
	metrics := scrapeAll(metricsURL)
	stopVeil()

	fmt.Printf("\n%8s %8s %8s %6s %6s %9s %8s %10s %8s %8s %8s %9s %7s\n", "t", "sent/s", "ok/s", "503", "fail", "p99 ms", "queue", "oldest s",
		"RSS MB", "db MB", "wal MB", "veil cpu", "stolen")
	for _, s := range samples {
		fmt.Printf("%8s %8.0f %8.0f %6d %6d %9.1f %8.0f %10.0f %8.1f %8.1f %8.1f %9.2f %7.2f\n", s.at, float64(s.sent)/10, float64(s.ok)/10, s.busy, s.bad,
			ms(s.p99), s.queue, s.oldest, s.rssMB, s.dbMB, s.walMB, s.veilCPU, s.stolen)
	}
	for _, p := range purges {
		fmt.Println(p)
	}
	slices.Sort(allLat)
	fmt.Printf("\ningest over the run: p50 %.1f ms, p99 %.1f ms, max %.1f ms; 503s %d\n", ms(percentile(allLat, 0.5)), ms(percentile(allLat, 0.99)),
		ms(percentile(allLat, 1)), totalBusy.Load())
	if drained >= 0 {
		fmt.Printf("backlog drained %s after the load stopped\n", drained.Round(time.Second))
	} else {
		fmt.Println("backlog NOT drained within 15 minutes after the load stopped")
	}
	checkSoak(sampleDB, metrics, samples, finalRSS)
	removeDir()
}

// checkSoak reads the stopped store: every accepted event ends, per
// destination, in exactly one delivered or dead row; the metrics match
// the rows; nothing is left 'sending'; and the file is in proportion to
// what retention keeps.
func checkSoak(dbPath string, metrics map[string]float64, samples []soakSample, finalRSS float64) {
	// The file as serve left it, before anything here opens it: opening
	// the store may change it (a store that finds its database outside
	// incremental auto-vacuum rewrites it with a VACUUM).
	size := fileMB(dbPath)
	vault, _ := veil.DecodeKey("zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=")
	ps, _ := veil.DecodeKey("q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY=")
	st := audit.NewStore(dbPath, vault, ps)
	if err := st.Open(); err != nil {
		fatal(err)
	}
	accepted := map[string]bool{}
	final := map[string]int{} // event NUL destination -> final rows
	rows := map[string]int{}  // action outcome -> rows
	dead := map[string]int{}  // outcome of dead rows
	err := st.AuditEntries(context.Background(), func(e *veil.AuditEntry) error {
		switch e.Action {
		case veil.ActionReceived:
			if e.Outcome == "accepted" {
				accepted[e.EventID] = true
			}
		case veil.ActionDelivered, veil.ActionDead:
			final[e.EventID+"\x00"+e.Destination]++
			rows[e.Action]++
			if e.Action == veil.ActionDead {
				dead[e.Outcome]++
			}
		}
		return nil
	})
	st.Close()
	if err != nil {
		fatal(err)
	}
	missing, twice := 0, 0
	for id := range accepted {
		for _, d := range []string{"slack-hiring", "bi-warehouse", "hris-onboarding"} {
			switch final[id+"\x00"+d] {
			case 0:
				missing++
			case 1:
			default:
				twice++
			}
		}
	}
	fmt.Printf("\n%d events accepted: %d deliveries without a final row, %d with more than one; %d delivered, %d dead %v\n",
		len(accepted), missing, twice, rows[veil.ActionDelivered], rows[veil.ActionDead], dead)
	var mDelivered, mDead float64
	for k, v := range metrics {
		if strings.HasPrefix(k, "veil_deliveries_total{") {
			if strings.Contains(k, `outcome="delivered"`) {
				mDelivered += v
			} else if strings.Contains(k, `outcome="dead"`) {
				mDead += v
			}
		}
	}
	fmt.Printf("veil_deliveries_total: delivered %.0f, dead %.0f (audit rows: %d, %d)\n", mDelivered, mDead, rows[veil.ActionDelivered], rows[veil.ActionDead])

	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		fatal(err)
	}
	defer db.Close()
	var sending int
	db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'sending'`).Scan(&sending)
	fresh := dbPath + ".fresh"
	os.Remove(fresh)
	if _, err := db.Exec(`VACUUM INTO ?`, fresh); err != nil {
		fatal(err)
	}
	freshSize := fileMB(fresh)
	os.Remove(fresh)
	fmt.Printf("deliveries left 'sending': %d\nveil.db %.1f MB; a fresh database holding the same rows %.1f MB (%.2fx)\n", sending, size, freshSize, size/freshSize)
	var last5 []float64
	for _, s := range samples {
		if s.at >= samples[len(samples)-1].at-5*time.Minute {
			last5 = append(last5, s.rssMB)
		}
	}
	if len(last5) > 0 {
		fmt.Printf("RSS: %.0f MB at the end; over the last 5 minutes of samples from %.0f to %.0f MB\n", finalRSS, slices.Min(last5), slices.Max(last5))
	}
}

func post(client *http.Client, url string, body []byte, eventID string) int {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Greenhouse-Event-ID", eventID)
	req.Header.Set("Signature", "sha256 "+hexHMAC(body))
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// rssMB is a process's resident set now, from /proc.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func fileMB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// scrape returns the unlabelled metrics of a /metrics page.
func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range scrapeAll(url) {
		if !strings.Contains(k, "{") {
			out[k] = v
		}
	}
	return out
}

// scrapeAll returns every sample of a /metrics page by its full name.
func scrapeAll(url string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
