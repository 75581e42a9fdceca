package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

// runSend plays the ATS: it signs FILE with the source's secret exactly as
// the vendor would and posts it to Veil, printing the answer.
func runSend(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	source := fs.String("source", "", "source name in the config (required)")
	url := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if *source == "" || len(pos) != 1 {
		return c.usage(fs, stderr, "name a source and one file")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	src, err := sourceNamed(cfg, *source)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	sch, err := ats.New(src)
	if err != nil {
		return err
	}
	h, body, err := sch.Sign(body, time.Now())
	if err != nil {
		return err
	}
	base := *url
	if base == "" {
		base = listenURL(cfg)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/hooks/"+src.Name, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = h
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("veil did not answer at %s: %w (is `veil serve` running?)", base, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s\n%s", resp.Proto, resp.Status, answer)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("veil answered %s", resp.Status)
	}
	return nil
}

// sourceNamed returns the source called name, or an error listing the
// configured ones.
func sourceNamed(cfg *veil.Config, name string) (*veil.Source, error) {
	if src := cfg.Source(name); src != nil {
		return src, nil
	}
	return nil, fmt.Errorf("no source is named %q; the configured sources are %s", name, strings.Join(cfg.SourceNames(), ", "))
}

// listenURL is the base URL of the server the config describes, as a
// client on this machine reaches it.
func listenURL(cfg *veil.Config) string {
	host := cfg.Listen
	switch {
	case strings.HasPrefix(host, ":"):
		host = "127.0.0.1" + host
	case strings.HasPrefix(host, "0.0.0.0:"):
		host = "127.0.0.1" + strings.TrimPrefix(host, "0.0.0.0")
	}
	return "http://" + host
}
