package main

import (
	"context"
	"fmt"
	"io"
)

// runErase crypto-shreds one data subject.
func runErase(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("erase", stderr)
	subject := fs.String("subject", "", "the vendor's record reference, e.g. greenhouse:candidate:123 (required)")
	if pos, err := parseFlags(fs, args); err != nil || len(pos) != 0 || *subject == "" {
		fmt.Fprintln(stderr, "usage: veil erase --subject REF")
		return errUsage
	}
	_, st, err := loadStore(*configPath)
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
