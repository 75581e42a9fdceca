package gateway

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// RecoveryStore is what recovery reads and changes; audit.Store implements
// it.
type RecoveryStore interface {
	PauseDestination(ctx context.Context, destination, actor, reason string) error
	ResumeDestination(ctx context.Context, destination, actor string) error
	Paused(ctx context.Context) ([]veil.Pause, error)
	DeadLetters(ctx context.Context, q veil.DeadQuery) (veil.DeadPage, error)
}

// Recovery is what RecOps does when deliveries fail: read the dead-letter
// inbox, replay what matches a filter, pause and resume a destination.
type Recovery struct {
	Store  RecoveryStore
	Config *veil.Config
	// Replay re-decides one dead delivery and queues it again (the
	// proxy's, for now), audited with actor.
	Replay func(ctx context.Context, id, actor string) (*veil.Delivery, error)
	// Resumed, when set, is told a destination was resumed (wake the
	// deliverer).
	Resumed func()
}

// MaxBulkReplay bounds one "replay all matching": the ids are read first,
// so deliveries that die again meanwhile are not replayed twice; more
// matching ones wait for the next request, and the answer says so.
const MaxBulkReplay = 10_000

// BulkReplay is what a "replay all matching" did.
type BulkReplay struct {
	Matched  int64 `json:"matched"`  // dead deliveries the filter matched
	Replayed int   `json:"replayed"` // queued again
	// Skipped counts those that cannot be replayed (payload past
	// retention, subject erased); Refused those a replay refused, with
	// its reasons (another replay got there first, destination removed).
	Skipped int      `json:"skipped"`
	Refused int      `json:"refused"`
	Reasons []string `json:"reasons,omitempty"`
	// Left counts matching deliveries past MaxBulkReplay, for another run.
	Left int64 `json:"left"`
}

func (r *Recovery) checkDestination(name string) error {
	if r.Config.Destination(name) == nil {
		return veil.Errorf(veil.EINVALID, "Unknown destination; destinations are %s.", strings.Join(r.Config.DestinationNames(), ", "))
	}
	return nil
}

// ParseDeadQuery reads a dead-letter filter from a query string or form:
// destination, since, until, reason, http_status (and the cursors before
// and after). The console and the admin API take the same.
func ParseDeadQuery(v url.Values) (veil.DeadQuery, error) {
	q := veil.DeadQuery{Destination: v.Get("destination"), Reason: v.Get("reason"), Before: v.Get("before"), After: v.Get("after")}
	var err error
	if q.Since, err = veil.ParseTime("since", v.Get("since")); err != nil {
		return q, err
	}
	if q.Until, err = veil.ParseTime("until", v.Get("until")); err != nil {
		return q, err
	}
	if s := v.Get("http_status"); s != "" {
		if q.HTTPStatus, err = strconv.Atoi(s); err != nil {
			return q, veil.Errorf(veil.EINVALID, "http_status must be a number.")
		}
	}
	return q, nil
}

// CheckDead refuses a query naming an unknown destination or a status
// that is none (the store refuses an unknown reason).
func (r *Recovery) CheckDead(q veil.DeadQuery) error {
	if q.Destination != "" {
		if err := r.checkDestination(q.Destination); err != nil {
			return err
		}
	}
	if q.HTTPStatus != 0 && (q.HTTPStatus < 100 || q.HTTPStatus > 599) {
		return veil.Errorf(veil.EINVALID, "An HTTP status is a number from 100 to 599.")
	}
	return nil
}

// Dead returns a page of the dead-letter inbox.
func (r *Recovery) Dead(ctx context.Context, q veil.DeadQuery) (veil.DeadPage, error) {
	if err := r.CheckDead(q); err != nil {
		return veil.DeadPage{}, err
	}
	return r.Store.DeadLetters(ctx, q)
}

// ReplayMatching replays every replayable dead delivery q matches (its
// cursors and limit are ignored), at most MaxBulkReplay.
func (r *Recovery) ReplayMatching(ctx context.Context, q veil.DeadQuery, actor string) (BulkReplay, error) {
	if err := r.CheckDead(q); err != nil {
		return BulkReplay{}, err
	}
	q.Before, q.After, q.Limit = "", "", MaxBulkReplay
	page, err := r.Store.DeadLetters(ctx, q)
	if err != nil {
		return BulkReplay{}, err
	}
	out := BulkReplay{Matched: page.Total, Left: max(0, page.Total-int64(len(page.Letters)))}
	for _, d := range page.Letters {
		if !d.Replayable {
			out.Skipped++
			continue
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if _, err := r.Replay(ctx, d.ID, actor); err != nil {
			if veil.ErrorCode(err) == veil.EINTERNAL {
				return out, err
			}
			out.Refused++
			if m := veil.ErrorMessage(err); !slices.Contains(out.Reasons, m) {
				out.Reasons = append(out.Reasons, m)
			}
			continue
		}
		out.Replayed++
	}
	return out, nil
}

// Summary is a BulkReplay in a sentence.
func (b BulkReplay) Summary() string {
	msg := fmt.Sprintf("%d of %d matching replayed.", b.Replayed, b.Matched)
	if b.Skipped > 0 {
		msg += fmt.Sprintf(" %d cannot be (payload past retention or subject erased).", b.Skipped)
	}
	if b.Refused > 0 {
		msg += fmt.Sprintf(" %d refused: %s", b.Refused, strings.Join(b.Reasons, " "))
	}
	if b.Left > 0 {
		msg += fmt.Sprintf(" %d more match: replay again.", b.Left)
	}
	return msg
}

// Pause holds a destination's deliveries back until Resume; a reason is
// required. The retention rule does not stop: a delivery still waiting
// when its event's payload passes retention.payload goes dead (reason
// expired) with its audit row, as it would unpaused.
func (r *Recovery) Pause(ctx context.Context, destination, actor, reason string) error {
	if err := r.checkDestination(destination); err != nil {
		return err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return veil.Errorf(veil.EINVALID, "Say why the destination is paused.")
	}
	if len(reason) > 500 {
		return veil.Errorf(veil.EINVALID, "Keep the reason under 500 characters.")
	}
	return r.Store.PauseDestination(ctx, destination, actor, reason)
}

// Resume lets a paused destination's deliveries go.
func (r *Recovery) Resume(ctx context.Context, destination, actor string) error {
	if err := r.checkDestination(destination); err != nil {
		return err
	}
	if err := r.Store.ResumeDestination(ctx, destination, actor); err != nil {
		return err
	}
	if r.Resumed != nil {
		r.Resumed()
	}
	return nil
}

// Destination is a configured destination's state for an operator.
type Destination struct {
	Name   string      `json:"name"`
	Paused *veil.Pause `json:"paused,omitempty"`
	// ExpiresAfter is retention.payload: how long a delivery may wait
	// (paused or not) before its payload expires and it goes dead.
	ExpiresAfter time.Duration `json:"-"`
}

// Destinations lists the configured destinations with their pauses.
func (r *Recovery) Destinations(ctx context.Context) ([]Destination, error) {
	paused, err := r.Store.Paused(ctx)
	if err != nil {
		return nil, err
	}
	var out []Destination
	for _, name := range r.Config.DestinationNames() {
		d := Destination{Name: name, ExpiresAfter: time.Duration(r.Config.Retention.Payload)}
		for i := range paused {
			if paused[i].Destination == name {
				d.Paused = &paused[i]
			}
		}
		out = append(out, d)
	}
	return out, nil
}
