package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
)

var funcs = template.FuncMap{
	// time is a time in UTC, marked up for the script to add local time.
	"time": func(t time.Time) template.HTML {
		if t.IsZero() {
			return "—"
		}
		return template.HTML(`<time datetime="` + t.UTC().Format(time.RFC3339) + `">` + t.UTC().Format("2006-01-02 15:04:05Z") + `</time>`)
	},
	"join":   strings.Join,
	"status": httpStatusText,
	"duration": func(d time.Duration) string {
		return roundDuration(d)
	},
}

func (c *Console) base(r *http.Request, s *session, title, nav string, data any) page {
	can := map[string]bool{}
	for _, role := range s.Roles {
		can[role] = true
	}
	return page{Title: title, Nav: nav, CSRF: s.CSRF, Role: strings.Join(s.Roles, ", "), Actor: s.Actor, Can: can, Data: data,
		Notice: r.URL.Query().Get("notice")}
}

type eventsData struct {
	Events       []veil.EventSummary
	Form         eventsForm
	Query        template.URL
	Older, Newer string
	Outcomes     []string
	Dests        []string
	Error        string
}

// eventsForm is the events filter as typed.
type eventsForm struct {
	ID, Source, Type, Outcome, Destination, Since, Until string
}

// eventOutcomes are the delivery states the events list filters by.
var eventOutcomes = []string{veil.DeliveryDelivered, veil.DeliveryDead, veil.DeliveryHeld, veil.DeliveryPending,
	veil.DeliveryFiltered, veil.DeliveryBlocked, veil.DeliveryRejected}

// events finds events by any id a person knows, type (the vendor's or the
// normal form's), source, a destination's outcome and time, newest first,
// paged both ways; each with its destinations' outcomes.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	get := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	in := eventsForm{ID: get("id"), Source: get("source"), Type: get("type"), Outcome: get("outcome"), Destination: get("destination"),
		Since: get("since"), Until: get("until")}
	v := filterValues(map[string]string{"id": in.ID, "source": in.Source, "type": in.Type, "outcome": in.Outcome,
		"destination": in.Destination, "since": in.Since, "until": in.Until})
	d := eventsData{Form: in, Query: template.URL(v.Encode()), Outcomes: eventOutcomes, Dests: c.DestinationNames}
	const per = 50
	eq := veil.EventQuery{EventType: in.Type, Before: get("before"), After: get("after"), Limit: per}
	err := c.eventQuery(r, in, &eq)
	if err == nil {
		d.Events, err = c.Store.ListEvents(r.Context(), eq)
	}
	if err != nil {
		c.pageError(w, r, s, err, "events", "Events", &d.Error, &d)
		return
	}
	// An event's or a delivery's own id: that event.
	if eq.ID != "" && len(d.Events) == 1 && eq.Before == "" && eq.After == "" {
		http.Redirect(w, r, "/console/events/"+d.Events[0].ID, http.StatusSeeOther)
		return
	}
	if n := len(d.Events); n > 0 {
		if n == per || eq.After != "" {
			d.Older = d.Events[n-1].ID
		}
		if eq.Before != "" || (eq.After != "" && n == per) {
			d.Newer = d.Events[0].ID
		}
	}
	c.render(w, http.StatusOK, "events", c.base(r, s, "Events", "events", d))
}

// eventQuery fills eq from the form: the id resolved to keyed hashes, the
// source in any case, times, the outcome.
func (c *Console) eventQuery(r *http.Request, in eventsForm, eq *veil.EventQuery) error {
	var err error
	if c.Find != nil {
		if eq.Source, err = c.Find.Source(in.Source); err != nil {
			return err
		}
		if err := c.Find.Resolve(r.Context(), in.ID, eq); err != nil {
			return err
		}
	} else {
		eq.Source, eq.ID = in.Source, in.ID
	}
	if in.Outcome != "" && !slices.Contains(eventOutcomes, in.Outcome) {
		return veil.Errorf(veil.EINVALID, "Unknown outcome; outcomes are %s.", strings.Join(eventOutcomes, ", "))
	}
	eq.Outcome, eq.Destination = in.Outcome, in.Destination
	if in.Destination != "" && in.Outcome == "" {
		return veil.Errorf(veil.EINVALID, "Choose the outcome to look for at that destination.")
	}
	if eq.Since, err = veil.ParseTime("From", in.Since); err != nil {
		return err
	}
	eq.Until, err = veil.ParseTime("To", in.Until)
	return err
}

