package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuditVerifyCLI: `veil audit verify` on copies of a real database and
// of its export, each tampered one way, exits 1 naming the first bad seq;
// 0 on the originals and after a purge.
func TestAuditVerifyCLI(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 10 * time.Second}
	for n := 0; n < 10; n++ {
		postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, n), fmt.Sprint("verify-", n))
	}
	p.stop(t)
	if code, out := runVeil(t, "audit", "verify", "--config", config); code != 0 {
		t.Fatalf("original: exit %d\n%s", code, out)
	}
	_, jsonl := runVeil(t, "audit", "export", "--config", config)
	lines := strings.SplitAfter(strings.TrimSuffix(jsonl, "\n"), "\n")
	if len(lines) < 12 {
		t.Fatalf("export has %d rows", len(lines))
	}
	db := filepath.Join(dir, "data", "veil.db")
	for _, c := range []struct {
		name    string
		sql     []string
		file    func() string
		wantSeq string
	}{
		{"edit", []string{`UPDATE audit SET outcome = 'rejected' WHERE seq = 4`}, nil, "first bad seq 4"},
		{"delete", []string{`DELETE FROM audit WHERE seq = 6`}, nil, "first bad seq 7"},
		{"swap", []string{`UPDATE audit SET seq = -1 WHERE seq = 8`, `UPDATE audit SET seq = 8 WHERE seq = 9`, `UPDATE audit SET seq = 9 WHERE seq = -1`}, nil, "first bad seq 8"},
		{"insert", []string{`INSERT INTO audit (seq, time, action, actor, source, event_type, event_id, destination, subject,
			outcome, http_status, attempt, fields_kept, fields_dropped, detail, prev_hash, hash) SELECT max(seq) + 1, time, action, actor, source, event_type, event_id, destination, subject,
			outcome, http_status, attempt, fields_kept, fields_dropped, detail, hash, hash FROM audit`}, nil, "first bad seq"},
		{"edit export", nil, func() string { return strings.Replace(jsonl, `"actor":"greenhouse"`, `"actor":"mallory"`, 1) }, "first bad seq"},
		{"delete from export", nil, func() string { return strings.Join(append(append([]string{}, lines[:3]...), lines[4:]...), "") }, "rows are missing before seq 5"},
		{"swap in export", nil, func() string {
			return strings.Join(append(append(append([]string{}, lines[:5]...), lines[6], lines[5]), lines[7:]...), "")
		}, "first bad seq 7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var code int
			var out string
			if c.file != nil {
				f := filepath.Join(t.TempDir(), "audit.jsonl")
				os.WriteFile(f, []byte(c.file()), 0o600)
				code, out = runVeil(t, "audit", "verify", f)
			} else {
				cdir := t.TempDir()
				os.MkdirAll(filepath.Join(cdir, "data"), 0o700)
				os.WriteFile(filepath.Join(cdir, "data", "veil.db"), mustRead(t, db), 0o600)
				conn, err := sql.Open("sqlite", filepath.Join(cdir, "data", "veil.db"))
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range c.sql {
					if _, err := conn.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
				conn.Close()
				cfg := strings.Replace(string(mustRead(t, config)), filepath.Join(dir, "data"), filepath.Join(cdir, "data"), 1)
				os.WriteFile(filepath.Join(cdir, "veil.yaml"), []byte(cfg), 0o600)
				code, out = runVeil(t, "audit", "verify", "--config", filepath.Join(cdir, "veil.yaml"))
			}
			if code != 1 || !strings.Contains(out, c.wantSeq) {
				t.Fatalf("exit %d, want 1 with %q\n%s", code, c.wantSeq, out)
			}
		})
	}
	// A filtered export is not one chain: said so plainly, and verified row
	// by row with --filtered; a CSV export verifies like a JSONL one.
	_, received := runVeil(t, "audit", "export", "--config", config, "--action", "received,delivered")
	f := filepath.Join(t.TempDir(), "received.jsonl")
	os.WriteFile(f, []byte(received), 0o600)
	if code, out := runVeil(t, "audit", "verify", f); code != 1 || !strings.Contains(out, "--filtered") || strings.Contains(out, "first bad seq") {
		t.Fatalf("filtered export without --filtered: exit %d\n%s", code, out)
	}
	if code, out := runVeil(t, "audit", "verify", "--filtered", f); code != 0 || !strings.Contains(out, "a filtered export") {
		t.Fatalf("filtered export with --filtered: exit %d\n%s", code, out)
	}
	_, csvOut := runVeil(t, "audit", "export", "--config", config, "--format", "csv")
	f = filepath.Join(t.TempDir(), "audit.csv")
	os.WriteFile(f, []byte(csvOut), 0o600)
	if code, out := runVeil(t, "audit", "verify", f); code != 0 || !strings.Contains(out, "hash chain intact") {
		t.Fatalf("csv export: exit %d\n%s", code, out)
	}
	// A misspelled action or destination is a usage error, not an empty export.
	for _, bad := range [][]string{{"--action", "deliverd"}, {"--destination", "slak-hiring"}} {
		code, out := runVeil(t, append([]string{"audit", "export", "--config", config}, bad...)...)
		if code != 2 || !strings.Contains(out, "is not") {
			t.Errorf("export %v: exit %d, want 2 naming the valid ones\n%s", bad, code, out)
		}
	}

	// A purge that removes every row still leaves a chain that verifies.
	cfg := strings.Replace(string(mustRead(t, config)), "policies:", "retention: {payload: 1ns, audit: 1ns}\npolicies:", 1)
	os.WriteFile(config, []byte(cfg), 0o600)
	time.Sleep(10 * time.Millisecond)
	code, out := runVeil(t, "audit", "purge", "--config", config)
	if code != 0 || !strings.Contains(out, "purged: 10 payloads") {
		t.Fatalf("purge: exit %d\n%s", code, out)
	}
	// It says what it gave back to the file system: the pages the ten
	// payloads and every audit row took.
	var pages int
	if i := strings.Index(out, "expired); "); i < 0 {
		t.Fatalf("purge does not say what it gave back:\n%s", out)
	} else if fmt.Sscanf(out[i+len("expired); "):], "%d free pages given back", &pages); pages == 0 {
		t.Fatalf("purge gave back no pages:\n%s", out)
	}
	if code, out := runVeil(t, "audit", "verify", "--config", config); code != 0 {
		t.Fatalf("after purge: exit %d\n%s", code, out)
	}
}
