package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

// runSourceCheck makes one authenticated call to a source's ATS API (the
// first page of the applications listing, as reconciliation asks for it)
// and prints what Veil can see: whether the credentials work, how many
// records the page held, the rate-limit headers, the token's scopes, and
// what the API leaves out. Nothing is stored; no record value is printed.
func runSourceCheck(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.usage(fs, stderr, "name one source")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	idx := slices.IndexFunc(cfg.Sources, func(s veil.Source) bool { return s.Name == pos[0] })
	switch {
	case idx < 0:
		return c.usage(fs, stderr, fmt.Sprintf("no source %q in the config", pos[0]))
	case cfg.Sources[idx].API == nil:
		return c.usage(fs, stderr, fmt.Sprintf("source %q has no api block: there is no API to check", pos[0]))
	}
	src := &cfg.Sources[idx]
	apis, err := apiClients(&veil.Config{Sources: []veil.Source{*src}})
	if err != nil {
		return err
	}
	perPage := 100
	if src.Reconcile != nil {
		perPage = src.Reconcile.PerPage
	}
	fmt.Fprintf(stdout, "%s (%s): %s\n", src.Name, src.Vendor, src.API.BaseURL)
	res, err := apis[src.Name].Check(ctx, perPage)
	if err != nil {
		fmt.Fprintf(stdout, "  credentials or permissions: refused\n  %s\n", err)
		return fmt.Errorf("source check %s: %w", src.Name, err)
	}
	fmt.Fprintf(stdout, "  credentials: accepted\n")
	if res.Scopes != "" {
		fmt.Fprintf(stdout, "  token scopes: %s\n", res.Scopes)
	}
	fmt.Fprintf(stdout, "  first page of applications: %d records (asked for %d)\n", res.FirstPage, res.PerPage)
	l := res.Limits
	if l == (ats.RateLimits{}) {
		fmt.Fprintf(stdout, "  rate limit: the API sent no rate-limit headers; Veil keeps to api.rate\n")
	} else {
		fmt.Fprintf(stdout, "  rate limit: X-RateLimit-Limit %s, X-RateLimit-Remaining %s, X-RateLimit-Reset %s\n",
			orNone(l.Limit), orNone(l.Remaining), orNone(l.Reset))
	}
	fmt.Fprintf(stdout, "  %s\n", hiddenRecords(src))
	fmt.Fprintf(stdout, "  nothing was stored\n")
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// hiddenRecords says what the source's API leaves out of what Veil lists.
func hiddenRecords(src *veil.Source) string {
	switch src.Vendor {
	case veil.VendorLever:
		if src.API.Confidential {
			return "confidential opportunities: asked for (api.confidential: true; the key must be allowed them)"
		}
		return "confidential opportunities: left out (api.confidential: false), so reconciliation never sees them"
	case veil.VendorAshby:
		return "confidential jobs and projects: listed only if the API key has \"Allow access to confidential jobs and projects\""
	case veil.VendorGreenhouse:
		return "private candidates and confidential jobs: listed only as far as the API user (api.user_id) may see them"
	}
	return ""
}
