package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// runDLQ lists and replays the dead-letter inbox through the running
// server's admin API: the server owns the store and its audit chain.
func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: veil dlq list | veil dlq replay ID|--all  [--config veil.yaml] [--url URL]\n"
	fs, configPath := newFlagSet("dlq", stderr)
	url := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	all := fs.Bool("all", false, "replay every dead delivery")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || (pos[0] == "list" && len(pos) != 1) || (pos[0] == "replay" && (len(pos) == 2) == *all) || (pos[0] != "list" && pos[0] != "replay") {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	base := *url
	if base == "" {
		base = "http://" + strings.Replace(cfg.Listen, "0.0.0.0", "127.0.0.1", 1)
		if strings.HasPrefix(cfg.Listen, ":") {
			base = "http://127.0.0.1" + cfg.Listen
		}
	}
	c := &adminClient{base: strings.TrimSuffix(base, "/"), token: cfg.AdminToken}
	dead, err := c.dead(ctx)
	if err != nil {
		return err
	}
	if pos[0] == "list" {
		fmt.Fprintf(stdout, "%d dead deliveries\n", len(dead))
		for _, d := range dead {
			fmt.Fprintf(stdout, "%s  %s  %-16s %-24s attempts=%d  %s\n", d.ID, d.UpdatedAt.Format(time.RFC3339), d.Destination, d.EventType, d.Attempts, d.Detail)
		}
		return nil
	}
	ids := pos[1:]
	if *all {
		ids = nil
		for _, d := range dead {
			ids = append(ids, d.ID)
		}
	}
	failed := 0
	for _, id := range ids {
		var out struct{ ID, Status, Error, Message string }
		status, err := c.do(ctx, http.MethodPost, "/v1/deliveries/"+id+"/replay", &out)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			failed++
			fmt.Fprintf(stdout, "%s: not replayed (%d %s: %s)\n", id, status, out.Error, out.Message)
			continue
		}
		fmt.Fprintf(stdout, "%s: replayed, now %s\n", id, out.Status)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d replays failed", failed, len(ids))
	}
	return nil
}

type adminClient struct{ base, token string }

type deadDelivery struct {
	ID, EventType, Destination, Detail string
	Attempts                           int
	UpdatedAt                          time.Time `json:"updated_at"`
}

func (c *adminClient) dead(ctx context.Context) ([]deadDelivery, error) {
	var out struct {
		Deliveries []struct {
			deadDelivery
			EventType string `json:"event_type"`
		}
		Error, Message string
	}
	status, err := c.do(ctx, http.MethodGet, "/v1/deliveries?status=dead", &out)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("veil answered %d %s: %s", status, out.Error, out.Message)
	}
	var ds []deadDelivery
	for _, d := range out.Deliveries {
		d.deadDelivery.EventType = d.EventType
		ds = append(ds, d.deadDelivery)
	}
	return ds, nil
}

func (c *adminClient) do(ctx context.Context, method, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("reach veil: %w", err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(out)
}
