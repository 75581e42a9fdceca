package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/redact"
)

// LookupStore reads the events a lookup asks for and audits every answer;
// audit.Store implements it.
type LookupStore interface {
	Event(ctx context.Context, id string) (*veil.Event, error)
	Append(ctx context.Context, entries ...*veil.AuditEntry) error
}

// Lookup is the gated lookup: a consumer, authenticated by its own key,
// asks for more of a stored event for a stated purpose; the lookup policy
// decides, the record is minimised for that consumer's pseudonym key, and
// every answer, released or denied, is audited before it is given.
type Lookup struct {
	Pipeline *Pipeline // prepares the record and gives the running policy set
	Store    LookupStore
	// Key is the master pseudonym key; each consumer's is derived from it.
	Key []byte
}

// Record decides and minimises event id for consumer c and purpose (one
// of c's purposes: the caller checked), audits the release and returns
// the event and the body to answer. A refusal is EFORBIDDEN; any error is
// for Denied.
func (l *Lookup) Record(ctx context.Context, c *veil.Consumer, purpose, id string) (*veil.Event, []byte, error) {
	p := l.Pipeline
	e, err := l.Store.Event(ctx, id)
	if err == nil && e.Upstream != nil {
		if p.Upstream == nil {
			err = veil.Errorf(veil.EUPSTREAM, "No ATS API is configured for this source.")
		} else {
			e.Payload, err = p.Upstream.Fetch(ctx, e)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if p.Policies == nil {
		return nil, nil, veil.Errorf(veil.EFORBIDDEN, "No lookup policy is loaded; nothing is released.")
	}
	ev, err := p.Prepare(e)
	if err != nil {
		return nil, nil, err
	}
	defer ev.Release()
	dec, err := p.Policies.Current().DecideLookup(ctx, c.Name, purpose, e, ev.Normal)
	if errors.Is(err, policy.ErrTimeout) {
		return nil, nil, veil.Errorf(veil.EFORBIDDEN, "The lookup policy ran past policy_timeout; nothing is released.")
	} else if err != nil {
		return nil, nil, veil.Errorf(veil.EFORBIDDEN, "The lookup policy could not decide.")
	}
	if !dec.Allow {
		return nil, nil, veil.Errorf(veil.EFORBIDDEN, "The lookup policy does not allow this purpose for this record.")
	}
	res, err := Project(ev, dec, redact.DestinationKey(l.Key, "lookup:"+c.Name))
	if err != nil || res.LeakPath != "" {
		return nil, nil, veil.Errorf(veil.EFORBIDDEN, "The record would leak a dropped field; nothing is released.")
	}
	row := &veil.AuditEntry{Action: veil.ActionLookup, Actor: c.Name, Source: e.Source, EventType: e.EventType,
		EventID: e.ID, Subject: e.Subject, Outcome: "released", HTTPStatus: 200, FieldsKept: res.Kept,
		FieldsDropped: res.Dropped, Categories: res.Categories, Detail: "purpose=" + purpose}
	if err := l.Store.Append(ctx, row); err != nil {
		return nil, nil, errors.Join(veil.Errorf(veil.EUNAVAILABLE, "The lookup could not be audited; nothing is released."), err)
	}
	return e, res.Body, nil
}

// Denied audits a refused lookup of event id by consumer (empty when no
// key named one) for purpose; both are the caller's text and are written
// only as labels.
func (l *Lookup) Denied(ctx context.Context, consumer, purpose, id string, err error) error {
	code := veil.ErrorCode(err)
	row := &veil.AuditEntry{Action: veil.ActionLookupDenied, Actor: consumer, Outcome: code,
		HTTPStatus: veil.CodeStatus(code), Detail: fmt.Sprintf("purpose=%s", ats.Label(purpose))}
	if code != veil.EUNAUTHORIZED {
		row.EventID = ats.Label(id) // the path is the caller's text
	}
	return l.Store.Append(ctx, row)
}
