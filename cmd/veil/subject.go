package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

// runReportSubject prints a data subject's access report (Art. 15): every
// transfer and lookup of the subject's data, from the audit log.
func runReportSubject(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	format := fs.String("format", "md", "md or json")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (*format != "md" && *format != "json") {
		return c.usage(fs, stderr, "name one subject, SOURCE:candidate:ID; the format is md or json")
	}
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if err := checkSubject(cfg, pos[0]); err != nil {
		return c.usage(fs, stderr, err.Error())
	}
	st, err := openStore(cfg, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	rows, err := st.SubjectRows(ctx, pos[0])
	if err != nil {
		return err
	}
	rep := veil.BuildSubjectReport(st.SubjectHash(pos[0]), rows, cfg, time.Now().UTC())
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	writeSubjectMarkdown(stdout, pos[0], rep)
	return nil
}

func writeSubjectMarkdown(w io.Writer, ref string, rep veil.SubjectReport) {
	fmt.Fprintf(w, "# Access report (GDPR Art. 15): %s\n\n", ref)
	fmt.Fprintf(w, "Known in Veil as `%s`. Generated %s. %d events received.\n", rep.Subject, rep.Generated.Format(time.RFC3339), rep.Events)
	if rep.Erased != nil {
		fmt.Fprintf(w, "Erased %s: the payloads are shredded; the log below remains.\n", rep.Erased.Format(time.RFC3339))
	}
	table := func(title string, ts []veil.Transfer) {
		fmt.Fprintf(w, "\n## %s (%d)\n\n", title, len(ts))
		if len(ts) == 0 {
			fmt.Fprintln(w, "None.")
			return
		}
		fmt.Fprintln(w, "| time | recipient | processor | purpose | legal basis | event | fields | categories |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
		for _, t := range ts {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", t.Time.Format(time.RFC3339), t.Recipient, t.Processor,
				t.Purpose, t.LegalBasis, t.EventType, strings.Join(t.FieldsKept, ", "), strings.Join(t.Categories, ", "))
		}
	}
	table("Transfers to destinations", rep.Transfers)
	table("Lookups by consumers", rep.Lookups)
}

// runAuditVerifyReceipt checks an erasure receipt's signature with the
// config's vault key.
func runAuditVerifyReceipt(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.usage(fs, stderr, "name the receipt file")
	}
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	var r veil.ErasureReceipt
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s is not an erasure receipt (JSON): %w", pos[0], err)
	}
	vault, _ := veil.DecodeKey(cfg.Keys.Vault)
	if err := audit.VerifyReceipt(vault, r); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: the receipt of the erasure of %s at %s is signed under this vault key\n", r.Subject, r.Time.Format(time.RFC3339))
	return nil
}