// eventData is one event: per destination the decision and what left.
type eventData struct {
	Event      veil.EventSummary
	Deliveries []deliveryView
	Rows       []veil.AuditEntry
}

type deliveryView struct {
	*veil.Delivery
	Body    string // the minimised body, indented; "" when none or erased
	Dropped []string
	Rows    []veil.AuditEntry
}

func (c *Console) event(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	id := r.PathValue("id")
	evs, err := c.Store.ListEvents(ctx, veil.EventQuery{ID: id, Limit: 1})
	if err != nil || len(evs) == 0 {
		c.fail(w, http.StatusNotFound, "No such event.")
		return
	}
	ds, err := c.Store.EventDeliveries(ctx, id)
	if err != nil {
		c.fault(w, "The event's deliveries could not be read", err)
		return
	}
	rows, err := c.Store.AuditPage(ctx, veil.AuditFilter{EventID: id, Limit: 500})
	if err != nil {
		c.fault(w, "The event's audit rows could not be read", err)
		return
	}
	slices.Reverse(rows) // oldest first
	d := eventData{Event: evs[0]}
	for _, dl := range ds {
		v := deliveryView{Delivery: dl}
		// A body is a payload's values: an admin's to see, a reviewer's
		// while it waits for her; never an auditor's or a privacy officer's.
		if dl.Body != nil && (s.Has(veil.RoleAdmin) || (s.Has(veil.RoleReviewer) && dl.Status == veil.DeliveryHeld)) {
			var buf strings.Builder
			var x any
			if json.Unmarshal(dl.Body, &x) == nil {
				b, _ := json.MarshalIndent(x, "", "  ")
				buf.Write(b)
			} else {
				buf.Write(dl.Body)
			}
			v.Body = buf.String()
		}
		for _, row := range rows {
			if row.Destination == dl.Destination {
				v.Rows = append(v.Rows, row)
				if len(row.FieldsDropped) > 0 {
					v.Dropped = row.FieldsDropped
				}
			}
		}
		d.Deliveries = append(d.Deliveries, v)
	}
	for _, row := range rows {
		if row.Destination == "" {
			d.Rows = append(d.Rows, row)
		}
	}
	c.render(w, http.StatusOK, "event", c.base(r, s, "Event "+id, "events", d))
}

// replay re-decides and queues the selected dead deliveries.
func (c *Console) replay(w http.ResponseWriter, r *http.Request, s *session) {
	ids := r.PostForm["id"]
	if len(ids) == 0 {
		http.Redirect(w, r, "/console/dead?notice="+urlText("Select at least one delivery."), http.StatusSeeOther)
		return
	}
	var ok, failed int
	var reasons []string
	for _, id := range ids {
		if _, err := c.Replay.Replay(r.Context(), id, s.Actor); err != nil {
			failed++
			if m := veil.ErrorMessage(err); !slices.Contains(reasons, m) {
				reasons = append(reasons, m)
			}
			continue
		}
		ok++
	}
	msg := fmt.Sprintf("%d replayed.", ok)
	if failed > 0 {
		msg += fmt.Sprintf(" %d not: %s", failed, strings.Join(reasons, " "))
	}
	http.Redirect(w, r, "/console/dead?notice="+urlText(msg), http.StatusSeeOther)
}

type auditData struct {
	Rows    []veil.AuditEntry
	Form    auditForm
	Query   template.URL // the filter as a query string, for export and paging links
	Next    int64
	Actions []string
	Chain   string
	Error   string
}

// auditForm is the audit filter as the person typed it.
type auditForm struct {
	Action, Destination, Actor, Event, Subject, Since, Until string
}

// auditFilter reads the audit page's filter: action, destination, actor,
// event, subject (a person's reference: her rows under every linked
// reference) and a time range (UTC). The export takes the same.
func (c *Console) auditFilter(r *http.Request) (veil.AuditFilter, auditForm, error) {
	q := r.URL.Query()
	get := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	in := auditForm{Action: get("action"), Destination: get("destination"), Actor: get("actor"), Event: get("event"),
		Subject: get("subject"), Since: get("since"), Until: get("until")}
	f := veil.AuditFilter{EventID: in.Event}
	if in.Action != "" {
		if !slices.Contains(veil.AuditActions, in.Action) {
			return f, in, veil.Errorf(veil.EINVALID, "That is not an audit action.")
		}
		f.Actions = []string{in.Action}
	}
	if in.Destination != "" {
		f.Destinations = []string{in.Destination}
	}
	if in.Actor != "" {
		f.Actors = []string{in.Actor}
	}
	var err error
	if f.Since, err = veil.ParseTime("From", in.Since); err != nil {
		return f, in, err
	}
	if f.Until, err = veil.ParseTime("To", in.Until); err != nil {
		return f, in, err
	}
	if in.Subject != "" {
		if f.Subjects, err = c.Subjects.Refs(r.Context(), in.Subject); err != nil {
			return f, in, err
		}
	}
	return f, in, nil
}

