package proxy

import (
	"fmt"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
)

// rejections aggregates rejected requests into one audit row per (source,
// reason, minute) with a count, so unauthenticated traffic cannot grow the
// audit log by a row per request. Metrics still count every request.
type rejections struct {
	auth.Minutely[rejectKey, int64]
}

type rejectKey struct{ source, reason string }

// add counts one rejection at now; the first one of a new minute writes
// the rows of the minute before.
func (r *rejections) add(source, reason string, now time.Time) {
	r.Add(now, rejectKey{source, reason}, func(n *int64) { *n++ })
}

func rejectionRows(minute time.Time, counts map[rejectKey]*int64) []*veil.AuditEntry {
	var out []*veil.AuditEntry
	for k, n := range counts {
		actor := k.source
		if actor == "" {
			actor = "unknown"
		}
		out = append(out, &veil.AuditEntry{Time: minute, Action: veil.ActionRejected, Actor: actor, Source: k.source,
			Outcome: "rejected", HTTPStatus: veil.CodeStatus(k.reason), Attempt: int(min(*n, 1<<31-1)),
			Detail: fmt.Sprintf("reason=%s count=%d minute=%s", k.reason, *n, minute.Format("2006-01-02T15:04Z"))})
	}
	return out
}
