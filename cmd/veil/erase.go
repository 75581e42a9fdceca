package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/gateway"
)

// subjects returns the subject use cases over a store the command opened.
func subjects(cfg *veil.Config, st *audit.Store) *gateway.Subjects {
	ps := cfg.Keys.PseudonymKey()
	return &gateway.Subjects{Store: st, Config: cfg, PseudonymKey: ps}
}

// subjectUsage turns a refused reference into a usage error (exit 2),
// and leaves every other error as it is (exit 1).
func (c *command) subjectUsage(err error, stderr io.Writer) error {
	if veil.ErrorCode(err) == veil.EINVALIDSUBJECT {
		fmt.Fprintf(stderr, "veil %s: %s\n", c.name, veil.ErrorMessage(err))
		return errUsage
	}
	return err
}

// runErase erases the person a reference belongs to.
func runErase(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	subject := fs.String("subject", "", "a reference of the person, SOURCE:candidate:ID (or application, offer) (required)")
	receiptPath := fs.String("receipt", "", "write the signed erasure receipt (JSON) to this file (default: print it)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *subject == "" {
		return c.usage(fs, stderr, "name the subject with --subject SOURCE:candidate:ID")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if err := gateway.CheckSubject(cfg, *subject); err != nil {
		return c.subjectUsage(err, stderr)
	}
	var res veil.Erasure
	var receipt veil.ErasureReceipt
	if serveRunning(cfg.DataDir) {
		// The server erases, so its deliverer and metrics know at once.
		client := &adminClient{base: serverURL(cfg), token: apiToken(cfg)}
		var out struct {
			veil.Erasure
			Receipt veil.ErasureReceipt
			Error   string
			Message string
		}
		status, err := client.do(ctx, http.MethodDelete, "/v1/subjects/"+url.PathEscape(*subject), &out)
		if err != nil {
			return fmt.Errorf("a veil serve holds %s, but %w", cfg.DataDir, err)
		}
		if status != http.StatusOK {
			return c.subjectUsage(veil.Errorf(out.Error, "%s", out.Message), stderr)
		}
		res, receipt = out.Erasure, out.Receipt
	} else {
		st, err := openStore(cfg, newLogger(io.Discard))
		if err != nil {
			return err
		}
		defer st.Close()
		if res, receipt, err = subjects(cfg, st).Erase(ctx, *subject, cliActor); err != nil {
			return c.subjectUsage(err, stderr)
		}
	}
	cancelled := int64(0)
	for _, n := range res.Cancelled {
		cancelled += n
	}
	if res.Already {
		fmt.Fprintf(stdout, "already erased (%s): nothing was done again; the first erasure's receipt follows\n", receipt.Time.Format("2006-01-02 15:04 UTC"))
	} else {
		fmt.Fprintf(stdout, "erased %s: %d linked references, %d events can no longer be decrypted, %d waiting deliveries cancelled\n",
			res.Subject, res.References, res.Events, cancelled)
	}
	fmt.Fprintf(stdout, "recipients to tell (Art. 19): %s\n", strings.Join(append([]string{}, receipt.Recipients...), ", "))
	for _, n := range receipt.Notified {
		fmt.Fprintf(stdout, "notified: %s (delivery %s)\n", n.Destination, n.Delivery)
	}
	b, _ := json.MarshalIndent(receipt, "", "  ")
	if *receiptPath != "" {
		if err := os.WriteFile(*receiptPath, append(b, '\n'), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "signed receipt written to %s (check it with veil audit verify-receipt %s --public-key KEY)\n", *receiptPath, *receiptPath)
		return nil
	}
	fmt.Fprintf(stdout, "signed receipt (veil audit verify-receipt checks it):\n%s\n", b)
	return nil
}

// runSubjectRestore lifts a person's erasure.
func runSubjectRestore(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	reason := fs.String("reason", "", "why the erasure is lifted, e.g. the new consent's reference (required; audited)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 || strings.TrimSpace(*reason) == "" {
		return c.usage(fs, stderr, "name one subject reference and give --reason")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if err := gateway.CheckSubject(cfg, pos[0]); err != nil {
		return c.subjectUsage(err, stderr)
	}
	if serveRunning(cfg.DataDir) {
		client := &adminClient{base: serverURL(cfg), token: apiToken(cfg)}
		var out struct{ Error, Message string }
		status, err := client.doBody(ctx, http.MethodPost, "/v1/subjects/"+url.PathEscape(pos[0])+"/restore",
			map[string]string{"reason": *reason}, &out)
		if err != nil {
			return fmt.Errorf("a veil serve holds %s, but %w", cfg.DataDir, err)
		}
		if status != http.StatusOK {
			return c.subjectUsage(veil.Errorf(out.Error, "%s", out.Message), stderr)
		}
	} else {
		st, err := openStore(cfg, newLogger(io.Discard))
		if err != nil {
			return err
		}
		defer st.Close()
		if err := subjects(cfg, st).Restore(ctx, pos[0], cliActor, *reason); err != nil {
			return c.subjectUsage(err, stderr)
		}
	}
	fmt.Fprintf(stdout, "restored: later events of this person are stored and delivered again; what was erased stays unreadable\n")
	return nil
}

// runReceiptKey prints the public key erasure receipts are signed with.
func runReceiptKey(_ context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return c.onStore(args, stdout, stderr, 0, "receipt key takes no arguments", func(st *audit.Store, pos []string) error {
		pub := st.ReceiptPublicKey()
		fmt.Fprintf(stdout, "%s\n", base64Key(pub))
		fmt.Fprintf(stderr, "Ed25519 public key %s; check a receipt with: veil audit verify-receipt FILE --public-key %s\n", veil.KeyID(pub), base64Key(pub))
		return nil
	})
}

var errReceiptKey = errors.New("name the public key with --public-key (veil receipt key prints it), or a config whose store holds it")
