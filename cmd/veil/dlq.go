package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
)

// The dead-letter inbox is read and replayed through the running server's
// admin API: the server owns the store and its audit chain.

// dlqClient returns the admin client for the config at configPath, or base.
func dlqClient(configPath, base *string) (*adminClient, error) {
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return nil, err
	}
	b := *base
	if b == "" {
		b = serverURL(cfg)
	}
	return &adminClient{base: strings.TrimSuffix(b, "/"), token: apiToken(cfg)}, nil
}

// apiToken is the token the CLI calls the admin API with: VEIL_TOKEN, a
// person's or a service's own (the audit log names it), else the config's
// break-glass admin token.
func apiToken(cfg *veil.Config) string {
	if t := os.Getenv("VEIL_TOKEN"); t != "" {
		return t
	}
	return cfg.AdminToken
}

// deadFlags are the inbox's filters, for list and replay --all.
type deadFlags struct {
	destination, reason, since, until *string
	status                            *int
}

func newDeadFlags(fs *flag.FlagSet) deadFlags {
	return deadFlags{
		destination: fs.String("destination", "", "only this destination's"),
		reason:      fs.String("reason", "", "only those dead for this reason: "+strings.Join(veil.DeadReasons, ", ")),
		status:      fs.Int("http-status", 0, "only those whose last answer had this HTTP status"),
		since:       fs.String("since", "", "only those dead at or after this time (RFC 3339 or YYYY-MM-DD)"),
		until:       fs.String("until", "", "only those dead before this time"),
	}
}

func (f deadFlags) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"destination": *f.destination, "reason": *f.reason, "since": *f.since, "until": *f.until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if *f.status != 0 {
		v.Set("http_status", strconv.Itoa(*f.status))
	}
	return v
}

func runDLQList(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	base := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	filter := newDeadFlags(fs)
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
		Deliveries []struct {
			deadDelivery
			Reason     string `json:"reason"`
			HTTPStatus int    `json:"http_status"`
			Replayable bool   `json:"replayable"`
		}
		Total, Replayable int64
		Older             string
		Error, Message    string
	}
	v := filter.values()
	v.Set("status", "dead")
	status, err := client.do(ctx, http.MethodGet, "/v1/deliveries?"+v.Encode(), &out)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("veil answered %d: %s", status, out.Message)
	}
	fmt.Fprintf(stdout, "%d dead deliveries match, %d replayable", out.Total, out.Replayable)
	if out.Older != "" {
		fmt.Fprintf(stdout, "; the %d most recent:", len(out.Deliveries))
	}
	fmt.Fprintln(stdout)
	for _, d := range out.Deliveries {
		gone := ""
		if !d.Replayable {
			gone = "  (cannot be replayed: payload past retention or subject erased)"
		}
		fmt.Fprintf(stdout, "%s  %s  %-16s %-24s attempts=%d  %s  %s%s\n", d.ID, d.UpdatedAt.Format(time.RFC3339), d.Destination,
			d.EventType, d.Attempts, d.Reason, d.Detail, gone)
	}
	return nil
}

func runDLQReplay(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	base := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	all := fs.Bool("all", false, "replay every dead delivery the filters match (all of them without filters)")
	filter := newDeadFlags(fs)
	ids, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if (len(ids) > 0) == *all {
		return c.usage(fs, stderr, "name delivery ids, or --all")
	}
	if !*all && len(filter.values()) > 0 {
		return c.usage(fs, stderr, "the filters go with --all")
	}
	client, err := dlqClient(configPath, base)
	if err != nil {
		return err
	}
	if *all {
		in := map[string]any{"destination": *filter.destination, "reason": *filter.reason, "http_status": *filter.status,
			"since": *filter.since, "until": *filter.until}
		var out struct {
			gateway.BulkReplay
			Error, Message string
		}
		client.timeout = 10 * time.Minute // up to gateway.MaxBulkReplay replays
		status, err := client.doBody(ctx, http.MethodPost, "/v1/deliveries/replay", in, &out)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("veil answered %d: %s", status, out.Message)
		}
		if out.Matched == 0 {
			fmt.Fprintln(stdout, "no dead delivery matches: nothing to replay")
			return nil
		}
		fmt.Fprintln(stdout, out.Summary())
		if out.Refused > 0 {
			return fmt.Errorf("%d of %d replays refused", out.Refused, out.Matched)
		}
		return nil
	}
	failed := 0
	for _, id := range ids {
		var out struct{ ID, Status, Error, Message string }
		status, err := client.do(ctx, http.MethodPost, "/v1/deliveries/"+url.PathEscape(id)+"/replay", &out)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			failed++
			fmt.Fprintf(stdout, "%s: not replayed: %s\n", id, out.Message)
			continue
		}
		fmt.Fprintf(stdout, "%s: replayed, now %s\n", id, out.Status)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d replays failed", failed, len(ids))
	}
	return nil
}

// runDestination lists the destinations (no verb) or pauses or resumes
// one, through the admin API.
func runDestination(verb string) func(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
		fs, configPath := c.flags()
		base := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
		reason := fs.String("reason", "", "why it is paused (required to pause; audited)")
		pos, err := c.parse(fs, args, stdout, stderr)
		if err != nil {
			return err
		}
		if (verb == "" && len(pos) != 0) || (verb != "" && len(pos) != 1) {
			return c.usage(fs, stderr, map[bool]string{true: "list takes no arguments", false: "name one destination"}[verb == ""])
		}
		client, err := dlqClient(configPath, base)
		if err != nil {
			return err
		}
		var out struct {
			Destinations   []gateway.Destination
			Error, Message string
		}
		var status int
		if verb == "" {
			status, err = client.do(ctx, http.MethodGet, "/v1/destinations", &out)
		} else {
			status, err = client.doBody(ctx, http.MethodPost, "/v1/destinations/"+url.PathEscape(pos[0])+"/"+verb,
				map[string]string{"reason": *reason}, &out)
		}
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("veil answered %d: %s", status, out.Message)
		}
		if verb != "" {
			fmt.Fprintf(stdout, "%s %sd\n", pos[0], verb)
			return nil
		}
		for _, d := range out.Destinations {
			if p := d.Paused; p != nil {
				fmt.Fprintf(stdout, "%-20s paused since %s by %s: %s\n", d.Name, p.Since.Format(time.RFC3339), p.Actor, p.Reason)
			} else {
				fmt.Fprintf(stdout, "%-20s sending\n", d.Name)
			}
		}
		return nil
	}
}

type adminClient struct {
	base, token string
	timeout     time.Duration // 0 means 30s
}

type deadDelivery struct {
	ID          string    `json:"id"`
	EventType   string    `json:"event_type"`
	Destination string    `json:"destination"`
	Detail      string    `json:"detail"`
	Attempts    int       `json:"attempts"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func (c *adminClient) do(ctx context.Context, method, path string, out any) (int, error) {
	return c.doBody(ctx, method, path, nil, out)
}

// doBody is do with a JSON request body (nil: none).
func (c *adminClient) doBody(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	timeout := c.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("veil did not answer at %s: %w (is `veil serve` running?)", c.base, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("veil's answer (%d) could not be read: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}
