package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
)

// handleDead lists dead deliveries: GET /v1/deliveries?status=dead with
// the filter of DeadQuery; limit (default and at most 1000) per page,
// older pages through "older".
func (a *adminAPI) handleDead(w http.ResponseWriter, r *http.Request) {
	q, err := gateway.ParseDeadQuery(r.URL.Query())
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	q.Limit = 1000
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 && n < q.Limit {
		q.Limit = n
	}
	page, err := a.Recovery.Dead(r.Context(), q)
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	type dead struct {
		deliveryJSON
		Reason     string `json:"reason"`
		HTTPStatus int    `json:"http_status"`
		Replayable bool   `json:"replayable"`
	}
	out := make([]dead, 0, len(page.Letters))
	for _, d := range page.Letters {
		out = append(out, dead{toJSON(d.Delivery), d.Reason, d.HTTPStatus, d.Replayable})
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out, "total": page.Total, "replayable": page.Replayable,
		"older": page.Older, "newer": page.Newer})
}

// handleReplayMatching replays every dead delivery a filter matches:
// POST /v1/deliveries/replay with the filter as a JSON object.
func (a *adminAPI) handleReplayMatching(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Destination string `json:"destination"`
		Reason      string `json:"reason"`
		HTTPStatus  int    `json:"http_status"`
		Since       string `json:"since"`
		Until       string `json:"until"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&in); err != nil {
		writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, `The body must be a JSON filter: {"destination", "reason", "http_status", "since", "until"}; {} replays every dead delivery.`))
		return
	}
	v := url.Values{"destination": {in.Destination}, "reason": {in.Reason}, "since": {in.Since}, "until": {in.Until}}
	if in.HTTPStatus != 0 {
		v.Set("http_status", strconv.Itoa(in.HTTPStatus))
	}
	q, err := gateway.ParseDeadQuery(v)
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	res, err := a.Recovery.ReplayMatching(r.Context(), q, actor(r))
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleDestinations lists the destinations and their pauses.
func (a *adminAPI) handleDestinations(w http.ResponseWriter, r *http.Request) {
	ds, err := a.Recovery.Destinations(r.Context())
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]gateway.Destination{"destinations": ds})
}

// handlePause pauses (POST …/pause with {"reason"}) or resumes (POST
// …/resume) a destination.
func (a *adminAPI) handlePause(w http.ResponseWriter, r *http.Request) {
	if v := r.PathValue("verb"); v != "pause" && v != "resume" {
		writeError(w, r, a.Logger, veil.Errorf(veil.ENOTFOUND, "No such route."))
		return
	}
	name := r.PathValue("name")
	var err error
	if r.PathValue("verb") == "pause" {
		var in struct {
			Reason string `json:"reason"`
		}
		if json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&in) != nil {
			writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, `The body must be JSON: {"reason": "…"}.`))
			return
		}
		err = a.Recovery.Pause(r.Context(), name, actor(r), in.Reason)
	} else {
		err = a.Recovery.Resume(r.Context(), name, actor(r))
	}
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"destination": name, "paused": r.PathValue("verb") == "pause"})
}
