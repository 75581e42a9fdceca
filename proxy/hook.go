package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/semaphore"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/gateway"
	"github.com/veilhq/veil/redact"
)

var (
	eventsReceived = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "veil_events_received_total", Help: "Webhooks accepted, by source and outcome (accepted, duplicate).",
	}, []string{"source", "outcome"})
	eventsRejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "veil_events_rejected_total", Help: "Webhooks rejected, by source and reason (the error code).",
	}, []string{"source", "reason"})
)

// hookAPI serves POST /hooks/{source}: what HTTP needs of a webhook
// (bounded bodies and requests, the answer), the rest is the pipeline's.
type hookAPI struct {
	cfg      *veil.Config
	Logger   *slog.Logger
	Now      func() time.Time
	Pipeline *gateway.Pipeline
	// rejections aggregates the minute's rejected requests (the server
	// writes them).
	rejections *rejections
	// admit bounds the values being indexed at once (admitBudget); slots
	// bounds the hook requests in progress, leaving connections for health
	// checks, metrics and the admin API.
	admit       *semaphore.Weighted
	admitBudget int64
	bodies      *semaphore.Weighted // bytes of webhook bodies held, bodyBudget
	slots       chan struct{}
}

// limitHooks answers 503 when as many hook requests are in progress as
// their share of max_connections allows: the ATS retries, and the rest of
// the connections stay free for health checks, metrics and the admin API.
func (h *hookAPI) limitHooks(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case h.slots <- struct{}{}:
			defer func() { <-h.slots }()
			next(w, r)
		default:
			name := r.PathValue("source")
			if src, _ := h.Pipeline.Source(name); src == nil {
				name = ""
			}
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close") // and do not wait for its body
			h.reject(w, r, name, veil.Errorf(veil.EUNAVAILABLE, "Too many webhooks in progress; retry later."))
		}
	}
}

// hookResponse is the body of a 200 from POST /hooks/{source}.
type hookResponse struct {
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

// bodyReadTimeout bounds how long a webhook's body may take to arrive once
// its headers have: a stalled sender holds a connection no longer.
const bodyReadTimeout = 30 * time.Second

// bodyWaitTimeout bounds how long a webhook waits for room in the body
// budget before it is answered 503 (the ATS retries).
const bodyWaitTimeout = 10 * time.Second

// handleHook receives one webhook: verify the signature over the raw
// bytes, validate the JSON, decide for each destination, commit, then
// answer 200. Nothing is answered 200 before the commit that holds it.
func (h *hookAPI) handleHook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("source")
	src, sch := h.Pipeline.Source(name)
	if sch == nil {
		// The path is the sender's text: it goes into neither label nor log.
		h.reject(w, r, "", veil.Errorf(veil.EUNKNOWNSOURCE, "No source is configured under this name."))
		return
	}
	if src.Vendor == veil.VendorSmartRecruiters && r.Header.Get("X-Hook-Secret") != "" {
		// Subscription activation: echo the secret with a 200.
		w.Header().Set("X-Hook-Secret", r.Header.Get("X-Hook-Secret"))
		writeJSON(w, http.StatusOK, map[string]bool{"handshake": true})
		return
	}
	// Bodies held in memory are bounded in bytes, whatever the number of
	// connections: a request waits for room before it reads.
	held := h.cfg.MaxBodyBytes
	if r.ContentLength >= 0 && r.ContentLength < held {
		held = r.ContentLength
	}
	waitCtx, cancel := context.WithTimeout(r.Context(), bodyWaitTimeout)
	err := h.bodies.Acquire(waitCtx, held)
	cancel()
	if err != nil {
		w.Header().Set("Retry-After", "1")
		h.reject(w, r, name, veil.Errorf(veil.EUNAVAILABLE, "Too many webhook bodies in progress; retry later."))
		return
	}
	defer h.bodies.Release(held)
	body, err := h.readBody(w, r)
	if err != nil {
		h.reject(w, r, name, err)
		return
	}
	now := h.Now()
	if err := sch.Verify(r.Header, body, now); err != nil {
		h.reject(w, r, name, err)
		return
	}
	values, err := redact.Validate(body, h.cfg.MaxDepth)
	if err != nil {
		h.reject(w, r, name, veil.Errorf(veil.EMALFORMED, "%s", err.Error()))
		return
	}
	// Indexing costs memory in proportion to the values in the body, not
	// to its bytes: admit bodies by their count, so that many large,
	// flat bodies at once wait instead of exhausting memory.
	weight := min(int64(values), h.admitBudget)
	if err := h.admit.Acquire(r.Context(), weight); err != nil {
		h.reject(w, r, name, veil.Errorf(veil.EUNAVAILABLE, "The request was cancelled while waiting; retry later."))
		return
	}
	defer h.admit.Release(weight)
	doc, err := redact.ParseValidated(body, values)
	if err != nil {
		h.reject(w, r, name, veil.Errorf(veil.EMALFORMED, "The body is not a JSON object."))
		return
	}
	id, dup, err := h.Pipeline.Ingest(r.Context(), name, r.Header, body, doc, now)
	if err != nil {
		eventsRejected.WithLabelValues(name, veil.EUNAVAILABLE).Inc()
		writeError(w, r, h.Logger, err)
		return
	}
	outcome := "accepted"
	if dup {
		outcome = "duplicate"
	}
	eventsReceived.WithLabelValues(name, outcome).Inc()
	writeJSON(w, http.StatusOK, hookResponse{EventID: id, Duplicate: dup})
}

// readBody reads at most the configured limit, within bodyReadTimeout; a
// larger body is ETOOLARGE. Before that answer, the rest of the body (up to
// drainBytes more) is read and discarded: ATS clients write the whole body
// before they read, and a server that closes on unread data resets the
// connection, so the sender would see a network error and retry instead
// of a permanent 413. A body larger still is answered at once and the
// connection closed: what it costs the sender to find out is its own.
func (h *hookAPI) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := h.cfg.MaxBodyBytes
	drain := max(drainBytes, 4*limit)
	tooLarge := veil.Errorf(veil.ETOOLARGE, "The body is larger than the limit of %d bytes.", limit)
	if r.ContentLength > limit+drain {
		w.Header().Set("Connection", "close")
		return nil, tooLarge
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= limit {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, veil.Errorf(veil.EINVALID, "The body could not be read in time.")
	}
	if n > limit {
		if m, _ := io.CopyN(io.Discard, r.Body, drain); m == drain {
			w.Header().Set("Connection", "close") // more than we drain: close after the answer
		}
		return nil, tooLarge
	}
	return buf.Bytes(), nil
}

// drainBytes is the least an oversized body is read past the limit, so
// its sender reads the 413 (see readBody).
const drainBytes = 4 << 20

// reject answers err, counts it, and adds it to the minute's aggregated
// rejected audit row for its source and reason.
func (h *hookAPI) reject(w http.ResponseWriter, r *http.Request, source string, err error) {
	code := veil.ErrorCode(err)
	label := source
	if label == "" {
		label = "unknown"
	}
	eventsRejected.WithLabelValues(label, code).Inc()
	h.Logger.Debug("webhook rejected", "source", label, "reason", code)
	h.rejections.add(source, code, h.Now())
	writeError(w, r, h.Logger, err)
}
