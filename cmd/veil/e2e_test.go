package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

// veilBin is the real binary, built once for the end-to-end tests.
var veilBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "veil-e2e")
	if err != nil {
		panic(err)
	}
	veilBin = filepath.Join(dir, "veil")
	build := exec.Command("go", "build", "-o", veilBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build veil:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const e2eConfig = `
listen: "127.0.0.1:0"
data_dir: %q
admin_token: e2e-admin-token
keys:
  vault: "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s="
  pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="
policies: %q
sources:
  - {name: greenhouse, vendor: greenhouse, secret: gh-fixture-secret-Qm7v2Lx9}
  - {name: lever, vendor: lever, secret: lever-fixture-sigtoken-8d2e6a51}
  - {name: ashby, vendor: ashby, secret: ashby-fixture-secret-4f1c9e7a2b}
  - {name: standard, vendor: standard, secret: "whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw="}
  - {name: smartrecruiters, vendor: smartrecruiters, secret: sr-fixture-secret-7Hq2Lm4x}
  - name: workable
    vendor: hmac
    secret: workable-test-secret-77ab
    hmac: {header: X-Workable-Signature}
    normalize:
      type: {path: event, map: {candidate_created: application.created, candidate_moved: application.stage_changed}}
      candidate.id: data.id
      candidate.first_name: data.firstname
      candidate.last_name: data.lastname
      application.stage.name: data.stage
`

// e2eDestinations point at the discard port on loopback: decisions are
// made and stored, attempts fail and are retried, nothing leaves the machine.
const e2eDestinations = `
destinations:
  - {name: slack-hiring, url: "http://127.0.0.1:9/slack", sources: [greenhouse, lever, ashby, standard, smartrecruiters, workable], policy: veil.destinations.slack_hiring, allow_private_network: true}
  - {name: bi-warehouse, url: "http://127.0.0.1:9/bi", sources: [greenhouse, lever, ashby, standard, smartrecruiters, workable], policy: veil.destinations.bi_events, allow_private_network: true}
  - name: hris-onboarding
    url: "http://127.0.0.1:9/hris"
    sources: [greenhouse, lever, ashby, standard, smartrecruiters, workable]
    policy: veil.destinations.hris_onboarding
    allow_private_network: true
    processor: {name: HRIS, dpa: DPA-1, purpose: onboarding, legal_basis: contract}
`

// veilProc is a running `veil serve`.
type veilProc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer   // everything it wrote to stderr and stdout
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// writeConfig writes a config for dir and returns its path.
func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	return writeConfigDests(t, dir, e2eDestinations+extra)
}

// writeConfigDests writes a config for dir with the given destinations section.
func writeConfigDests(t *testing.T, dir, destinations string) string {
	t.Helper()
	path := filepath.Join(dir, "veil.yaml")
	cfg := fmt.Sprintf(e2eConfig, filepath.Join(dir, "data"), filepath.Join(dir, "policies")) + destinations
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	copyPolicies(t, filepath.Join(dir, "policies"))
	return path
}

// copyPolicies copies the shipped policies into dst.
func copyPolicies(t *testing.T, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../policies/*.rego")
	if len(files) == 0 {
		t.Fatal("no shipped policies found")
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), mustRead(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startVeil runs `veil serve --config path` and waits for its listening line.
func startVeil(t *testing.T, config string, logs *syncBuffer) *veilProc {
	t.Helper()
	cmd := exec.Command(veilBin, "serve", "--config", config)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = logs, io.MultiWriter(logs, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &veilProc{cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done); pw.Close() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				found <- line.Addr
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case p.url = <-found:
		return p
	case <-p.done:
		t.Fatalf("veil serve exited: %v\n%s", p.err, logs.Bytes())
	case <-time.After(30 * time.Second):
		t.Fatalf("veil serve did not listen in 30 s\n%s", logs.Bytes())
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (p *veilProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("veil serve exited with %v\n%s", p.err, p.logs.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("veil serve did not stop in 30 s after SIGTERM")
	}
}

// postGreenhouse signs body as Greenhouse would and posts it.
func postGreenhouse(ctx context.Context, client *http.Client, url string, body []byte, eventID string) (int, map[string]any, error) {
	m := hmac.New(sha256.New, []byte("gh-fixture-secret-Qm7v2Lx9"))
	m.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/hooks/greenhouse", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Greenhouse-Event-ID", eventID)
	req.Header.Set("Signature", "sha256 "+hex.EncodeToString(m.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, out, nil
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// greenhouseBody returns the hire sample with its candidate id replaced, so
// each event has its own subject and dedup digest.
func greenhouseBody(t *testing.T, n int) []byte {
	t.Helper()
	b := mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json")
	return bytes.Replace(b, []byte(`"id": 61548830`), []byte(fmt.Sprintf(`"id": %d`, 70000000+n)), 1)
}

func dataFiles(t *testing.T, dataDir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "veil.db") {
			out[e.Name()] = mustRead(t, filepath.Join(dataDir, e.Name()))
		}
	}
	return out
}

// openE2EStore opens the store a stopped e2e binary left in dir.
func openE2EStore(t *testing.T, dir string) *audit.Store {
	t.Helper()
	key, _ := veil.DecodeKey("zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=")
	ps, _ := veil.DecodeKey("q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY=")
	st := audit.NewStore(filepath.Join(dir, "data", "veil.db"), key, ps)
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
