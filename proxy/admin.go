package proxy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/gateway"
)

// AdminStore is what the admin API reads and applies itself: deliveries
// by status, the audit export, retention. audit.Store implements it.
type AdminStore interface {
	Deliveries(ctx context.Context, status string, limit int) ([]*veil.Delivery, error)
	WriteExport(ctx context.Context, w io.Writer, format string, f veil.AuditFilter) error
	Purge(ctx context.Context, now time.Time, payloadTTL, auditTTL time.Duration, dryRun bool) (veil.PurgeResult, error)
}

// adminAPI serves the admin API: deliveries, replays, the export,
// retention, policy reloads, the review queue, recovery and the subject
// routes, each a translation into a gateway call (or the store's, for
// what is only a read).
type adminAPI struct {
	cfg       *veil.Config
	Logger    *slog.Logger
	Now       func() time.Time
	store     EventStore
	Admin     AdminStore
	Pipeline  *gateway.Pipeline
	Reviews   *gateway.Review
	Recovery  *gateway.Recovery
	Subjects  *gateway.Subjects
	Reload    func(ctx context.Context, actor string) error
	Deliverer Notifier
	GivenUp   func(byDestination map[string]int64)
}

// handleReviewList lists the deliveries held for review, with their
// minimised bodies, categories and approvals so far: GET
// /v1/review[?limit=N] (reviewers).
func (a *adminAPI) handleReviewList(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	held, n, err := a.Reviews.Queue(r.Context(), limit, true)
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	out := make([]heldJSON, 0, len(held))
	for _, h := range held {
		out = append(out, toHeldJSON(h))
	}
	writeJSON(w, http.StatusOK, map[string]any{"held": out, "total": n})
}

// handleReviewOne answers GET /v1/review/{id}: one held delivery as the
// list shows it (reviewers); 404 when it is not waiting for review.
func (a *adminAPI) handleReviewOne(w http.ResponseWriter, r *http.Request) {
	h, err := a.Reviews.One(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, toHeldJSON(h))
}

// heldJSON is a held delivery as the review API shows it to a reviewer.
type heldJSON struct {
	deliveryJSON
	Categories []string        `json:"categories"`
	Body       json.RawMessage `json:"body,omitempty"`
	Approvals  []veil.Approval `json:"approvals"`
	Approvers  int             `json:"approvers_needed"`
}

func toHeldJSON(h gateway.Held) heldJSON {
	out := heldJSON{deliveryJSON: toJSON(h.Delivery), Categories: h.Categories, Approvals: h.Approvals, Approvers: h.Need}
	if json.Valid(h.Body) {
		out.Body = h.Body
	}
	if out.Approvals == nil {
		out.Approvals = []veil.Approval{}
	}
	return out
}

// handleReviewDecide answers POST /v1/review/{id}/approve and
// /v1/review/{id}/reject (body {"reason": "…"}, optional).
func (a *adminAPI) handleReviewDecide(w http.ResponseWriter, r *http.Request) {
	if v := r.PathValue("verb"); v != "approve" && v != "reject" {
		writeError(w, r, a.Logger, veil.Errorf(veil.ENOTFOUND, "No such route."))
		return
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&in); err != nil {
			writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, "The body must be JSON: {\"reason\": \"…\"}."))
			return
		}
	}
	d, err := a.Reviews.Decide(r.Context(), r.PathValue("id"), r.PathValue("verb") == "approve", actor(r), in.Reason)
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(d))
}

