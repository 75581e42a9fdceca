package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

const auditUsage = `usage:
  veil audit export [--format csv|jsonl] [--since T] [--until T] [--destination D] [--action A] [--subject REF] [--out FILE]
  veil audit verify [FILE]
  veil audit purge [--dry-run]
`

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	switch args[0] {
	case "export":
		return runAuditExport(ctx, args[1:], stdout, stderr)
	case "verify":
		return runAuditVerify(ctx, args[1:], stdout, stderr)
	case "purge":
		return runAuditPurge(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "veil audit: unknown command %q\n%s", args[0], auditUsage)
	return errUsage
}

// parseTime accepts RFC 3339 or a date (YYYY-MM-DD, UTC midnight).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

func runAuditExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("audit export", stderr)
	format := fs.String("format", "jsonl", "csv or jsonl")
	since := fs.String("since", "", "rows at or after this time (RFC 3339 or YYYY-MM-DD)")
	until := fs.String("until", "", "rows before this time")
	dest := fs.String("destination", "", "only this destination")
	action := fs.String("action", "", "only this action")
	subject := fs.String("subject", "", "only this data subject (the vendor reference, e.g. greenhouse:candidate:123)")
	out := fs.String("out", "", "write here instead of stdout")
	if pos, err := parseFlags(fs, args); err != nil || len(pos) != 0 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	f := audit.ExportFilter{Destination: *dest, Action: *action}
	var err error
	if f.Since, err = parseTime(*since); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseTime(*until); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	_, st, err := loadStore(*configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	if *subject != "" {
		f.Subject = st.SubjectHash(*subject)
	}
	w := stdout
	if *out != "" {
		file, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	return st.WriteExport(ctx, w, *format, f)
}

func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("audit verify", stderr)
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) > 1 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	var (
		rows int64
		what string
		verr error // the verification's outcome
	)
	if len(pos) == 1 {
		what = pos[0]
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		rows, verr = audit.VerifyJSONL(f)
	} else {
		_, st, err := loadStore(*configPath)
		if err != nil {
			return err
		}
		defer st.Close()
		what = "the database"
		rows, verr = st.Verify(ctx)
	}
	var ce *veil.ChainError
	if errors.As(verr, &ce) {
		fmt.Fprintf(stdout, "FAIL: %s: first bad seq %d: %s (%d rows verified before it)\n", what, ce.Seq, ce.Reason, rows)
		return fmt.Errorf("audit chain does not verify")
	} else if verr != nil {
		return verr
	}
	fmt.Fprintf(stdout, "OK: %s: %d rows, hash chain intact\n", what, rows)
	return nil
}

func runAuditPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("audit purge", stderr)
	dry := fs.Bool("dry-run", false, "count what would go, change nothing")
	if pos, err := parseFlags(fs, args); err != nil || len(pos) != 0 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	cfg, st, err := loadStore(*configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := st.Purge(ctx, time.Now(), time.Duration(cfg.Retention.Payload), time.Duration(cfg.Retention.Audit), *dry)
	if err != nil {
		return err
	}
	verb := "purged"
	if *dry {
		verb = "would purge"
	}
	fmt.Fprintf(stdout, "%s: %d payloads, %d delivery bodies, %d data keys, %d audit rows\n", verb, r.Payloads, r.DeliveryBodies, r.DataKeys, r.AuditRows)
	return nil
}
