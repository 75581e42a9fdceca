package gateway

import (
	"context"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

// ATSClient fetches records for sources in upstream lookup mode, through
// each source's ATS API client (Greenhouse Harvest v3, Lever, Ashby).
// Errors carry the upstream's status, never its body.
type ATSClient struct {
	apis map[string]*ats.API
}

var _ Upstream = (*ATSClient)(nil)

// NewATSClient returns a client over the API clients of the sources that
// have one, by source name.
func NewATSClient(apis map[string]*ats.API) *ATSClient {
	return &ATSClient{apis: apis}
}

// Fetch returns the record of e as JSON, in the shape the vendor's
// normaliser reads: Greenhouse {"application": …, "candidate": …}, Lever
// the opportunity ({"data": …}), Ashby {"data": {"application": …}}.
func (c *ATSClient) Fetch(ctx context.Context, e *veil.Event) ([]byte, error) {
	api := c.apis[e.Source]
	if api == nil || e.Upstream == nil {
		return nil, veil.Errorf(veil.EGONE, "The event's payload is no longer held.")
	}
	return api.Fetch(ctx, e.Upstream)
}
