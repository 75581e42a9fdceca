package main

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/policy"
)

// processingHTML is the records of processing as the console shows them:
// the same record as `veil report processing`, drawn as HTML.
var processingHTML = template.Must(template.New("processing").Funcs(template.FuncMap{
	"dash":     orDash,
	"join":     strings.Join,
	"personal": personalOnly,
	"pseudo":   func(d processingRecord, p string) bool { return slices.Contains(d.Pseudonymized, p) },
	"day":      func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
}).Parse(`<section id="processing">
<p>Generated {{day .Generated}}. Controller: {{dash .Controller.Name}}; contact: {{dash .Controller.Contact}}; data protection officer: {{dash .Controller.DPO}}; representative: {{dash .Controller.Representative}}.</p>
<p>Veil keeps encrypted payloads for {{.PayloadRetention}} and its audit log for {{.AuditRetention}}. Categories are those the running policies release for {{.Samples}}; "observed" are those the audit log {{if .Since}}since {{day .Since}}{{else}}(all of it){{end}} shows did leave.</p>
{{range .Destinations}}{{$d := .}}<h2 id="pr-{{.Destination}}">{{.Destination}}</h2>
<table><caption>Record of processing: {{.Destination}}</caption><tbody>
<tr><th scope="row">Recipient</th><td>{{dash .Processor.Name}} ({{.Host}})</td></tr>
<tr><th scope="row">Processing agreement</th><td>{{dash .Processor.DPA}}</td></tr>
<tr><th scope="row">Purpose</th><td>{{dash .Processor.Purpose}}</td></tr>
<tr><th scope="row">Legal basis</th><td>{{dash .Processor.LegalBasis}}</td></tr>
<tr><th scope="row">Data subjects and their categories</th><td>{{dash .SubjectsText}}</td></tr>
<tr><th scope="row">Categories of personal data</th><td class="categories">{{dash (join (personal .Categories) ", ")}}</td></tr>
<tr><th scope="row">Observed</th><td>{{dash (join (personal .CategoriesObserved) ", ")}} ({{.Deliveries}} deliveries)</td></tr>
<tr><th scope="row">Country</th><td>{{dash .Country}}</td></tr>
<tr><th scope="row">Transfer safeguard</th><td>{{dash .TransferSafeguard}}</td></tr>
<tr><th scope="row">Policy</th><td><code>{{.Policy}}</code></td></tr>
<tr><th scope="row">Sources</th><td>{{join .Sources ", "}}</td></tr>
<tr><th scope="row">Events</th><td>{{dash (join .EventTypes ", ")}}</td></tr>
<tr><th scope="row">Fields it receives ({{len .Fields}})</th><td>{{range $i, $p := .Fields}}{{if $i}}, {{end}}<code>{{$p}}</code>{{if pseudo $d $p}} (pseudonymised){{end}}{{end}}</td></tr>
</tbody></table>{{end}}
<h2>Security measures (Art. 30(1)(g))</h2><ul>{{range .SecurityMeasures}}<li>{{.}}</li>{{end}}</ul>
{{if .Consumers}}<h2>Lookup consumers</h2><table><caption>Consumers of the gated lookup</caption><thead><tr><th scope="col">Consumer</th><th scope="col">Purposes</th><th scope="col">Categories of personal data</th><th scope="col">Observed</th><th scope="col">Lookups</th></tr></thead><tbody>
{{range .Consumers}}<tr><td>{{.Consumer}}</td><td>{{if .Revoked}}(revoked){{else}}{{dash (join .Purposes ", ")}}{{end}}</td><td>{{dash (join (personal .Categories) ", ")}}</td><td>{{dash (join (personal .CategoriesObserved) ", ")}}</td><td>{{.Lookups}}</td></tr>{{end}}</tbody></table>{{end}}
</section>`))

// consoleProcessing gives the console the records of processing under the
// running policy set, over the audit log since since (zero: all of it).
func consoleProcessing(cfg *veil.Config, current func() *policy.Set, st *audit.Store) func(ctx context.Context, since time.Time) (template.HTML, error) {
	return func(ctx context.Context, since time.Time) (template.HTML, error) {
		set := current()
		if set == nil {
			return "", errors.New("no policy set is running")
		}
		rep, err := collectProcessing(ctx, cfg, set, st, veil.Samples(), since, time.Now())
		if err != nil {
			return "", err
		}
		rep.Samples = "the sample payloads compiled into veil"
		var b bytes.Buffer
		if err := processingHTML.Execute(&b, rep); err != nil {
			return "", err
		}
		return template.HTML(b.String()), nil
	}
}
