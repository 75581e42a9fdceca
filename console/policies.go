package console

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/veilhq/veil"
)

// Policies shows the running policies, previews them on a stored event and
// measures a draft folder's impact (gateway.Policies).
type Policies interface {
	PolicyInfo() veil.PolicyInfo
	Preview(ctx context.Context, eventID string) (veil.PolicyPreview, error)
	DraftImpact(ctx context.Context, dir string, n int) (veil.PolicyImpact, error)
	DraftImpactRego(ctx context.Context, rego string, n int) (veil.PolicyImpact, error)
}

// policiesData is the Policies page; Preview and Impact are set when asked for.
type policiesData struct {
	Info    veil.PolicyInfo
	EventID string
	Preview *previewView
	Dir     string
	Rego    string // a pasted or uploaded draft module
	N       int
	Impact  *veil.PolicyImpact
	Error   string
}

type previewView struct {
	veil.PolicyPreview
	Decisions []decisionView
}

type decisionView struct {
	*veil.Delivery
	Body string
}

// impactEvents is how many stored events a draft is compared on unless
// asked otherwise, and at most.
const impactEvents, maxImpactEvents = 200, 5000

func (c *Console) policies(w http.ResponseWriter, r *http.Request, s *session) {
	d := policiesData{Info: c.Policies.PolicyInfo(), N: impactEvents, EventID: strings.TrimSpace(r.URL.Query().Get("event"))}
	if d.EventID != "" {
		p, err := c.Policies.Preview(r.Context(), d.EventID)
		if err != nil {
			d.Error = "No preview: " + veil.ErrorMessage(err)
		} else {
			v := &previewView{PolicyPreview: p}
			for _, dl := range p.Decisions {
				dv := decisionView{Delivery: dl}
				if s.Has(veil.RoleAdmin) { // a body is values: an admin's to see
					dv.Body = indent(dl.Body)
				}
				v.Decisions = append(v.Decisions, dv)
			}
			d.Preview = v
		}
	}
	c.render(w, http.StatusOK, "policies", c.base(r, s, "Policies", "policies", d))
}

// impact compares a draft policy folder with the running set on the last
// N stored events. Admin only: it reads a folder on the server and runs
// the Rego in it.
func (c *Console) impact(w http.ResponseWriter, r *http.Request, s *session) {
	d := policiesData{Info: c.Policies.PolicyInfo(), Dir: strings.TrimSpace(r.PostForm.Get("dir")), N: impactEvents}
	if n, err := strconv.Atoi(r.PostForm.Get("n")); err == nil && n > 0 {
		d.N = min(n, maxImpactEvents)
	}
	d.Rego = r.PostForm.Get("rego")
	if r.MultipartForm != nil {
		if fs := r.MultipartForm.File["file"]; len(fs) > 0 && fs[0].Size > 0 {
			f, err := fs[0].Open()
			if err == nil {
				b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
				f.Close()
				d.Rego = string(b)
			}
		}
	}
	status := http.StatusOK
	var im veil.PolicyImpact
	var err error
	switch {
	case d.Dir == "" && strings.TrimSpace(d.Rego) == "":
		d.Error, status = "Paste or upload a draft policy, or name a draft folder.", http.StatusBadRequest
	case d.Dir != "":
		im, err = c.Policies.DraftImpact(r.Context(), d.Dir, d.N)
	default:
		im, err = c.Policies.DraftImpactRego(r.Context(), d.Rego, d.N)
	}
	if err != nil {
		d.Error, status = "No comparison: "+veil.ErrorMessage(err), veil.HTTPStatus(err)
	} else if d.Error == "" {
		d.Impact = &im
	}
	c.render(w, status, "policies", c.base(r, s, "Policies", "policies", d))
}

// consumersData is the Consumers page; Key is a new consumer's key, shown
// on this one answer and never again.
type consumersData struct {
	Consumers []veil.Consumer
	Name, Key string
	Error     string
}

func (c *Console) consumers(w http.ResponseWriter, r *http.Request, s *session) {
	c.drawConsumers(w, r, s, http.StatusOK, consumersData{})
}

func (c *Console) drawConsumers(w http.ResponseWriter, r *http.Request, s *session, status int, d consumersData) {
	cs, err := c.Consumers.Consumers(r.Context())
	if err != nil {
		c.fault(w, "The consumers could not be read", err)
		return
	}
	d.Consumers = cs
	c.render(w, status, "consumers", c.base(r, s, "Consumers", "consumers", d))
}

// addConsumer grants a consumer its purposes and shows its key once.
func (c *Console) addConsumer(w http.ResponseWriter, r *http.Request, s *session) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	var purposes []string
	for p := range strings.SplitSeq(r.PostForm.Get("purposes"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			purposes = append(purposes, p)
		}
	}
	key, err := c.Consumers.AddConsumer(r.Context(), name, purposes, s.Actor)
	if err != nil {
		c.drawConsumers(w, r, s, veil.HTTPStatus(err), consumersData{Error: "Not added: " + veil.ErrorMessage(err)})
		return
	}
	c.Logger.Info("console consumer added", "actor", s.Actor, "consumer", name)
	c.drawConsumers(w, r, s, http.StatusOK, consumersData{Name: name, Key: key})
}

// revokeConsumer stops a consumer's key at once.
func (c *Console) revokeConsumer(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	msg := name + " revoked: its key no longer works."
	if err := c.Consumers.RevokeConsumer(r.Context(), name, s.Actor); err != nil {
		msg = "Not revoked: " + veil.ErrorMessage(err)
	} else {
		c.Logger.Info("console consumer revoked", "actor", s.Actor, "consumer", name)
	}
	http.Redirect(w, r, "/console/consumers?notice="+urlText(msg), http.StatusSeeOther)
}

// reload loads the policy folder again, audited as the person's: who
// changed a destination's policy is then known (four-eyes review).
func (c *Console) reload(w http.ResponseWriter, r *http.Request, s *session) {
	if c.Reload == nil {
		c.fail(w, http.StatusNotFound, "Reloading is not served here.")
		return
	}
	msg := "Policies reloaded."
	if err := c.Reload(r.Context(), s.Actor); err != nil {
		msg = "The policy folder was not loaded; the running set stays: " + veil.ErrorMessage(err)
	}
	http.Redirect(w, r, "/console/policies?notice="+urlText(msg), http.StatusSeeOther)
}