// handlePurge applies retention now, in the server's own small
// transactions, so `veil audit purge` never competes with it for the
// database: POST /v1/retention/purge[?dry_run=true].
func (a *adminAPI) handlePurge(w http.ResponseWriter, r *http.Request) {
	dry := r.URL.Query().Get("dry_run") == "true"
	// A purge runs to its end even if the caller leaves: each of its
	// transactions commits on its own, and what it gave up is counted.
	res, err := a.Admin.Purge(context.WithoutCancel(r.Context()), a.Now(), time.Duration(a.cfg.Retention.Payload),
		time.Duration(a.cfg.Retention.Audit), dry)
	if !dry && a.GivenUp != nil {
		a.GivenUp(res.Expired)
	}
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleExport streams the audit log as csv or jsonl.
func (a *adminAPI) handleExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "jsonl"
	}
	if format != "csv" && format != "jsonl" {
		writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, "format must be csv or jsonl."))
		return
	}
	f := veil.AuditFilter{Destinations: splitList(q.Get("destination")), Actions: splitList(q.Get("action")),
		Actors: splitList(q.Get("actor")), EventID: q.Get("event")}
	if err := a.checkFilter(f); err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	var err error
	if f.Since, err = veil.ParseTime("since", q.Get("since")); err == nil {
		f.Until, err = veil.ParseTime("until", q.Get("until"))
	}
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	if v := q.Get("subject"); v != "" {
		// A person's rows: those of every reference linked to her.
		if a.Subjects == nil {
			writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, "Subjects are not served here."))
			return
		}
		if err := a.Subjects.Check(v); err != nil {
			writeError(w, r, a.Logger, err)
			return
		}
		_, refs, err := a.Subjects.Store.Person(r.Context(), v)
		if err != nil {
			writeError(w, r, a.Logger, err)
			return
		}
		f.Subjects = refs
	}
	ct := map[string]string{"csv": "text/csv", "jsonl": "application/x-ndjson"}[format]
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", "attachment; filename=veil-audit."+format)
	a.store.Record(veil.ExportRow(actor(r), format, f))
	if err := a.Admin.WriteExport(r.Context(), w, format, f); err != nil {
		// Headers are gone; the truncated body is the signal, and the log says why.
		a.Logger.Error("audit export", "err", err)
	}
}

// splitList splits a comma list, dropping empty entries.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkFilter refuses unknown actions and destinations: a typo must not
// silently export nothing.
func (a *adminAPI) checkFilter(f veil.AuditFilter) error {
	for _, act := range f.Actions {
		if !slices.Contains(veil.AuditActions, act) {
			return veil.Errorf(veil.EINVALID, "Unknown action %q; actions are %s.", ats.Label(act), strings.Join(veil.AuditActions, ", "))
		}
	}
	for _, d := range f.Destinations {
		if a.cfg.Destination(d) == nil {
			return veil.Errorf(veil.EINVALID, "Unknown destination %q; destinations are %s.", ats.Label(d), strings.Join(a.cfg.DestinationNames(), ", "))
		}
	}
	return nil
}

// deliveryJSON is a delivery as the admin API shows it: no body.
type deliveryJSON struct {
	ID          string    `json:"id"`
	EventID     string    `json:"event_id"`
	Source      string    `json:"source"`
	EventType   string    `json:"event_type"`
	Destination string    `json:"destination"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	Detail      string    `json:"detail"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toJSON(d *veil.Delivery) deliveryJSON {
	return deliveryJSON{ID: d.ID, EventID: d.EventID, Source: d.Source, EventType: d.EventType, Destination: d.Destination,
		Status: d.Status, Attempts: d.Attempts, Detail: d.Detail, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// handleDeliveryList answers GET /v1/deliveries: the dead-letter inbox
// with its filters for ?status=dead (with Recovery), deliveries by status
// otherwise (with Admin).
func (a *adminAPI) handleDeliveryList(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Query().Get("status") == veil.DeliveryDead && a.Recovery != nil:
		a.handleDead(w, r)
	case a.Admin != nil:
		a.handleDeliveries(w, r)
	default:
		writeError(w, r, a.Logger, veil.Errorf(veil.ENOTFOUND, "No such route."))
	}
}

func (a *adminAPI) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	switch status {
	case "", veil.DeliveryPending, veil.DeliverySending, veil.DeliveryDelivered, veil.DeliveryDead, veil.DeliveryFiltered,
		veil.DeliveryBlocked, veil.DeliveryHeld, veil.DeliveryRejected:
	default:
		writeError(w, r, a.Logger, veil.Errorf(veil.EINVALID, "Unknown status; use pending, sending, delivered, dead, filtered, blocked, held or rejected."))
		return
	}
	ds, err := a.Admin.Deliveries(r.Context(), status, 1000)
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, toJSON(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

// handleReplay re-runs the current policy on the stored payload of a dead
// delivery and queues it again under the same id.
func (a *adminAPI) handleReplay(w http.ResponseWriter, r *http.Request) {
	d, err := a.Pipeline.Replay(r.Context(), r.PathValue("id"), actor(r))
	if err != nil {
		writeError(w, r, a.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(d))
}
