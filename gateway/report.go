package gateway

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// The access report as a person reads it: Art. 15(1)(a)–(h) and 15(2)
// item by item, categories in words, no field paths and no keyed hashes
// (the JSON form has those, for the DPO's tools). Markdown for a letter,
// HTML that prints cleanly.

// reportView is what both renderings show.
type reportView struct {
	R          veil.SubjectReport
	Controller string
	Categories []string // in words
	Special    bool
	Recipients []string
	Safeguards []string
	Purposes   []string
	Holdings   []string
	Erasure    string
	Transfers  []transferView
	Lookups    []transferView
}

type transferView struct {
	Time, Recipient, Event, Categories string
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "not configured"
	}
	return s
}

func view(r veil.SubjectReport) reportView {
	v := reportView{R: r}
	c := r.Controller
	v.Controller = dash(c.Name)
	if c.Contact != "" {
		v.Controller += ", " + c.Contact
	}
	if c.DPO != "" {
		v.Controller += "; data protection officer: " + c.DPO
	}
	if c.Representative != "" {
		v.Controller += "; representative in the EU: " + c.Representative
	}
	for _, cat := range r.Categories {
		w := cat.Name
		if cat.Special {
			v.Special = true
		}
		v.Categories = append(v.Categories, fmt.Sprintf("%s (%d %s)", w, cat.Transfers, plural(cat.Transfers, "transfer")))
	}
	for _, rc := range r.Recipients {
		s := rc.Name
		if rc.Processor != "" {
			s += " — processor " + rc.Processor
			if rc.DPA != "" {
				s += " (agreement " + rc.DPA + ")"
			} else {
				s += " (no processing agreement on file)"
			}
		}
		if rc.Kind != "destination" {
			s += " — " + rc.Kind
		}
		if rc.LegalBasis != "" {
			s += "; legal basis: " + rc.LegalBasis
		}
		s += fmt.Sprintf("; %d %s, %s to %s", rc.Transfers, plural(rc.Transfers, "transfer"), day(rc.First), day(rc.Last))
		v.Recipients = append(v.Recipients, s)
		if rc.Country != "" {
			v.Safeguards = append(v.Safeguards, fmt.Sprintf("%s processes it in %s; safeguard: %s", rc.Name, rc.Country, dash(rc.Safeguard)))
		}
	}
	for _, p := range r.Purposes {
		v.Purposes = append(v.Purposes, fmt.Sprintf("%s: %s (legal basis: %s)", p.Recipient, dash(p.Purpose), dash(p.LegalBasis)))
	}
	h := r.Holdings
	if h.Payloads == 0 && h.OutboundBodies == 0 {
		v.Holdings = append(v.Holdings, "No payload of yours can be read any more: none is held, or it was erased or purged.")
	} else {
		v.Holdings = append(v.Holdings, fmt.Sprintf("%d %s received about you, encrypted under a key of yours, and %d outbound %s, each kept %s after it arrived (the last until %s).",
			h.Payloads, plural(h.Payloads, "record"), h.OutboundBodies, plural(h.OutboundBodies, "message"), h.PayloadTTL, day(deref(h.PayloadsUntil))))
	}
	v.Holdings = append(v.Holdings, fmt.Sprintf("%d %s of what was done with your data (which fields and kinds of data left, to whom; no value of yours), kept %s (the oldest until %s).",
		h.AuditRows, plural(h.AuditRows, "log entry", "log entries"), h.AuditTTL, day(deref(h.AuditUntil))))
	if r.Erased != nil {
		v.Erasure = "Your data was erased on " + day(*r.Erased) + ": what Veil held of you can no longer be decrypted, and Veil passes nothing more of yours on."
		if r.Restored != nil {
			v.Erasure += " On " + day(*r.Restored) + " the erasure was lifted (new consent); records from before it stay unreadable."
		}
	}
	for _, t := range r.Transfers {
		v.Transfers = append(v.Transfers, tview(t))
	}
	for _, t := range r.Lookups {
		v.Lookups = append(v.Lookups, tview(t))
	}
	return v
}

func tview(t veil.Transfer) transferView {
	var words []string
	for _, c := range t.Categories {
		words = append(words, veil.CategoryWords(c))
	}
	if len(words) == 0 {
		words = []string{"no personal data"}
	}
	return transferView{Time: t.Time.UTC().Format("2006-01-02 15:04 UTC"), Recipient: t.Recipient, Event: t.EventType,
		Categories: strings.Join(words, ", ")}
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 January 2006")
}

func plural(n int, one string, many ...string) string {
	if n == 1 {
		return one
	}
	if len(many) > 0 {
		return many[0]
	}
	return one + "s"
}

