package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

// parseTime accepts RFC 3339 or a date (YYYY-MM-DD, UTC midnight).
func parseTime(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q is not a time: write a date (2026-11-27) or an RFC 3339 time (2026-11-27T09:30:00Z)", flagName, s)
}

// splitList splits a comma list, dropping empty entries.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runAuditExport(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	format := fs.String("format", "jsonl", "csv or jsonl")
	since := fs.String("since", "", "rows at or after this time (RFC 3339 or YYYY-MM-DD)")
	until := fs.String("until", "", "rows before this time")
	dest := fs.String("destination", "", "only these destinations (comma-separated)")
	action := fs.String("action", "", "only these actions (comma-separated), e.g. delivered,dead")
	subject := fs.String("subject", "", "only this data subject (the vendor reference, e.g. greenhouse:candidate:123)")
	actor := fs.String("actor", "", "only rows by these actors (comma-separated), e.g. console:admin,veil")
	event := fs.String("event", "", "only the rows of this event (evt_…)")
	out := fs.String("out", "", "write here instead of stdout")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usage(fs, stderr, "export takes flags only")
	}
	if *format != "csv" && *format != "jsonl" {
		return c.usage(fs, stderr, fmt.Sprintf("--format %q: use csv or jsonl", *format))
	}
	f := veil.AuditFilter{Destinations: splitList(*dest), Actions: splitList(*action), Actors: splitList(*actor), EventID: *event}
	if f.Since, err = parseTime("since", *since); err != nil {
		return c.usage(fs, stderr, err.Error())
	}
	if f.Until, err = parseTime("until", *until); err != nil {
		return c.usage(fs, stderr, err.Error())
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	for _, a := range f.Actions {
		if !slices.Contains(veil.AuditActions, a) {
			return c.usage(fs, stderr, fmt.Sprintf("--action %q is not an audit action; the actions are %s", a, strings.Join(veil.AuditActions, ", ")))
		}
	}
	for _, d := range f.Destinations {
		if cfg.Destination(d) == nil {
			return c.usage(fs, stderr, fmt.Sprintf("--destination %q is not configured; the destinations are %s", d, strings.Join(cfg.DestinationNames(), ", ")))
		}
	}
	st, err := openStore(cfg, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	if *subject != "" {
		// A person's rows: those of every reference linked to her, as the
		// HTTP export and the console give them.
		if _, f.Subjects, err = st.Person(ctx, *subject); err != nil {
			return err
		}
	}
	// The export itself is on record, after its rows (the store is closed
	// only once the row is written).
	defer func() { st.Record(veil.ExportRow(cliActor, *format, f)); st.Flush(context.WithoutCancel(ctx)) }()
	if *out == "" {
		return st.WriteExport(ctx, stdout, *format, f)
	}
	file, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer file.Close()
	enc, err := audit.NewExportEncoder(file, *format)
	if err != nil {
		return err
	}
	// On a terminal: how far through the log the export has come.
	first, last, err := st.SeqRange(ctx)
	if err != nil {
		return err
	}
	p := newProgress(stderr, "exporting "+*out, "rows scanned", last-first+1)
	err = st.Export(ctx, f, func(e *veil.AuditEntry) error {
		p.set(e.Seq - first + 1)
		return enc.Write(e)
	})
	if err != nil {
		return err
	}
	p.set(last - first + 1)
	p.finish()
	if err := enc.Flush(); err != nil {
		return err
	}
	return file.Close()
}

// verifyChain verifies st's audit chain, drawing its progress as what on a
// terminal.
func verifyChain(ctx context.Context, st *audit.Store, stderr io.Writer, what string) (int64, error) {
	first, last, err := st.SeqRange(ctx)
	if err != nil {
		return 0, err
	}
	p := newProgress(stderr, what, "rows", last-first+1)
	rows, err := st.Verify(ctx, func(seq int64) { p.set(seq - first + 1) })
	p.finish()
	return rows, err
}

func runAuditVerify(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	filtered := fs.Bool("filtered", false, "FILE is a filtered export: verify each row's own hash, not one chain")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 1 || (*filtered && len(pos) == 0) {
		return c.usage(fs, stderr, "name at most one file (--filtered needs one)")
	}
	if len(pos) == 0 {
		_, st, err := loadStore(*configPath)
		if err != nil {
			return err
		}
		defer st.Close()
		rows, verr := verifyChain(ctx, st, stderr, "verifying the audit chain")
		return reportChain(stdout, "the database", rows, verr)
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	p := newProgress(stderr, "verifying "+pos[0], "bytes", size)
	chk, verr := audit.VerifyExport(progressReader{f, p}, *filtered)
	p.finish()
	var ce *veil.ChainError
	switch {
	case verr == nil && *filtered:
		fmt.Fprintf(stdout, "OK: %s (a filtered export): %d rows, each matches its own hash; %s between them, which this file cannot vouch for: verify a complete export or the database for that\n",
			pos[0], chk.Rows, plural(chk.Gaps, "gap"))
		return nil
	case errors.As(verr, &ce) && !*filtered && chk.Gaps > 0:
		// Rows missing: tampering, or an export made with a filter. Say which
		// can be told apart from this file, and which cannot.
		f.Seek(0, io.SeekStart)
		if own, err := audit.VerifyExport(f, true); err == nil {
			fmt.Fprintf(stdout, "FAIL: %s is not one complete chain: rows are missing before seq %d (%s in all). Every one of its %d rows matches its own hash, so none was edited. If it is a filtered export, run `veil audit verify --filtered %s`.\n",
				pos[0], chk.FirstGap, plural(own.Gaps, "gap"), own.Rows, pos[0])
			return errors.New("the file is not one complete chain")
		}
	}
	return reportChain(stdout, pos[0], chk.Rows, verr)
}

// reportChain prints the outcome of a chain verification.
func reportChain(stdout io.Writer, what string, rows int64, verr error) error {
	var ce *veil.ChainError
	if errors.As(verr, &ce) {
		fmt.Fprintf(stdout, "FAIL: %s: first bad seq %d: %s (%d rows verified before it)\n", what, ce.Seq, ce.Reason, rows)
		return errors.New("the audit chain does not verify")
	} else if verr != nil {
		return verr
	}
	fmt.Fprintf(stdout, "OK: %s: %d rows, hash chain intact\n", what, rows)
	return nil
}

func runAuditPurge(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	dry := fs.Bool("dry-run", false, "count what would go, change nothing")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usage(fs, stderr, "purge takes flags only")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var r veil.PurgeResult
	if serveRunning(cfg.DataDir) {
		// The server does it in its own small transactions, and counts
		// the deliveries it gives up in its metrics.
		client := &adminClient{base: serverURL(cfg), token: apiToken(cfg), timeout: time.Hour}
		var out struct {
			veil.PurgeResult
			Message string
		}
		status, err := client.do(ctx, http.MethodPost, "/v1/retention/purge?dry_run="+strconv.FormatBool(*dry), &out)
		if err != nil {
			return fmt.Errorf("a veil serve holds %s, but %w", cfg.DataDir, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("veil serve answered %d: %s", status, out.Message)
		}
		r = out.PurgeResult
	} else {
		st, err := openStore(cfg, newLogger(io.Discard))
		if err != nil {
			return err
		}
		defer st.Close()
		if r, err = st.Purge(ctx, time.Now(), time.Duration(cfg.Retention.Payload), time.Duration(cfg.Retention.Audit), *dry); err != nil {
			return err
		}
	}
	if r.Elsewhere {
		fmt.Fprintln(stdout, "another veil serve replica is applying retention right now; nothing done")
		return nil
	}
	expired := int64(0)
	for _, n := range r.Expired {
		expired += n
	}
	verb := "purged"
	if *dry {
		verb = "would purge"
	}
	fmt.Fprintf(stdout, "%s: %d payloads, %d delivery bodies, %d data keys, %d audit rows, %d events with %d deliveries; %d waiting deliveries given up (expired)",
		verb, r.Payloads, r.DeliveryBodies, r.DataKeys, r.AuditRows, r.Events, r.Deliveries, expired)
	if !*dry {
		// What the file shrank by: giving pages back is part of the
		// purge's time, the larger part when traffic stopped reusing them.
		fmt.Fprintf(stdout, "; %s given back to the file system", plural(r.Pages, "free page"))
	}
	fmt.Fprintln(stdout)
	return nil
}

// plural writes n and the noun, with an s when n is not 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
