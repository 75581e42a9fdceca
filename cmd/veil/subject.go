package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/gateway"
)

// runReportSubject prints a data subject's access report (Art. 15), and
// with --copy writes a copy of the data Veil still holds of her (Art.
// 15(3)), decrypted for this report only.
func runReportSubject(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	format := fs.String("format", "md", "md, html or json")
	copyPath := fs.String("copy", "", "also write a copy of the person's data Veil holds (Art. 15(3)) to this file, as JSON")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (*format != "md" && *format != "json" && *format != "html") {
		return c.usage(fs, stderr, "name one subject, SOURCE:candidate:ID; the format is md, html or json")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	st, err := openStore(cfg, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := subjects(cfg, st).View(ctx, pos[0], cliActor)
	if err != nil {
		return c.subjectUsage(err, stderr)
	}
	if *copyPath != "" {
		n, err := writeCopy(ctx, st, pos[0], *copyPath)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "copy of %d records written to %s: it holds the person's data in clear; hand it over and delete it\n", n, *copyPath)
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "html":
		return gateway.WriteReportHTML(stdout, rep)
	}
	gateway.WriteReportMarkdown(stdout, rep)
	return nil
}

// writeCopy writes every payload Veil still holds of the person ref
// belongs to, decrypted, to path (mode 0600), and returns how many.
func writeCopy(ctx context.Context, st *audit.Store, ref, path string) (int, error) {
	_, refs, err := st.Person(ctx, ref)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("write the copy: %w", err)
	}
	defer f.Close()
	type record struct {
		EventID    string          `json:"event_id"`
		Source     string          `json:"source"`
		EventType  string          `json:"event_type"`
		ReceivedAt time.Time       `json:"received_at"`
		Payload    json.RawMessage `json:"payload,omitempty"`
		Upstream   string          `json:"held_by_the_ats,omitempty"`
	}
	out := struct {
		Reference string    `json:"reference"`
		Generated time.Time `json:"generated"`
		Records   []record  `json:"records"`
	}{Reference: ref, Generated: time.Now().UTC(), Records: []record{}}
	err = st.PersonEvents(ctx, refs, func(e *veil.Event) error {
		r := record{EventID: e.ID, Source: e.Source, EventType: e.EventType, ReceivedAt: e.ReceivedAt, Payload: e.Payload}
		if e.Upstream != nil {
			r.Upstream = "the payload is not kept by Veil (upstream lookup mode); ask the ATS for it"
		}
		out.Records = append(out.Records, r)
		return nil
	})
	if err != nil {
		return 0, err
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return 0, err
	}
	return len(out.Records), f.Close()
}

func base64Key(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// runAuditVerifyReceipt checks an erasure receipt's signature with the
// receipt public key: given, or read from the config's store. It needs no
// secret.
func runAuditVerifyReceipt(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	key := fs.String("public-key", "", "the receipt public key, base64 (veil receipt key, GET /v1/receipts/key); default: the config's store's")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.usage(fs, stderr, "name the receipt file")
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	var r veil.ErasureReceipt
	if err := json.Unmarshal(b, &r); err != nil || r.Signature == "" {
		return fmt.Errorf("%s is not an erasure receipt (JSON with a signature)", pos[0])
	}
	var pub ed25519.PublicKey
	if *key != "" {
		if pub, err = audit.ParsePublicKey(strings.TrimSpace(*key)); err != nil {
			return c.usage(fs, stderr, err.Error())
		}
	} else {
		_, st, err := loadStore(*configPath)
		if err != nil {
			return fmt.Errorf("%w (%v)", errReceiptKey, err)
		}
		pub = st.ReceiptPublicKey()
		st.Close()
	}
	if err := audit.VerifyReceipt(pub, r); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: the receipt of the erasure of %s at %s (audit row %d, %s) is signed by key %s\n",
		r.Subject, r.Time.Format(time.RFC3339), r.AuditSeq, r.AuditHash, veil.KeyID(pub))
	return nil
}
