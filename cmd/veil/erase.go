package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

// runErase crypto-shreds one data subject.
func runErase(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	subject := fs.String("subject", "", "the vendor's record reference, SOURCE:candidate:ID (required)")
	receiptPath := fs.String("receipt", "", "write the signed erasure receipt (JSON) to this file (default: print it)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *subject == "" {
		return c.usage(fs, stderr, "name the subject with --subject SOURCE:candidate:ID")
	}
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if err := checkSubject(cfg, *subject); err != nil {
		return c.usage(fs, stderr, err.Error())
	}
	var res veil.Erasure
	var receipt veil.ErasureReceipt
	if serveRunning(cfg.DataDir) {
		// The server erases, so its deliverer and metrics know at once.
		client := &adminClient{base: serverURL(cfg), token: cfg.AdminToken}
		var out struct {
			veil.Erasure
			Receipt veil.ErasureReceipt
			Message string
		}
		status, err := client.do(ctx, http.MethodDelete, "/v1/subjects/"+url.PathEscape(*subject), &out)
		if err != nil {
			return fmt.Errorf("a veil serve holds %s, but %w", cfg.DataDir, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("veil serve answered %d: %s", status, out.Message)
		}
		res, receipt = out.Erasure, out.Receipt
	} else {
		st, err := openStore(cfg, newLogger(io.Discard))
		if err != nil {
			return err
		}
		defer st.Close()
		rows, err := st.SubjectRows(ctx, *subject)
		if err != nil {
			return err
		}
		report := veil.BuildSubjectReport(st.SubjectHash(*subject), rows, cfg, time.Now().UTC())
		if res, err = st.Erase(ctx, *subject); err != nil {
			return err
		}
		receipt = st.Receipt(res, report)
	}
	cancelled := int64(0)
	for _, n := range res.Cancelled {
		cancelled += n
	}
	fmt.Fprintf(stdout, "erased %s: %d events can no longer be decrypted, %d waiting deliveries cancelled\n", res.Subject, res.Events, cancelled)
	fmt.Fprintf(stdout, "recipients to tell (Art. 19): %s\n", strings.Join(append([]string{}, receipt.Recipients...), ", "))
	b, _ := json.MarshalIndent(receipt, "", "  ")
	if *receiptPath != "" {
		if err := os.WriteFile(*receiptPath, append(b, '\n'), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "signed receipt written to %s (check it with veil audit verify-receipt)\n", *receiptPath)
		return nil
	}
	fmt.Fprintf(stdout, "signed receipt (veil audit verify-receipt checks it):\n%s\n", b)
	return nil
}

// checkSubject checks a subject reference against the configured sources
// and the forms their vendors' subjects take, listing the valid forms: an
// unprefixed id erases nothing, and must not look as if it had.
func checkSubject(cfg *veil.Config, ref string) error {
	var forms []string
	for _, s := range cfg.Sources {
		for _, k := range append(ats.SubjectKinds(s.Vendor), "event") {
			forms = append(forms, s.Name+":"+k+":ID")
		}
	}
	parts := strings.SplitN(ref, ":", 3)
	if len(parts) == 3 && parts[2] != "" {
		if src := cfg.Source(parts[0]); src != nil {
			for _, k := range append(ats.SubjectKinds(src.Vendor), "event") {
				if parts[1] == k {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%q is not a subject reference; the valid forms are %s", ref, strings.Join(forms, ", "))
}