func (in auditForm) query() template.URL {
	return template.URL(filterValues(map[string]string{"action": in.Action, "destination": in.Destination, "actor": in.Actor,
		"event": in.Event, "subject": in.Subject, "since": in.Since, "until": in.Until}).Encode())
}

// filterValues is a filter as a query string's values: the fields set.
func filterValues(fields map[string]string) url.Values {
	v := url.Values{}
	for k, s := range fields {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	f, in, err := c.auditFilter(r)
	d := auditData{Form: in, Query: in.query(), Actions: veil.AuditActions, Chain: r.URL.Query().Get("chain")}
	if err != nil {
		d.Error = refError(err)
		c.render(w, ErrorStatus(err), "audit", c.base(r, s, "Audit", "audit", d))
		return
	}
	f.Limit = 50
	f.BeforeSeq, _ = strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	if d.Rows, err = c.Store.AuditPage(r.Context(), f); err != nil {
		c.fault(w, "The audit log could not be read", err)
		return
	}
	if len(d.Rows) == f.Limit {
		d.Next = d.Rows[len(d.Rows)-1].Seq
	}
	c.render(w, http.StatusOK, "audit", c.base(r, s, "Audit", "audit", d))
}

// export downloads the rows the audit page's filter selects, every one.
func (c *Console) export(w http.ResponseWriter, r *http.Request, s *session) {
	f, _, err := c.auditFilter(r)
	if err != nil {
		c.fail(w, ErrorStatus(err), refError(err))
		return
	}
	format := r.URL.Query().Get("format")
	if format != "jsonl" {
		format = "csv"
	}
	w.Header().Set("Content-Type", map[string]string{"csv": "text/csv", "jsonl": "application/jsonl"}[format])
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="veil-audit-%s.%s"`, c.Now().UTC().Format("20060102T150405Z"), format))
	c.record(veil.ExportRow(s.Actor, format, f))
	if err := c.Store.WriteExport(r.Context(), w, format, f); err != nil {
		c.Logger.Error("console export", "err", err)
	}
}

func (c *Console) verify(w http.ResponseWriter, r *http.Request, _ *session) {
	n, err := c.Store.Verify(r.Context(), nil)
	msg := fmt.Sprintf("The chain verifies: %d rows, checked %s.", n, c.Now().UTC().Format(time.RFC3339))
	if err != nil {
		msg = "The chain does not verify: " + veil.ErrorMessage(err)
	}
	http.Redirect(w, r, "/console/audit?chain="+urlText(msg), http.StatusSeeOther)
}

func urlText(s string) string { return url.QueryEscape(s) }

// reviewPer is how many held deliveries the Review list shows.
const reviewPer = 100

// reviewItem is a held delivery with its age, expiry and what it would
// send.
type reviewItem struct {
	*veil.Delivery
	Age, ExpiresIn string
	Expires        time.Time
	Body           string // the detail page only
	// Approvals are who approved it so far, of Need.
	Approvals []veil.Approval
	Need      int
}

type reviewData struct {
	Items []reviewItem
	Total int64
	Item  *reviewItem
}

func (c *Console) reviewItem(h gateway.Held) reviewItem {
	it := reviewItem{Delivery: h.Delivery, Age: roundDuration(c.Now().Sub(h.CreatedAt)), Need: h.Need, Approvals: h.Approvals}
	if ttl := c.ReviewTTL[h.Destination]; ttl > 0 {
		it.Expires = h.CreatedAt.Add(ttl)
		it.ExpiresIn = roundDuration(it.Expires.Sub(c.Now()))
	}
	return it
}

// review lists the held deliveries: count, destination, age, expiry and
// the categories each would release; an admin decides several at once.
func (c *Console) review(w http.ResponseWriter, r *http.Request, s *session) {
	held, total, err := c.Review.Queue(r.Context(), reviewPer, false)
	if err != nil {
		c.fault(w, "The review queue could not be read", err)
		return
	}
	d := reviewData{Total: total}
	for _, h := range held {
		d.Items = append(d.Items, c.reviewItem(h))
	}
	c.render(w, http.StatusOK, "review", c.base(r, s, "Review", "review", d))
}

// reviewOne shows one held delivery's body and the controls to decide it.
func (c *Console) reviewOne(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	h, err := c.Review.One(r.Context(), id)
	if veil.ServerFault(err) {
		c.fault(w, "The delivery could not be read", err)
		return
	} else if err != nil {
		c.fail(w, ErrorStatus(err), "That delivery is not waiting for review (decided, expired or erased).")
		return
	}
	it := c.reviewItem(h)
	it.Body = indent(h.Body)
	c.render(w, http.StatusOK, "review-one", c.base(r, s, "Review "+id, "review", reviewData{Item: &it}))
}

// decide approves or rejects one held delivery.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, s *session) {
	verb := r.PathValue("verb")
	if verb != "approve" && verb != "reject" {
		c.fail(w, http.StatusNotFound, "No such action.")
		return
	}
	http.Redirect(w, r, "/console/review?notice="+urlText(c.decideAll(r, s, []string{r.PathValue("id")}, verb)), http.StatusSeeOther)
}

// decideBulk approves or rejects the selected held deliveries, with one
// reason.
func (c *Console) decideBulk(w http.ResponseWriter, r *http.Request, s *session) {
	verb := r.PostForm.Get("verb")
	msg := ""
	switch {
	case verb != "approve" && verb != "reject":
		msg = "Choose approve or reject."
	case len(r.PostForm["id"]) == 0:
		msg = "Select at least one delivery."
	default:
		msg = c.decideAll(r, s, r.PostForm["id"], verb)
	}
	http.Redirect(w, r, "/console/review?notice="+urlText(msg), http.StatusSeeOther)
}

// decideAll decides ids and says what was done. A rejection needs a reason.
func (c *Console) decideAll(r *http.Request, s *session, ids []string, verb string) string {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if verb == "reject" && reason == "" {
		return "Say why it must not be sent."
	}
	var done, waiting []string
	var reasons []string
	for _, id := range ids {
		d, err := c.Review.Decide(r.Context(), id, verb == "approve", s.Actor, reason)
		if err != nil {
			if m := veil.ErrorMessage(err); !slices.Contains(reasons, m) {
				reasons = append(reasons, m)
			}
			continue
		}
		if d.Status == veil.DeliveryHeld { // one of several approvals
			waiting = append(waiting, d.ID+" to "+d.Destination+": "+d.Detail)
			continue
		}
		done = append(done, d.ID+" to "+d.Destination)
	}
	msg := ""
	if len(done) > 0 {
		msg = strings.Join(done, ", ") + map[bool]string{true: ": approved, it will be sent.", false: ": rejected, it will never be sent."}[verb == "approve"]
		if len(done) > 1 {
			msg = fmt.Sprintf("%d %s: %s.", len(done), map[bool]string{true: "approved, they will be sent", false: "rejected, they will never be sent"}[verb == "approve"], strings.Join(done, ", "))
		}
	}
	if len(waiting) > 0 {
		msg = strings.TrimSpace(msg + " Your approval is noted: " + strings.Join(waiting, "; ") + ".")
	}
	if len(reasons) > 0 {
		msg = strings.TrimSpace(fmt.Sprintf("%s %d not done: %s", msg, len(ids)-len(done)-len(waiting), strings.Join(reasons, " ")))
	}
	return msg
}

// indent pretty-prints a JSON body ("" for none).
func indent(body []byte) string {
	if body == nil {
		return ""
	}
	var x any
	if json.Unmarshal(body, &x) != nil {
		return string(body)
	}
	b, _ := json.MarshalIndent(x, "", "  ")
	return string(b)
}

type subjectData struct {
	Ref     string
	Report  *veil.SubjectReport
	Receipt *veil.ErasureReceipt
	JSON    string
	Error   string
}

func (c *Console) checkRef(ref string) error {
	if ref == "" {
		return veil.Errorf(veil.EINVALID, "Name a subject: SOURCE:candidate:ID.")
	}
	if c.CheckSubject != nil {
		return c.CheckSubject(ref)
	}
	return nil
}

// subjects shows a subject's access report (Art. 15).
func (c *Console) subjects(w http.ResponseWriter, r *http.Request, s *session) {
	d := subjectData{Ref: strings.TrimSpace(r.URL.Query().Get("ref"))}
	if d.Ref != "" {
		if err := c.checkRef(d.Ref); err != nil {
			d.Error = refError(err)
		} else if rep, err := c.Subjects.View(r.Context(), d.Ref, s.Actor); err != nil {
			d.Error = "The report could not be made: " + veil.ErrorMessage(err)
		} else {
			d.Report = &rep
		}
	}
	c.render(w, http.StatusOK, "subjects", c.base(r, s, "Subjects", "subjects", d))
}

// printReport serves the access report as the page a DPO prints or sends
// (the same as GET /v1/subjects/{ref}/report?format=html).
func (c *Console) printReport(w http.ResponseWriter, r *http.Request, s *session) {
	ref := strings.TrimSpace(r.URL.Query().Get("ref"))
	if err := c.checkRef(ref); err != nil {
		c.fail(w, http.StatusBadRequest, refError(err))
		return
	}
	rep, err := c.Subjects.View(r.Context(), ref, s.Actor)
	if err != nil {
		c.fail(w, ErrorStatus(err), "The report could not be made: "+veil.ErrorMessage(err))
		return
	}
	var b bytes.Buffer
	if err := gateway.WriteReportHTML(&b, rep); err != nil {
		c.fault(w, "The report could not be drawn", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Write(b.Bytes())
}

// ErrorStatus is the page status for an error from a use case (the
// API's: veil.HTTPStatus).
func ErrorStatus(err error) int { return veil.HTTPStatus(err) }

// confirmErase asks once more before an erasure.
func (c *Console) confirmErase(w http.ResponseWriter, r *http.Request, s *session) {
	d := subjectData{Ref: strings.TrimSpace(r.URL.Query().Get("ref"))}
	if err := c.checkRef(d.Ref); err != nil {
		d.Error = refError(err)
	}
	c.render(w, http.StatusOK, "erase", c.base(r, s, "Erase a subject", "subjects", d))
}

// erase erases a subject and shows the signed receipt.
func (c *Console) erase(w http.ResponseWriter, r *http.Request, s *session) {
	d := subjectData{Ref: strings.TrimSpace(r.PostForm.Get("ref"))}
	if err := c.checkRef(d.Ref); err != nil {
		d.Error = refError(err)
		c.render(w, http.StatusBadRequest, "erase", c.base(r, s, "Erase a subject", "subjects", d))
		return
	}
	_, receipt, err := c.Subjects.Erase(r.Context(), d.Ref, s.Actor)
	if err != nil {
		d.Error = "Not erased: " + veil.ErrorMessage(err)
		c.render(w, ErrorStatus(err), "erase", c.base(r, s, "Erase a subject", "subjects", d))
		return
	}
	d.Receipt = &receipt
	b, _ := json.MarshalIndent(receipt, "", "  ")
	d.JSON = string(b)
	c.Logger.Info("console erasure", "actor", s.Actor, "subject", receipt.Subject)
	c.render(w, http.StatusOK, "receipt", c.base(r, s, "Erasure receipt", "subjects", d))
}

// refError is why a subject reference is refused: the checker's own
// sentence (it lists the valid forms).
func refError(err error) string {
	if veil.ErrorCode(err) != veil.EINTERNAL {
		return veil.ErrorMessage(err)
	}
	return err.Error()
}

type processingData struct {
	Since  string
	Report template.HTML
	Error  string
}

// processing shows the records of processing (Art. 30), printable.
func (c *Console) processing(w http.ResponseWriter, r *http.Request, s *session) {
	d := processingData{Since: strings.TrimSpace(r.URL.Query().Get("since"))}
	since, err := veil.ParseTime("Since", d.Since)
	if err == nil && c.Processing == nil {
		err = veil.Errorf(veil.EINVALID, "The records of processing are not served here: veil report processing prints them.")
	}
	if err == nil {
		d.Report, err = c.Processing(r.Context(), since)
	}
	if err != nil {
		c.pageError(w, r, s, err, "processing", "Records of processing", &d.Error, &d)
		return
	}
	c.render(w, http.StatusOK, "processing", c.base(r, s, "Records of processing", "processing", d))
}
