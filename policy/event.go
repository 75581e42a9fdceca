package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/veilhq/veil"
)

// eventValue converts a normal event for OPA: its envelope only when no
// policy reads further (cheap, and decisions stay cacheable), in full
// otherwise. Built term by term, with no JSON round trip.
func eventValue(ne *veil.NormalEvent, full bool) ast.Value {
	if ne == nil {
		return ast.NewObject()
	}
	items := [][2]*ast.Term{
		item("schema", ast.StringTerm(ne.Schema)),
		item("type", ast.StringTerm(ne.Type)),
		item("vendor_type", ast.StringTerm(ne.VendorType)),
		item("source", ast.StringTerm(ne.Source)),
		item("vendor", ast.StringTerm(ne.Vendor)),
		item("reconciled", ast.BooleanTerm(ne.Reconciled)),
	}
	if !full {
		return ast.NewObject(items...)
	}
	c, a, j, o := &ne.Candidate, &ne.Application, &ne.Job, &ne.Offer
	items = append(items,
		item("occurred_at", str(ne.OccurredAt)),
		item("candidate", obj(
			item("id", str(c.ID)), item("first_name", str(c.FirstName)), item("last_name", str(c.LastName)),
			item("name", str(c.Name)), item("emails", strs(c.Emails)), item("phones", strs(c.Phones)),
			item("address", obj(item("street", str(c.Address.Street)), item("city", str(c.Address.City)),
				item("region", str(c.Address.Region)), item("postal_code", str(c.Address.PostalCode)),
				item("country", str(c.Address.Country)))),
			item("title", str(c.Title)), item("company", str(c.Company)), item("date_of_birth", str(c.DateOfBirth)),
			item("links", strs(c.Links)))),
		item("application", obj(
			item("id", str(a.ID)), item("status", str(a.Status)), item("applied_at", str(a.AppliedAt)),
			item("stage", ref(a.Stage)), item("previous_stage", ref(a.PreviousStage)), item("source", ref(a.Source)),
			item("rejection", obj(item("reason", str(a.Rejection.Reason)), item("note", str(a.Rejection.Note)))))),
		item("job", obj(
			item("id", str(j.ID)), item("title", str(j.Title)), item("requisition_id", str(j.RequisitionID)),
			item("departments", refList(j.Departments)), item("offices", refList(j.Offices)))),
		item("offer", obj(
			item("id", str(o.ID)), item("status", str(o.Status)), item("sent_at", str(o.SentAt)),
			item("resolved_at", str(o.ResolvedAt)), item("starts_at", str(o.StartsAt)),
			item("compensation", compensation(o.Compensation)))),
	)
	return ast.NewObject(items...)
}

func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(ast.StringTerm(k), v) }

func obj(items ...[2]*ast.Term) *ast.Term { return ast.NewTerm(ast.NewObject(items...)) }

func str(p *string) *ast.Term {
	if p == nil {
		return ast.NullTerm()
	}
	return ast.StringTerm(*p)
}

func strs(ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

func ref(r veil.NormalRef) *ast.Term { return obj(item("id", str(r.ID)), item("name", str(r.Name))) }

func refList(rs []veil.NormalRef) *ast.Term {
	if rs == nil {
		return ast.NullTerm()
	}
	ts := make([]*ast.Term, len(rs))
	for i, r := range rs {
		ts[i] = ref(r)
	}
	return ast.ArrayTerm(ts...)
}

func compensation(c *veil.NormalCompensation) *ast.Term {
	if c == nil {
		return ast.NullTerm()
	}
	amount := ast.NullTerm()
	if c.Amount != nil {
		amount = ast.NumberTerm(*c.Amount)
	}
	return obj(item("amount", amount), item("currency", str(c.Currency)), item("period", str(c.Period)))
}
