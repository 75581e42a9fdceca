package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// runReconcile times one `veil reconcile run` over n applications changed
// in a fake Lever API (100 per page, as Lever's documentation pages them),
// with the three shipped destinations deciding each change. It reports the
// pass's wall time, the process's peak RSS, and the most requests the API
// saw in any one second (Lever allows 10).
func runReconcile(bin string, n int) {
	if bin == "" {
		bin = filepath.Join(filepath.Dir(mustExecutable()), "veil")
		if _, err := os.Stat(bin); err != nil {
			bin = "bin/veil"
		}
	}
	changed := time.Now().Add(-time.Minute)
	var mu sync.Mutex
	var at []time.Time
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if user, _, _ := r.BasicAuth(); user != "load-key" {
			w.WriteHeader(401)
			return
		}
		switch r.URL.Path {
		case "/v1/opportunities":
		case "/v1/opportunities/deleted": // the pass lists deletions too: none here
			json.NewEncoder(w).Encode(map[string]any{"data": []any{}, "hasNext": false})
			return
		default:
			w.WriteHeader(404)
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		from, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		data := []map[string]any{}
		for i := from; i < min(from+limit, n); i++ {
			data = append(data, map[string]any{"id": fmt.Sprintf("opp-%06d", i), "contact": fmt.Sprintf("contact-%06d", i),
				"stage": fmt.Sprintf("stage-%d", i%7), "archived": nil, "createdAt": changed.Add(-48 * time.Hour).UnixMilli(),
				"updatedAt": changed.UnixMilli(), "name": "Load Candidate", "emails": []string{"load@example.com"},
				"headline": "Engineer", "tags": []string{"load"}})
		}
		out := map[string]any{"data": data, "hasNext": from+limit < n}
		if from+limit < n {
			out["next"] = strconv.Itoa(from + limit)
		}
		json.NewEncoder(w).Encode(out)
	}))
	defer api.Close()
	policies, err := filepath.Abs("policies")
	if err != nil {
		fatal(err)
	}
	dir, err := os.MkdirTemp("", "veil-load-reconcile")
	if err != nil {
		fatal(err)
	}
	defer atExit(func() { os.RemoveAll(dir) })()
	config := filepath.Join(dir, "veil.yaml")
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %q
admin_token: load-admin-token
keys: {vault: "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="}
policies: %q
sources:
  - name: lever
    vendor: lever
    secret: lever-fixture-sigtoken-8d2e6a51
    api: {base_url: %q, key: load-key, allow_private_network: true}
    reconcile: {every: 1h, overlap: 10m, since: %q, per_page: 100}
destinations:
  - {name: slack-hiring, url: "http://127.0.0.1:9/slack", sources: [lever], policy: veil.destinations.slack_hiring, allow_private_network: true}
  - {name: bi-warehouse, url: "http://127.0.0.1:9/bi", sources: [lever], policy: veil.destinations.bi_events, allow_private_network: true}
  - {name: hris-onboarding, url: "http://127.0.0.1:9/hris", sources: [lever], policy: veil.destinations.hris_onboarding, allow_private_network: true}
`, filepath.Join(dir, "data"), policies, api.URL, changed.Add(-time.Hour).UTC().Format(time.RFC3339))
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		fatal(err)
	}
	cmd := exec.Command(bin, "reconcile", "run", "--source", "lever", "--config", config)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fatal(fmt.Errorf("veil reconcile run: %w\n%s", err, out.String()))
	}
	elapsed := time.Since(start)
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	mu.Lock()
	peak := 0
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		peak = max(peak, j-i)
	}
	requests := len(at)
	mu.Unlock()
	fmt.Printf("reconcile: %d changed Lever opportunities, 100 per page, 3 destinations deciding each\n", n)
	fmt.Printf("pass %.1f s (%.0f changes/s), peak RSS %.0f MB, %d API requests, at most %d in any 1 s (Lever allows 10)\n",
		elapsed.Seconds(), float64(n)/elapsed.Seconds(), float64(rss)/1024, requests, peak)
	os.Stdout.Write(lastLines(out.Bytes(), 3))
}

// lastLines returns the last k lines of b.
func lastLines(b []byte, k int) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return append(bytes.Join(lines[max(0, len(lines)-k):], []byte("\n")), '\n')
}
