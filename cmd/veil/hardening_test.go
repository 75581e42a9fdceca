package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/internal/testenv"
)

// runBin runs the real binary to completion and returns its exit code and
// everything it wrote.
func runBin(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(veilBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// auditCount counts the audit rows of the database in dir (0 if none).
func auditCount(t *testing.T, dir string) int {
	t.Helper()
	path := filepath.Join(dir, "data", "veil.db")
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM audit`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// TestServe_SecondInstanceRefused: a second serve on the same data folder
// refuses to start, saying why, and writes nothing.
func TestServe_SecondInstanceRefused(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	p := startVeil(t, config, &syncBuffer{})
	before := auditCount(t, dir)
	code, out := runBin(t, nil, "serve", "--config", config)
	if code != 1 || !strings.Contains(out, "another veil serve is already running") {
		t.Fatalf("second serve: exit %d\n%s", code, out)
	}
	p.stop(t)
	if after := auditCount(t, dir); after < before {
		t.Fatalf("audit rows went from %d to %d", before, after)
	}
}

// TestServe_FailedStartWritesNothing: a taken port stops the start before
// the store is opened: no policy_loaded, no purged row.
func TestServe_FailedStartWritesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	cfg := strings.Replace(string(mustRead(t, config)), `listen: "127.0.0.1:0"`, fmt.Sprintf("listen: %q", ln.Addr().String()), 1)
	os.WriteFile(config, []byte(cfg), 0o600)
	code, out := runBin(t, nil, "serve", "--config", config)
	if code != 1 || !strings.Contains(out, "listen on "+ln.Addr().String()) {
		t.Fatalf("serve on a taken port: exit %d\n%s", code, out)
	}
	if n := auditCount(t, dir); n != 0 {
		t.Fatalf("%d audit rows after a failed start, want 0", n)
	}
}

// TestServe_OtherVaultKey: a different keys.vault refuses to start with a
// sentence, instead of answering every lookup 500 later.
func TestServe_OtherVaultKey(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	if status, _, err := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, 1), "vk-1"); err != nil || status != 200 {
		t.Fatalf("post: %d %v", status, err)
	}
	p.stop(t)
	cfg := strings.Replace(string(mustRead(t, config)), "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 1)
	os.WriteFile(config, []byte(cfg), 0o600)
	code, out := runBin(t, nil, "serve", "--config", config)
	if code != 1 || !strings.Contains(out, "keys.vault is not the key this database was created with") {
		t.Fatalf("serve with another vault key: exit %d\n%s", code, out)
	}
}

// TestErase_ValidatesSubject: an unprefixed id, a misspelt kind or a stray
// space erases nothing, so it is a usage error (exit 2) that lists the
// valid forms; a well-formed reference Veil holds nothing about is
// refused too (exit 1), never receipted.
func TestErase_ValidatesSubject(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	for _, bad := range []string{"61548830", "nosuch:candidate:1", "greenhouse:person:1", "greenhouse:candidate:",
		"greenhouse:candidate: 61548830", "greenhouse:candidate:61548830 "} {
		code, out := runVeil(t, "erase", "--config", config, "--subject", bad)
		if code != 2 || !strings.Contains(out, "greenhouse:candidate:ID") || !strings.Contains(out, "lever:candidate:ID") {
			t.Errorf("erase %q: exit %d, want 2 listing the valid forms\n%s", bad, code, out)
		}
	}
	code, out := runVeil(t, "erase", "--config", config, "--subject", "greenhouse:candidate:61548830")
	if code != 1 || !strings.Contains(out, "holds nothing about this subject") || strings.Contains(out, "signature") {
		t.Fatalf("erase an unknown reference: exit %d, want 1 and no receipt\n%s", code, out)
	}
}

// TestConsumers_AuditedAndRegrantable: add and revoke are audited, names
// are checked, and a revoked name can be granted again with a new key.
func TestConsumers_AuditedAndRegrantable(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	add := func(name string) (int, string) {
		return runVeil(t, "consumer", "add", name, "--purpose", "onboarding", "--config", config)
	}
	if code, out := add("Onboarding Team"); code != 1 || !strings.Contains(out, "lower-case letters") {
		t.Fatalf("bad name: exit %d\n%s", code, out)
	}
	if code, out := add("onboarding"); code != 0 {
		t.Fatalf("add: exit %d\n%s", code, out)
	}
	if code, out := add("onboarding"); code != 1 || !strings.Contains(out, "exists already") || strings.Contains(out, "code=") {
		t.Fatalf("add twice: exit %d\n%s", code, out)
	}
	if code, out := runVeil(t, "consumer", "revoke", "onboarding", "--config", config); code != 0 {
		t.Fatalf("revoke: exit %d\n%s", code, out)
	}
	if code, out := add("onboarding"); code != 0 {
		t.Fatalf("re-add after revoke: exit %d\n%s", code, out)
	}
	_, out := runVeil(t, "consumer", "list", "--config", config)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(out, "revoked") || !strings.Contains(out, "active") {
		t.Fatalf("list: want one revoked and one active onboarding\n%s", out)
	}
	_, jsonl := runVeil(t, "audit", "export", "--config", config, "--action", "consumer_added,consumer_revoked")
	if strings.Count(jsonl, `"action":"consumer_added"`) != 2 || strings.Count(jsonl, `"action":"consumer_revoked"`) != 1 {
		t.Fatalf("audit rows: want 2 added and 1 revoked\n%s", jsonl)
	}
}

// TestServe_Warnings: the shipped config logs the DEMO warning naming every
// demo value, the destinations' signing secret included, and one warning per
// destination that turns the SSRF guard off.
func TestServe_Warnings(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	cmd := exec.Command(veilBin, "serve", "--config", "../../veil.yaml")
	cmd.Env = append(os.Environ(), "VEIL_DATA_DIR="+filepath.Join(dir, "data"), "VEIL_LISTEN=127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "the listening line", func() bool { return bytes.Contains(logs.Bytes(), []byte(`"msg":"listening"`)) })
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	out := string(logs.Bytes())
	var demo string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "DEMO SECRETS IN USE") {
			demo = sc.Text()
		}
	}
	for _, k := range []string{"admin_token", "keys.vault", "sources[0].secrets[0]", "destinations[0].signing_secrets[0]", "destinations[2].signing_secrets[0]"} {
		if !strings.Contains(demo, k) {
			t.Errorf("DEMO warning does not name %s:\n%s", k, demo)
		}
	}
	if n := strings.Count(out, "allow_private_network is on"); n != 3 {
		t.Errorf("%d allow_private_network warnings, want one per destination (3)\n%s", n, out)
	}
}

// TestCLI_HelpAndVersion: --help on every command and group exits 0 with a
// description; version names Veil, Go and OPA; an unknown command is exit 2.
func TestCLI_HelpAndVersion(t *testing.T) {
	for _, c := range commands {
		names := [][]string{strings.Fields(c.name)}
		for _, s := range c.sub {
			names = append(names, strings.Fields(s.name))
		}
		for _, n := range names {
			code, out := runVeil(t, append(n, "--help")...)
			if code != 0 || len(out) < 40 {
				t.Errorf("veil %s --help: exit %d\n%s", strings.Join(n, " "), code, out)
			}
			if len(n) == 2 || c.sub == nil {
				if !strings.Contains(out, "Usage: veil "+strings.Join(n, " ")) || !strings.Contains(out, "-config") {
					t.Errorf("veil %s --help: no usage line or flags\n%s", strings.Join(n, " "), out)
				}
			}
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out := runVeil(t, args...)
		if code != 0 || !strings.Contains(out, "veil ") || !strings.Contains(out, "go1.") || !strings.Contains(out, "opa v1.") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	if code, _ := runVeil(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code, out := runVeil(t, "policy", "frobnicate"); code != 2 || !strings.Contains(out, "policy test") {
		t.Errorf("unknown subcommand: exit %d, want 2 listing the group\n%s", code, out)
	}
	if code, out := runVeil(t, "audit", "export", "--since", "yesterday", "--config", "x.yaml"); code != 2 || strings.Contains(out, "2006-01-02") {
		t.Errorf("--since yesterday: exit %d, want 2 without a Go layout\n%s", code, out)
	}
}

// TestDLQ_ReplayAllWhenEmpty says there is nothing to replay.
func TestDLQ_ReplayAllWhenEmpty(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	p := startVeil(t, config, &syncBuffer{})
	code, out := runVeil(t, "dlq", "replay", "--all", "--config", config, "--url", p.url)
	if code != 0 || !strings.Contains(out, "nothing to replay") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestServe_StalledConnections: 5,000 connections that never finish their
// headers (and a few that never send their body) leave /healthz answering
// within a second.
func TestServe_StalledConnections(t *testing.T) {
	dir := t.TempDir()
	p := startVeil(t, writeConfig(t, dir, ""), &syncBuffer{})
	addr := strings.TrimPrefix(p.url, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 5000; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		partial := "POST /hooks/greenhouse HTTP/1.1\r\nHost: x\r\n"
		if i%50 == 0 { // headers done, body never sent
			partial += "Content-Length: 5000\r\nSignature: sha256 00\r\n\r\n{"
		}
		c.Write([]byte(partial))
	}
	for i := 0; i < 5; i++ {
		client := &http.Client{Timeout: time.Second}
		start := time.Now()
		resp, err := client.Get(p.url + "/healthz")
		if err != nil {
			t.Fatalf("healthz with 5,000 stalled connections: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
		t.Logf("healthz answered in %s", time.Since(start))
	}
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// hostileBodies returns ~1 MiB bodies Veil must refuse: nested ~500,000
// levels, 90,000 keys with one repeated at the end (every key must be
// remembered to find it), and invalid UTF-8.
func hostileBodies() map[string][]byte {
	n := 500000
	deep := []byte(`{"action":"a","type":"t","token":"9c2b7e41d0a84f6e","triggeredAt":1,"signature":"00","data":` +
		strings.Repeat("[", n) + strings.Repeat("]", n) + `}`)
	var keys strings.Builder
	keys.WriteString(`{"action":"a","type":"t","token":"9c2b7e41d0a84f6e","triggeredAt":1,"signature":"00","data":{`)
	for i := 0; i < 90000; i++ {
		fmt.Fprintf(&keys, `"k%d":1,`, i)
	}
	keys.WriteString(`"k5":1}}`)
	utf := append([]byte(`{"action":"a","type":"t","token":"9c2b7e41d0a84f6e","triggeredAt":1,"signature":"00","data":"`),
		bytes.Repeat([]byte{0xff, 0xfe, 'x'}, 340000)...)
	utf = append(utf, `"}`...)
	return map[string][]byte{"deep": deep, "90k keys": []byte(keys.String()), "invalid utf-8": utf}
}

// TestServe_HostileBodiesBoundedMemory sends 64 hostile 1 MiB bodies at a
// time, signed and unsigned, to every vendor: every one is refused with a
// 4xx, the server keeps serving, and its peak RSS stays under 300 MB. Then
// 64 valid, signed 90,000-key bodies at a time: accepted, and still under.
func TestServe_HostileBodiesBoundedMemory(t *testing.T) {
	testenv.Slow(t, "hostile bodies against the binary")
	if testing.Short() {
		t.Skip("sends a few hundred megabytes")
	}
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	p := startVeil(t, config, &syncBuffer{})
	cfg, err := loadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	type req struct {
		name, source string
		h            http.Header
		body         []byte
	}
	var reqs []req
	for _, src := range cfg.Sources {
		sch, err := ats.New(&src)
		if err != nil {
			t.Fatal(err)
		}
		for name, body := range hostileBodies() {
			h, signed, err := sch.Sign(body, time.Now())
			if err != nil && src.Vendor == veil.VendorLever {
				// Lever's signer reads the body; sign this one by hand.
				ms := strconv.FormatInt(time.Now().UnixMilli(), 10)
				m := hmac.New(sha256.New, []byte(src.Secret))
				m.Write([]byte("9c2b7e41d0a84f6e" + ms))
				signed = bytes.Replace(body, []byte(`"triggeredAt":1,"signature":"00"`),
					[]byte(`"triggeredAt":`+ms+`,"signature":"`+hex.EncodeToString(m.Sum(nil))+`"`), 1)
				h, err = http.Header{"Content-Type": {"application/json"}}, nil
			}
			if err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, req{name + " signed", src.Name, h, signed},
				req{name + " unsigned", src.Name, http.Header{"Content-Type": {"application/json"}}, body})
		}
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}}
	send := func(r req) (int, error) {
		hr, _ := http.NewRequest(http.MethodPost, p.url+"/hooks/"+r.source, bytes.NewReader(r.body))
		hr.Header = r.h.Clone()
		resp, err := client.Do(hr)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	blast := func(rs []req, ok func(int) bool) {
		var wg sync.WaitGroup
		work := make(chan req)
		var mu sync.Mutex
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range work {
					code, err := send(r)
					if err != nil || !ok(code) {
						mu.Lock()
						t.Errorf("%s to %s: %d %v", r.name, r.source, code, err)
						mu.Unlock()
					}
				}
			}()
		}
		for i := 0; i < 3; i++ {
			for _, r := range rs {
				work <- r
			}
		}
		close(work)
		wg.Wait()
	}
	blast(reqs, func(code int) bool { return code >= 400 && code < 500 })
	if resp, err := http.Get(p.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the hostile bodies: %v", err)
	}
	hostile := peakRSS(t, p.cmd.Process.Pid)

	// Valid bodies with 90,000 keys: indexing them is what costs memory.
	var valid []req
	for i := 0; i < 64; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, `{"action":"candidate_stage_change","payload":{"application":{"id":%d,"candidate":{"id":%d}},"extra":{`, 900000+i, 800000+i)
		for k := 0; k < 90000; k++ {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":%d`, k, k%7)
		}
		b.WriteString(`}}}`)
		sch, _ := ats.New(cfg.Source("greenhouse"))
		h, body, _ := sch.Sign([]byte(b.String()), time.Now())
		valid = append(valid, req{"valid 90k keys", "greenhouse", h, body})
	}
	blast(valid, func(code int) bool { return code == 200 })
	peak := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS: %d MB after the hostile bodies, %d MB after the valid 90k-key ones", hostile>>20, peak>>20)
	if peak > 300<<20 {
		t.Fatalf("peak RSS %d MB, want under 300 MB", peak>>20)
	}
	if resp, err := http.Get(p.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz at the end: %v", err)
	}
}
