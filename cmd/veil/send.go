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
	"github.com/veilhq/veil/proxy"
)

// runSend plays the ATS: it signs FILE with the source's secret exactly as
// the vendor would and posts it to Veil, printing the answer.
func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("send", stderr)
	source := fs.String("source", "", "source name in the config (required)")
	url := fs.String("url", "", "Veil's base URL (default: http:// + the config's listen address)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *source == "" || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: veil send --source NAME [--url URL] FILE")
		return errUsage
	}
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	src := cfg.Source(*source)
	if src == nil {
		return fmt.Errorf("no source %q in %s", *source, *configPath)
	}
	body, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	h, body, err := proxy.SignRequest(src, body, time.Now())
	if err != nil {
		return err
	}
	base := *url
	if base == "" {
		host := cfg.Listen
		if strings.HasPrefix(host, ":") {
			host = "127.0.0.1" + host
		}
		base = "http://" + host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/hooks/"+src.Name, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = h
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s\n%s", resp.Proto, resp.Status, answer)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("veil answered %s", resp.Status)
	}
	return nil
}
