package console

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
)

// Recovery reads the dead-letter inbox, replays what a filter matches and
// pauses destinations (gateway.Recovery).
type Recovery interface {
	Dead(ctx context.Context, q veil.DeadQuery) (veil.DeadPage, error)
	ReplayMatching(ctx context.Context, q veil.DeadQuery, actor string) (gateway.BulkReplay, error)
	Pause(ctx context.Context, destination, actor, reason string) error
	Resume(ctx context.Context, destination, actor string) error
	Destinations(ctx context.Context) ([]gateway.Destination, error)
}

// deadPer is a page of the dead-letter inbox.
const deadPer = 50

type deadData struct {
	Page    veil.DeadPage
	Form    deadForm
	Query   template.URL // the filter, for paging and replay-all links
	Dests   []string
	Reasons []string
	Error   string
	Confirm bool // the replay-all confirmation
}

// deadForm is the filter as typed, echoed in the form and the links.
type deadForm struct {
	Destination, Reason, HTTPStatus, Since, Until string
}

func (f deadForm) values() url.Values {
	return filterValues(map[string]string{"destination": f.Destination, "reason": f.Reason, "http_status": f.HTTPStatus,
		"since": f.Since, "until": f.Until})
}

// deadFilter reads the filter from the query string (GET) or the form
// (POST).
func (c *Console) deadFilter(v url.Values) (veil.DeadQuery, deadData, error) {
	d := deadData{Form: deadForm{Destination: v.Get("destination"), Reason: v.Get("reason"), HTTPStatus: v.Get("http_status"),
		Since: v.Get("since"), Until: v.Get("until")}, Reasons: veil.DeadReasons, Dests: c.DestinationNames}
	d.Query = template.URL(d.Form.values().Encode())
	q, err := gateway.ParseDeadQuery(v)
	q.Limit = deadPer
	return q, d, err
}

func (c *Console) dead(w http.ResponseWriter, r *http.Request, s *session) {
	q, d, err := c.deadFilter(r.URL.Query())
	if err == nil {
		d.Page, err = c.Recovery.Dead(r.Context(), q)
	}
	if err != nil {
		c.pageError(w, r, s, err, "dead", "Dead letters", &d.Error, &d)
		return
	}
	d.Confirm = r.URL.Query().Get("confirm") != ""
	c.render(w, http.StatusOK, "dead", c.base(r, s, "Dead letters", "dead", d))
}

// pageError draws a page with the error in *field: a refused filter is the
// person's to fix (4xx, the sentence shown), anything else is a fault
// (logged, an error id on the page).
func (c *Console) pageError(w http.ResponseWriter, r *http.Request, s *session, err error, name, title string, field *string, data any) {
	status := ErrorStatus(err)
	if veil.ServerFault(err) {
		c.fault(w, title+" could not be read", err)
		return
	}
	*field = veil.ErrorMessage(err)
	c.render(w, status, name, c.base(r, s, title, name, data))
}

// replayAll replays every dead delivery the posted filter matches; the
// Dead letters page asked first, with the count.
func (c *Console) replayAll(w http.ResponseWriter, r *http.Request, s *session) {
	q, d, err := c.deadFilter(r.PostForm)
	if err != nil {
		c.pageError(w, r, s, err, "dead", "Dead letters", &d.Error, &d)
		return
	}
	res, err := c.Recovery.ReplayMatching(r.Context(), q, s.Actor)
	msg := res.Summary()
	if err != nil {
		c.Logger.Error("console replay all", "err", err)
		msg += " Stopped: " + veil.ErrorMessage(err)
	}
	v := d.Form.values()
	v.Set("notice", msg)
	http.Redirect(w, r, "/console/dead?"+v.Encode(), http.StatusSeeOther)
}

// pause pauses or resumes a destination from the Overview.
func (c *Console) pause(w http.ResponseWriter, r *http.Request, s *session) {
	name, verb := r.PathValue("name"), r.PathValue("verb")
	var err error
	switch verb {
	case "pause":
		err = c.Recovery.Pause(r.Context(), name, s.Actor, r.PostForm.Get("reason"))
	case "resume":
		err = c.Recovery.Resume(r.Context(), name, s.Actor)
	default:
		c.fail(w, http.StatusNotFound, "No such action.")
		return
	}
	msg := name + map[string]string{"pause": " paused: its deliveries wait until it is resumed.", "resume": " resumed."}[verb]
	if err != nil {
		msg = "Not done: " + veil.ErrorMessage(err)
	}
	http.Redirect(w, r, "/console/?notice="+url.QueryEscape(msg), http.StatusSeeOther)
}

// destinationStates are the Overview's pause controls: every configured
// destination, paused or not, with the payload retention that still runs.
func (c *Console) destinationStates(ctx context.Context) ([]gateway.Destination, string) {
	if c.Recovery == nil {
		return nil, ""
	}
	ds, err := c.Recovery.Destinations(ctx)
	if err != nil {
		c.Logger.Error("console destinations", "err", err)
		return nil, "The paused destinations could not be read."
	}
	return ds, ""
}

// httpStatusText names a status for the inbox ("" for none).
func httpStatusText(code int) string {
	if code == 0 {
		return ""
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}
