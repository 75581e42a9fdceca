package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

// runErase crypto-shreds one data subject.
func runErase(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	subject := fs.String("subject", "", "the vendor's record reference, SOURCE:candidate:ID (required)")
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
	st, err := openStore(cfg, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	events, cancelled, err := st.Erase(ctx, *subject)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "erased %s: %d events can no longer be decrypted, %d waiting deliveries cancelled\n", st.SubjectHash(*subject), events, cancelled)
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
