package gateway

import (
	"context"
	"slices"
	"strings"

	"github.com/veilhq/veil"
)

// FindStore is what finding events reads; audit.Store implements it.
type FindStore interface {
	FindRefs(ctx context.Context, ref string) ([]string, error)
	JobHashes(sources []string, id string) []string
	Delivery(ctx context.Context, id string) (*veil.Delivery, error)
}

// Find turns what a person knows about an event into an event query:
// any id (an event's, a delivery's, or a candidate's, application's,
// offer's or job's at any source, matched through keyed hashes: the ids
// themselves are never stored), a source in any case.
type Find struct {
	Store  FindStore
	Config *veil.Config
}

// findKinds are the record kinds whose ids lead to a person.
var findKinds = []string{veil.RefCandidate, veil.RefApplication, veil.RefOffer}

// Resolve sets q to select the events id names: the event itself (evt_…),
// a delivery's event (dlv_…), a subject reference's person
// (SOURCE:KIND:ID), or every person and job at any source with that
// record id. Nothing found selects nothing.
func (f *Find) Resolve(ctx context.Context, id string, q *veil.EventQuery) error {
	id = strings.TrimSpace(id)
	switch {
	case id == "":
		return nil
	case strings.HasPrefix(id, "evt_"):
		q.ID = id
		return nil
	case strings.HasPrefix(id, "dlv_"):
		d, err := f.Store.Delivery(ctx, id)
		if veil.ErrorCode(err) == veil.ENOTFOUND {
			q.ByRefs = true // nothing
			return nil
		} else if err != nil {
			return err
		}
		q.ID = d.EventID
		return nil
	}
	q.ByRefs = true
	var refs []string
	if strings.Count(id, ":") >= 2 { // a subject reference
		if err := CheckSubject(f.Config, id); err != nil {
			return err
		}
		refs = append(refs, id)
	} else {
		for _, src := range f.Config.SourceNames() {
			for _, kind := range findKinds {
				refs = append(refs, src+":"+kind+":"+id)
			}
		}
		q.Jobs = f.Store.JobHashes(f.Config.SourceNames(), id)
	}
	for _, ref := range refs {
		hashes, err := f.Store.FindRefs(ctx, ref)
		if err != nil {
			return err
		}
		for _, h := range hashes {
			if !slices.Contains(q.Subjects, h) {
				q.Subjects = append(q.Subjects, h)
			}
		}
	}
	return nil
}

// Source returns the configured source a name means, in any case;
// EINVALID naming the sources for none.
func (f *Find) Source(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", nil
	}
	for _, s := range f.Config.SourceNames() {
		if strings.EqualFold(s, name) {
			return s, nil
		}
	}
	for _, s := range f.Config.Sources { // the vendor's name: its first source
		if strings.EqualFold(s.Vendor, name) {
			return s.Name, nil
		}
	}
	return "", veil.Errorf(veil.EINVALID, "No such source; the sources are %s.", strings.Join(f.Config.SourceNames(), ", "))
}
