package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// TestProgress_Line: figures, rate and time left; redrawn at most every
// progressEvery; the last line ends the output.
func TestProgress_Line(t *testing.T) {
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	isTerminal = func(io.Writer) bool { return true }
	var buf bytes.Buffer
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	p := newProgress(&buf, "exporting", "rows", 100)
	p.now = func() time.Time { return now }
	p.start = now
	now = now.Add(2 * time.Second)
	p.set(50)
	p.set(51) // within progressEvery: not drawn
	now = now.Add(time.Second)
	p.set(60)
	p.finish()
	want := "\r\x1b[Kexporting: 50 of 100 rows (50%), 25/s, 2s left" +
		"\r\x1b[Kexporting: 60 of 100 rows (60%), 20/s, 2s left" +
		"\r\x1b[Kexporting: 60 of 100 rows (60%), 20/s, 2s left\n"
	if buf.String() != want {
		t.Fatalf("drew %q\nwant %q", buf.String(), want)
	}
	var none *progress // not a terminal: nothing, and no panic
	none.set(1)
	none.add(1)
	none.finish()
}

// TestProgress_Commands: on a terminal, export --out and verify draw their
// progress on stderr (stdout keeps only the result); in a script (stderr
// not a terminal) they draw nothing.
func TestProgress_Commands(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	_, st, err := loadStore(config)
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		if err := st.Append(context.Background(), &veil.AuditEntry{Action: veil.ActionPolicyLoaded, Actor: "veil"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	out := filepath.Join(dir, "audit.csv")
	commands := [][]string{
		{"audit", "export", "--format", "csv", "--out", out, "--config", config},
		{"audit", "verify", "--config", config},
		{"audit", "verify", out, "--config", config},
	}
	// veil migrate on a new data folder applies every migration.
	fresh := func() []string {
		return []string{"migrate", "--config", writeConfig(t, t.TempDir(), "")}
	}
	runBoth := func() (stdouts, stderrs []string) {
		commands = append(commands[:3], fresh())
		for _, args := range commands {
			var o, e bytes.Buffer
			if code := run(context.Background(), args, &o, &e); code != 0 {
				t.Fatalf("%v: exit %d\n%s%s", args, code, o.String(), e.String())
			}
			stdouts, stderrs = append(stdouts, o.String()), append(stderrs, e.String())
		}
		return
	}
	_, quiet := runBoth()
	for i, e := range quiet {
		if e != "" {
			t.Errorf("%v wrote to stderr in a script: %q", commands[i], e)
		}
	}
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	isTerminal = func(io.Writer) bool { return true }
	stdouts, stderrs := runBoth()
	n := strings.Count(stdouts[3], "applied ")
	if n == 0 {
		t.Fatalf("migrate on a new folder applied nothing: %q", stdouts[3])
	}
	// Each export is an audit row of its own, so the counts grow by one a
	// run: what matters is that the last line says all of them.
	// A run slower than a tenth of a second adds its rate: ", 4417/s".
	rate := `(?:, \d+/s)?`
	for i, want := range []string{`exporting ` + regexp.QuoteMeta(out) + `: (\d+) of (\d+) rows scanned \(100%\)` + rate + `\n$`,
		`verifying the audit chain: (\d+) of (\d+) rows \(100%\)` + rate + `\n$`, `verifying ` + regexp.QuoteMeta(out) + `: `,
		regexp.QuoteMeta(fmt.Sprintf("migrating: %d of %d migrations (100%%)", n, n))} {
		m := regexp.MustCompile(want).FindStringSubmatch(stderrs[i])
		if m == nil || (len(m) == 3 && m[1] != m[2]) || !strings.HasSuffix(stderrs[i], "\n") {
			t.Errorf("%v on a terminal drew %q, want %q", commands[i], stderrs[i], want)
		}
		if strings.Contains(stdouts[i], "\r") {
			t.Errorf("%v drew its progress on stdout: %q", commands[i], stdouts[i])
		}
	}
}
