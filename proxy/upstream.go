package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

// ATSClient fetches records from Greenhouse Harvest and Lever for sources
// in upstream lookup mode. Errors carry the upstream's status, never its body.
type ATSClient struct {
	// Client is the HTTP client; nil means one with no redirects followed.
	Client  *http.Client
	sources map[string]*veil.Source
}

var _ Upstream = (*ATSClient)(nil)

// NewATSClient returns a client for the upstream-mode sources of cfg.
func NewATSClient(cfg *veil.Config) *ATSClient {
	c := &ATSClient{sources: map[string]*veil.Source{}, Client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	for i := range cfg.Sources {
		if cfg.Sources[i].Lookup == "upstream" {
			c.sources[cfg.Sources[i].Name] = &cfg.Sources[i]
		}
	}
	return c
}

// Fetch returns the record of e as JSON: Greenhouse {"application": …,
// "candidate": …} from Harvest, Lever the opportunity ({"data": …}).
func (c *ATSClient) Fetch(ctx context.Context, e *veil.Event) ([]byte, error) {
	src := c.sources[e.Source]
	if src == nil || e.Upstream == nil {
		return nil, veil.Errorf(veil.EGONE, "The event's payload is no longer held.")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(src.API.Timeout))
	defer cancel()
	switch src.Vendor {
	case veil.VendorGreenhouse:
		app, err := c.get(ctx, src, "/v1/applications/"+url.PathEscape(e.Upstream["application"]))
		if err != nil {
			return nil, err
		}
		cand, err := c.get(ctx, src, "/v1/candidates/"+url.PathEscape(e.Upstream["candidate"]))
		if err != nil {
			return nil, err
		}
		return []byte(`{"application":` + string(app) + `,"candidate":` + string(cand) + `}`), nil
	case veil.VendorLever:
		return c.get(ctx, src, "/v1/opportunities/"+url.PathEscape(e.Upstream["opportunity"]))
	}
	return nil, veil.Errorf(veil.EUPSTREAM, "No upstream API for this vendor.")
}

func (c *ATSClient) get(ctx context.Context, src *veil.Source, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(src.API.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("upstream request: %w", err)
	}
	req.SetBasicAuth(src.API.Key, "")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, veil.Errorf(veil.EUPSTREAMTIMEOUT, "The ATS API did not answer in time.")
		}
		return nil, veil.Errorf(veil.EUPSTREAM, "The ATS API could not be reached.")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, veil.Errorf(veil.EUPSTREAMTIMEOUT, "The ATS API did not answer in time.")
	case err != nil:
		return nil, veil.Errorf(veil.EUPSTREAM, "The ATS API's answer could not be read.")
	case resp.StatusCode == http.StatusNotFound:
		return nil, veil.Errorf(veil.EGONE, "The ATS no longer has this record.")
	case resp.StatusCode != http.StatusOK:
		// The upstream's body may hold anything: only its status is passed on.
		return nil, veil.Errorf(veil.EUPSTREAM, "The ATS API answered %d.", resp.StatusCode)
	case !gjson.ValidBytes(body):
		return nil, veil.Errorf(veil.EUPSTREAM, "The ATS API answered something that is not JSON.")
	}
	return body, nil
}
