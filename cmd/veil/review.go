package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// The review queue, like the dead-letter inbox, goes through the running
// server's admin API.

func runReviewList(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	base := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usage(fs, stderr, "list takes no arguments")
	}
	client, err := dlqClient(configPath, base)
	if err != nil {
		return err
	}
	var out struct {
		Held           []deadDelivery
		Error, Message string
	}
	status, err := client.do(ctx, http.MethodGet, "/v1/review", &out)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("veil answered %d: %s", status, out.Message)
	}
	fmt.Fprintf(stdout, "%d deliveries held for review\n", len(out.Held))
	for _, d := range out.Held {
		fmt.Fprintf(stdout, "%s  %s  %-16s %s\n", d.ID, d.UpdatedAt.Format(time.RFC3339), d.Destination, d.EventType)
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
	var out struct{ ID, Status, Error, Message string }
	status, err := client.doBody(ctx, http.MethodPost, "/v1/review/"+url.PathEscape(ids[0])+"/"+verb, body, &out)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("veil answered %d: %s", status, out.Message)
	}
	fmt.Fprintf(stdout, "%s: %sd, now %s\n", ids[0], verb, out.Status)
	return nil
}
