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

// The dead-letter inbox is read and replayed through the running server's
// admin API: the server owns the store and its audit chain.

// dlqClient returns the admin client for the config at configPath, or base.
func dlqClient(configPath, base *string) (*adminClient, error) {
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return nil, err
	}
	b := *base
	if b == "" {
		b = serverURL(cfg)
	}
	return &adminClient{base: strings.TrimSuffix(b, "/"), token: cfg.AdminToken}, nil
}

func runDLQList(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
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
	dead, err := client.dead(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d dead deliveries\n", len(dead))
	for _, d := range dead {
		fmt.Fprintf(stdout, "%s  %s  %-16s %-24s attempts=%d  %s\n", d.ID, d.UpdatedAt.Format(time.RFC3339), d.Destination, d.EventType, d.Attempts, d.Detail)
	}
	return nil
}

func runDLQReplay(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	base := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	all := fs.Bool("all", false, "replay every dead delivery")
	ids, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if (len(ids) > 0) == *all {
		return c.usage(fs, stderr, "name delivery ids, or --all")
	}
	client, err := dlqClient(configPath, base)
	if err != nil {
		return err
	}
	if *all {
		dead, err := client.dead(ctx)
		if err != nil {
			return err
		}
		for _, d := range dead {
			ids = append(ids, d.ID)
		}
		if len(ids) == 0 {
			fmt.Fprintln(stdout, "the dead-letter inbox is empty: nothing to replay")
			return nil
		}
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

func (c *adminClient) dead(ctx context.Context) ([]deadDelivery, error) {
	var out struct {
		Deliveries     []deadDelivery
		Error, Message string
	}
	status, err := c.do(ctx, http.MethodGet, "/v1/deliveries?status=dead", &out)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("veil answered %d: %s", status, out.Message)
	}
	return out.Deliveries, nil
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
