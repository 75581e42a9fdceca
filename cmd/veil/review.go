package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// The review queue, like the dead-letter inbox, goes through the running
// server's admin API.

func runReviewList(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return reviewPrint(ctx, c, args, stdout, stderr, false)
}

func runReviewShow(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return reviewPrint(ctx, c, args, stdout, stderr, true)
}

// heldDelivery is a held delivery as GET /v1/review shows it.
type heldDelivery struct {
	deadDelivery
	EventID    string          `json:"event_id"`
	CreatedAt  time.Time       `json:"created_at"`
	Categories []string        `json:"categories"`
	Body       json.RawMessage `json:"body"`
	Approvals  []veil.Approval `json:"approvals"`
	Need       int             `json:"approvers_needed"`
}

// reviewPrint prints the held deliveries (one, when show) with what a
// reviewer needs to decide: the minimised body, its categories, who
// approved it so far.
func reviewPrint(ctx context.Context, c *command, args []string, stdout, stderr io.Writer, show bool) error {
	fs, configPath := c.flags()
	base := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if show && len(pos) != 1 {
		return c.usage(fs, stderr, "name one delivery id")
	} else if !show && len(pos) != 0 {
		return c.usage(fs, stderr, "list takes no arguments")
	}
	client, err := dlqClient(configPath, base)
	if err != nil {
		return err
	}
	var out struct {
		Held           []heldDelivery
		Total          int64
		Error, Message string
	}
	if show {
		var one struct {
			heldDelivery
			Error, Message string
		}
		status, err := client.do(ctx, http.MethodGet, "/v1/review/"+url.PathEscape(pos[0]), &one)
		if err != nil {
			return err
		}
		if status == http.StatusNotFound {
			return veil.Errorf(veil.ENOTFOUND, "No delivery %s is held for review.", pos[0])
		} else if status != http.StatusOK {
			return fmt.Errorf("veil answered %d: %s", status, one.Message)
		}
		out.Held = []heldDelivery{one.heldDelivery}
	} else {
		status, err := client.do(ctx, http.MethodGet, "/v1/review?limit=1000", &out)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("veil answered %d: %s", status, out.Message)
		}
		fmt.Fprintf(stdout, "%d deliveries held for review\n", out.Total)
	}
	for _, d := range out.Held {
		var who []string
		for _, a := range d.Approvals {
			who = append(who, a.Actor)
		}
		approved := "nobody yet"
		if len(who) > 0 {
			approved = strings.Join(who, ", ")
		}
		fmt.Fprintf(stdout, "\n%s  %s (%s)  to %s, held since %s\n  categories: %s\n  approved by: %s (%d of %d)\n",
			d.ID, d.EventType, d.EventID, d.Destination, d.CreatedAt.Format(time.RFC3339), strings.Join(d.Categories, ", "), approved, len(who), max(d.Need, 1))
		var body bytes.Buffer
		if json.Indent(&body, d.Body, "  ", "  ") == nil {
			fmt.Fprintf(stdout, "  body:\n  %s\n", body.String())
		}
	}
	return nil
}

func runReviewApprove(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return reviewDecide(ctx, c, args, stdout, stderr, true)
}

func runReviewReject(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return reviewDecide(ctx, c, args, stdout, stderr, false)
}

func reviewDecide(ctx context.Context, c *command, args []string, stdout, stderr io.Writer, approve bool) error {
	fs, configPath := c.flags()
	base := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	var reason *string
	if !approve {
		reason = fs.String("reason", "", "why it must not be sent (kept in the audit row; required)")
	}
	ids, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return c.usage(fs, stderr, "name one delivery id")
	}
	verb, body := "approve", any(nil)
	if !approve {
		if *reason == "" {
			return c.usage(fs, stderr, "say why with --reason")
		}
		verb, body = "reject", map[string]string{"reason": *reason}
	}
	client, err := dlqClient(configPath, base)
	if err != nil {
		return err
	}
	var out struct{ ID, Status, Detail, Error, Message string }
	status, err := client.doBody(ctx, http.MethodPost, "/v1/review/"+url.PathEscape(ids[0])+"/"+verb, body, &out)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("veil answered %d: %s", status, out.Message)
	}
	fmt.Fprintf(stdout, "%s: %sd, now %s\n", ids[0], verb, out.Status)
	if out.Status == veil.DeliveryHeld {
		fmt.Fprintf(stdout, "%s\n", out.Detail)
	}
	return nil
}

func runPolicyReload(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	base := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usage(fs, stderr, "reload takes no arguments")
	}
	client, err := dlqClient(configPath, base)
	if err != nil {
		return err
	}
	var out struct{ Status, Error, Message string }
	status, err := client.do(ctx, http.MethodPost, "/v1/policies/reload", &out)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("veil answered %d: %s", status, out.Message)
	}
	fmt.Fprintln(stdout, "policy folder loaded")
	return nil
}