// WriteReportMarkdown writes the report as Markdown a DPO can send.
func WriteReportMarkdown(w io.Writer, r veil.SubjectReport) {
	v := view(r)
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	list := func(items []string, none string) {
		if len(items) == 0 {
			p("- %s\n", none)
		}
		for _, it := range items {
			p("- %s\n", it)
		}
	}
	p("# Access to your personal data (GDPR Art. 15)\n\n")
	p("About the record %s, as held by Veil, the privacy gateway of the controller: %s. Generated %s.\n\n",
		r.Reference, v.Controller, day(r.Generated))
	if v.Erasure != "" {
		p("%s\n\n", v.Erasure)
	}
	p("Veil received %d %s about you and linked %d %s of yours (candidate, applications, offers).\n\n", r.Events,
		plural(r.Events, "event"), r.References, plural(r.References, "record"))
	p("## (a) Purposes and legal basis\n\n")
	list(v.Purposes, "Your data was not passed on.")
	p("\n## (b) Categories of personal data passed on\n\n")
	list(v.Categories, "None.")
	if v.Special {
		p("\nSome of these are special categories of data (Art. 9), marked as such above.\n")
	}
	p("\n## (c) Recipients\n\n")
	list(v.Recipients, "None.")
	p("\n## (d) What Veil keeps, and for how long\n\n")
	list(v.Holdings, "")
	p("\n## (e) Your rights\n\n")
	list(r.Rights, "")
	p("\n## (f) Complaint\n\n%s\n", r.Complaint)
	p("\n## (g) Source of the data\n\n%s\n", dash(r.DataSource))
	p("\n## (h) Automated decision-making\n\n%s\n", r.Automated)
	p("\n## Art. 15(2): transfers outside the EEA\n\n")
	list(v.Safeguards, "No recipient's country is configured; ask the controller.")
	table := func(title string, ts []transferView) {
		p("\n## %s (%d)\n\n", title, len(ts))
		if len(ts) == 0 {
			p("None.\n")
			return
		}
		p("| when | recipient | event | what it received |\n| --- | --- | --- | --- |\n")
		for _, t := range ts {
			p("| %s | %s | %s | %s |\n", t.Time, t.Recipient, t.Event, t.Categories)
		}
	}
	table("Every transfer to a recipient", v.Transfers)
	table("Every lookup by a system that fetched more", v.Lookups)
	p("\nA copy of the data Veil still holds of you (Art. 15(3)) is provided separately.\n")
}

var reportHTML = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Access to your personal data</title>
<style>
body { font: 11pt/1.45 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; color: #111; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; font-size: 10pt; } th, td { border: 1px solid #999; padding: .25rem .4rem; text-align: left; vertical-align: top; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
</style></head><body>
<h1>Access to your personal data (GDPR Art. 15)</h1>
<p>About the record {{.R.Reference}}, as held by Veil, the privacy gateway of the controller: {{.Controller}}. Generated {{.R.Generated.Format "2 January 2006"}}.</p>
{{with .Erasure}}<p><strong>{{.}}</strong></p>{{end}}
<p>Veil received {{.R.Events}} events about you and linked {{.R.References}} records of yours (candidate, applications, offers).</p>
<h2>(a) Purposes and legal basis</h2><ul>{{range .Purposes}}<li>{{.}}</li>{{else}}<li>Your data was not passed on.</li>{{end}}</ul>
<h2>(b) Categories of personal data passed on</h2><ul>{{range .Categories}}<li>{{.}}</li>{{else}}<li>None.</li>{{end}}</ul>
{{if .Special}}<p>Some of these are special categories of data (Art. 9), marked as such above.</p>{{end}}
<h2>(c) Recipients</h2><ul>{{range .Recipients}}<li>{{.}}</li>{{else}}<li>None.</li>{{end}}</ul>
<h2>(d) What Veil keeps, and for how long</h2><ul>{{range .Holdings}}<li>{{.}}</li>{{end}}</ul>
<h2>(e) Your rights</h2><ul>{{range .R.Rights}}<li>{{.}}</li>{{end}}</ul>
<h2>(f) Complaint</h2><p>{{.R.Complaint}}</p>
<h2>(g) Source of the data</h2><p>{{.R.DataSource}}</p>
<h2>(h) Automated decision-making</h2><p>{{.R.Automated}}</p>
<h2>Art. 15(2): transfers outside the EEA</h2><ul>{{range .Safeguards}}<li>{{.}}</li>{{else}}<li>No recipient's country is configured; ask the controller.</li>{{end}}</ul>
<h2>Every transfer to a recipient</h2>
<table><caption>{{len .Transfers}} transfers</caption><thead><tr><th scope="col">When</th><th scope="col">Recipient</th><th scope="col">Event</th><th scope="col">What it received</th></tr></thead><tbody>
{{range .Transfers}}<tr><td>{{.Time}}</td><td>{{.Recipient}}</td><td>{{.Event}}</td><td>{{.Categories}}</td></tr>{{end}}</tbody></table>
<h2>Every lookup by a system that fetched more</h2>
<table><caption>{{len .Lookups}} lookups</caption><thead><tr><th scope="col">When</th><th scope="col">Recipient</th><th scope="col">Event</th><th scope="col">What it received</th></tr></thead><tbody>
{{range .Lookups}}<tr><td>{{.Time}}</td><td>{{.Recipient}}</td><td>{{.Event}}</td><td>{{.Categories}}</td></tr>{{end}}</tbody></table>
<p>A copy of the data Veil still holds of you (Art. 15(3)) is provided separately.</p>
</body></html>
`))

// WriteReportHTML writes the report as a page that prints cleanly.
func WriteReportHTML(w io.Writer, r veil.SubjectReport) error {
	return reportHTML.Execute(w, view(r))
}
