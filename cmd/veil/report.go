package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/gateway"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/redact"
)

// processingReport is the records of processing (GDPR Art. 30(1)): for
// each destination and each lookup consumer, who receives which categories
// of personal data about whom, for what, on which legal basis, and how long
// Veil keeps it. It is collected from the config, the policies evaluated
// on sample payloads, and what the audit log shows actually left.
type processingReport struct {
	Generated time.Time `json:"generated"`
	// Controller is Art. 30(1)(a): the controller, its DPO and
	// representative.
	Controller       veil.ControllerConfig `json:"controller"`
	Since            *time.Time            `json:"observed_since,omitempty"` // nil: the whole audit log
	Samples          string                `json:"samples"`                  // where the sample payloads came from
	PayloadRetention string                `json:"payload_retention"`
	AuditRetention   string                `json:"audit_retention"`
	// SecurityMeasures is Art. 30(1)(g): what Veil does itself, then the
	// controller's own from the config.
	SecurityMeasures []string           `json:"security_measures"`
	Destinations     []processingRecord `json:"destinations"`
	Consumers        []consumerRecord   `json:"lookup_consumers"`
}

type processingRecord struct {
	Destination string         `json:"destination"`
	Host        string         `json:"host"`
	Processor   veil.Processor `json:"processor"`
	// Country and TransferSafeguard are Art. 30(1)(e).
	Country           string   `json:"country"`
	TransferSafeguard string   `json:"transfer_safeguard"`
	Policy            string   `json:"policy"`
	Sources           []string `json:"sources"`
	// DataSubjects are the kinds of people whose data it receives
	// (fideslang data subjects), and SubjectCategories the categories of
	// each.
	DataSubjects      []string            `json:"data_subjects"`
	SubjectCategories map[string][]string `json:"categories_by_data_subject"`
	EventTypes        []string            `json:"event_types"`
	// Categories the policies release for the samples, and those the audit
	// log shows did leave over the period.
	Categories         []string `json:"categories"`
	CategoriesObserved []string `json:"categories_observed"`
	Deliveries         int      `json:"deliveries_observed"`
	Fields             []string `json:"fields"`
	Pseudonymized      []string `json:"pseudonymized"`
}

type consumerRecord struct {
	Consumer           string   `json:"consumer"`
	Purposes           []string `json:"purposes"`
	Revoked            bool     `json:"revoked"`
	DataSubjects       []string `json:"data_subjects"`
	Categories         []string `json:"categories"`
	CategoriesObserved []string `json:"categories_observed"`
	Lookups            int      `json:"lookups_observed"`
}

// runReportProcessing prints the records-of-processing report.
func runReportProcessing(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fset, configPath := c.flags()
	format := fset.String("format", "md", "md or json")
	samples := fset.String("samples", "", "a folder of sample payloads in vendor sub-folders, evaluated with the policies (default: the samples compiled into veil)")
	since := fset.String("since", "", "what left since this time (RFC 3339 or YYYY-MM-DD; default: the whole audit log)")
	pos, err := c.parse(fset, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 || (*format != "md" && *format != "json") {
		return c.usage(fset, stderr, "the format is md or json, and there are no arguments")
	}
	from, err := parseTime("since", *since)
	if err != nil {
		return c.usage(fset, stderr, err.Error())
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	set, err := loadPolicies(ctx, cfg, cfg.Policies)
	if err != nil {
		return err
	}
	st, err := openStore(cfg, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	fsys, where := veil.Samples(), "the sample payloads compiled into veil"
	if *samples != "" {
		if info, err := os.Stat(*samples); err != nil || !info.IsDir() {
			return c.usage(fset, stderr, fmt.Sprintf("--samples %s is not a folder", *samples))
		}
		fsys, where = os.DirFS(*samples), *samples
	}
	rep, err := collectProcessing(ctx, cfg, set, st, fsys, from, time.Now())
	rep.Samples = where
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	renderProcessing(stdout, rep)
	return nil
}

// collectProcessing builds the report.
func collectProcessing(ctx context.Context, cfg *veil.Config, set *policy.Set, st *audit.Store, samples fs.FS, since, now time.Time) (*processingReport, error) {
	rep := &processingReport{Generated: now.UTC(), Controller: cfg.Controller, PayloadRetention: humanDuration(time.Duration(cfg.Retention.Payload)),
		AuditRetention:   humanDuration(time.Duration(cfg.Retention.Audit)),
		SecurityMeasures: append(veilMeasures(cfg), cfg.SecurityMeasures...)}
	if !since.IsZero() {
		rep.Since = &since
	}
	type agg struct{ types, cats, observed, fields, pseudo, subjects map[string]bool }
	newAgg := func() *agg {
		return &agg{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}}
	}
	bySubject := map[string]map[string]map[string]bool{} // destination -> data subject -> categories
	dests := map[string]*agg{}
	consumers := map[string]*agg{}
	deliveries, lookups := map[string]int{}, map[string]int{}
	targets := proxyTargets(cfg)
	for _, t := range targets {
		dests[t.Name] = newAgg()
	}
	cs, err := st.Consumers(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if consumers[c.Name] == nil {
			consumers[c.Name] = newAgg()
		}
	}
	// What the policies release for the samples…
	{
		headers := sampleHeadersFS(samples)
		err = fs.WalkDir(samples, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") || filepath.Base(path) == "headers.json" {
				return err
			}
			src := sourceForVendor(cfg, sampleVendors[filepath.Base(filepath.Dir(path))])
			if src == nil {
				return nil
			}
			body, err := fs.ReadFile(samples, path)
			if err != nil {
				return err
			}
			h := headers[filepath.ToSlash(path)]
			for _, t := range targets {
				if !slices.Contains(t.Sources, src.Name) {
					continue
				}
				dl, err := decideFile(ctx, set, src, t, body, h)
				if err != nil {
					return err
				}
				if dl.Status == veil.DeliveryPending || dl.Status == veil.DeliveryHeld {
					a := dests[t.Name]
					a.types[dl.Event.Type] = true
					addAll(a.cats, dl.Categories)
					addAll(a.fields, dl.FieldsKept)
					addAll(a.fields, dl.Pseudonymized)
					addAll(a.pseudo, dl.Pseudonymized)
					for _, f := range append(slices.Clone(dl.FieldsKept), dl.Pseudonymized...) {
						c := dl.categoryOf(f)
						if c == "" || !veil.Personal(c) {
							continue
						}
						who := dataSubject(f)
						if bySubject[t.Name] == nil {
							bySubject[t.Name] = map[string]map[string]bool{}
						}
						if bySubject[t.Name][who] == nil {
							bySubject[t.Name][who] = map[string]bool{}
						}
						bySubject[t.Name][who][c] = true
					}
				}
			}
			for _, c := range cs {
				for _, purpose := range c.Purposes {
					cats, err := lookupCategories(ctx, set, src, body, h, c.Name, purpose)
					if err != nil {
						return err
					}
					addAll(consumers[c.Name].cats, cats)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// …and what the audit log shows did leave.
	err = st.Export(ctx, veil.AuditFilter{Since: since, Actions: []string{veil.ActionDelivered, veil.ActionLookup}}, func(e *veil.AuditEntry) error {
		switch e.Action {
		case veil.ActionDelivered:
			if a := dests[e.Destination]; a != nil {
				addAll(a.observed, e.Categories)
				deliveries[e.Destination]++
			}
		case veil.ActionLookup:
			a := consumers[e.Actor]
			if a == nil {
				a = newAgg()
				consumers[e.Actor] = a
			}
			addAll(a.observed, e.Categories)
			lookups[e.Actor]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		host := t.URL
		if u, err := url.Parse(t.URL); err == nil {
			host = u.Hostname()
		}
		a := dests[t.Name]
		subs := map[string][]string{}
		for who, cats := range bySubject[t.Name] {
			subs[who] = sortedKeys(cats)
		}
		who := sortedKeys(bySubject[t.Name])
		if who == nil {
			who = []string{}
		}
		rep.Destinations = append(rep.Destinations, processingRecord{Destination: t.Name, Host: host, Processor: t.Processor,
			Country: t.Country, TransferSafeguard: t.TransferSafeguard,
			Policy: t.Policy, Sources: t.Sources, DataSubjects: who, SubjectCategories: subs, EventTypes: sortedKeys(a.types),
			Categories: sortedKeys(a.cats), CategoriesObserved: sortedKeys(a.observed), Deliveries: deliveries[t.Name],
			Fields: sortedKeys(a.fields), Pseudonymized: sortedKeys(a.pseudo)})
	}
	for _, name := range sortedKeys(consumers) {
		a := consumers[name]
		r := consumerRecord{Consumer: name, DataSubjects: []string{"job_applicant"}, Categories: sortedKeys(a.cats),
			CategoriesObserved: sortedKeys(a.observed), Lookups: lookups[name], Purposes: []string{}}
		for _, c := range cs {
			if c.Name == name && !c.Revoked {
				r.Purposes = c.Purposes
			}
		}
		r.Revoked = len(r.Purposes) == 0
		rep.Consumers = append(rep.Consumers, r)
	}
	return rep, nil
}

// lookupCategories is what the lookup policy releases of a sample to a
// consumer for a purpose.
func lookupCategories(ctx context.Context, set *policy.Set, src *veil.Source, body []byte, h map[string][]string, consumer, purpose string) ([]string, error) {
	ev, err := gateway.NewEvent(src, h, body, time.Now())
	if err != nil {
		return nil, err
	}
	defer ev.Release()
	dec, err := set.DecideLookup(ctx, consumer, purpose, ev.Event, ev.Normal)
	if err != nil || !dec.Allow {
		return nil, err
	}
	res, err := gateway.Project(ev, dec, redact.DestinationKey(make([]byte, 32), "lookup:"+consumer))
	if err != nil || res.LeakPath != "" {
		return nil, err
	}
	return res.Categories, nil
}

// dataSubject says whose data a field is (fideslang data subjects): the
// candidate's, or that of the customer's staff (recruiters, interviewers,
// approvers), or of an emergency contact.
func dataSubject(path string) string {
	p := strings.ToLower(path)
	for _, w := range []string{"emergency"} {
		if strings.Contains(p, w) {
			return "next_of_kin"
		}
	}
	for _, w := range []string{"recruiter", "coordinator", "interviewer", "hiring_team", "hiringteam", "credited_to", "creditedtouser",
		"author", "approver", "moved_by", "created_by", "manager", "referrer", "prospect_owner", "sourcer", "owner", "follower", "user_id"} {
		if strings.Contains(p, w) {
			return "employee"
		}
	}
	return "job_applicant"
}

// veilMeasures are the technical measures Veil takes itself (Art. 32),
// for Art. 30(1)(g).
func veilMeasures(cfg *veil.Config) []string {
	return []string{
		"Encryption at rest: every payload and outbound body sealed with AES-256-GCM under a data key of its person, wrapped by the vault key; erasure deletes the keys (crypto-shredding)",
		"Data minimisation: each destination receives only the fields its policy keeps (record ids by default); a leak guard blocks a delivery in which a dropped personal value still appears",
		"Pseudonymisation: keyed HMAC-SHA256 pseudonyms, a key per destination, re-salted when a person's erasure is lifted",
		"Integrity and accountability: a hash-chained audit log of every receipt, decision, delivery, lookup and erasure, naming fields and categories, never values",
		"Retention: payloads " + humanDuration(time.Duration(cfg.Retention.Payload)) + ", audit rows " + humanDuration(time.Duration(cfg.Retention.Audit)) + ", applied every " + humanDuration(time.Duration(cfg.Retention.Every)),
		"Authenticity: inbound webhooks verified by their vendor's signature before they are parsed; outbound deliveries signed (Standard Webhooks)",
		"Access control: admin and auditor tokens compared in constant time, failed credentials throttled per address and audited; policies sandboxed (no network, runtime or clock built-ins) and bounded in time",
		"Network: deliveries refused at dial time to private, loopback, link-local and metadata addresses (SSRF guard)",
	}
}

// renderProcessing writes the report as Markdown.
func renderProcessing(w io.Writer, r *processingReport) {
	fmt.Fprintf(w, "# Records of processing (GDPR Art. 30) — generated by veil on %s\n\n", r.Generated.Format(time.DateOnly))
	c := r.Controller
	fmt.Fprintf(w, "Controller: %s; contact: %s; data protection officer: %s; representative: %s.\n\n", orDash(c.Name), orDash(c.Contact),
		orDash(c.DPO), orDash(c.Representative))
	fmt.Fprintf(w, "Veil keeps encrypted payloads for %s and its audit log for %s. Policies evaluated on %s.\n", r.PayloadRetention, r.AuditRetention, r.Samples)
	observed := "the whole audit log"
	if r.Since != nil {
		observed = "the audit log since " + r.Since.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Categories are those the policies release for the sample payloads; \"observed\" are those %s shows did leave.\n", observed)
	for _, d := range r.Destinations {
		fmt.Fprintf(w, "\n## %s\n\n| | |\n| --- | --- |\n", d.Destination)
		fmt.Fprintf(w, "| recipient | %s (%s) |\n| processing agreement | %s |\n| purpose | %s |\n| legal basis | %s |\n",
			orDash(d.Processor.Name), d.Host, orDash(d.Processor.DPA), orDash(d.Processor.Purpose), orDash(d.Processor.LegalBasis))
		fmt.Fprintf(w, "| data subjects and their categories | %s |\n| categories of personal data | %s |\n| observed | %s (%d deliveries) |\n",
			orDash(d.SubjectsText()), orDash(strings.Join(personalOnly(d.Categories), ", ")),
			orDash(strings.Join(personalOnly(d.CategoriesObserved), ", ")), d.Deliveries)
		fmt.Fprintf(w, "| country | %s |\n| transfer safeguard | %s |\n", orDash(d.Country), orDash(d.TransferSafeguard))
		fmt.Fprintf(w, "| policy | `%s` |\n| sources | %s |\n| events | %s |\n| retention in Veil | payloads %s, audit log %s |\n\n",
			d.Policy, strings.Join(d.Sources, ", "), orDash(strings.Join(d.EventTypes, ", ")), r.PayloadRetention, r.AuditRetention)
		fmt.Fprintf(w, "Fields it receives (%d):\n\n", len(d.Fields))
		for _, p := range d.Fields {
			mark := ""
			if slices.Contains(d.Pseudonymized, p) {
				mark = " (pseudonymised)"
			}
			fmt.Fprintf(w, "- `%s`%s\n", p, mark)
		}
	}
	fmt.Fprintf(w, "\n## Security measures (Art. 30(1)(g))\n\n")
	for _, m := range r.SecurityMeasures {
		fmt.Fprintf(w, "- %s\n", m)
	}
	if len(r.Consumers) > 0 {
		fmt.Fprintf(w, "\n## Lookup consumers\n\n| consumer | purposes | categories of personal data | observed | lookups |\n| --- | --- | --- | --- | --- |\n")
		for _, c := range r.Consumers {
			purposes := strings.Join(c.Purposes, ", ")
			if c.Revoked {
				purposes = "(revoked)"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %d |\n", c.Consumer, orDash(purposes), orDash(strings.Join(personalOnly(c.Categories), ", ")),
				orDash(strings.Join(personalOnly(c.CategoriesObserved), ", ")), c.Lookups)
		}
	}
}

// SubjectsText (exported for the HTML template) lists the kinds of people the destination receives data
// about, each with its categories ("candidate: user.name, …; employee: …").
func (d processingRecord) SubjectsText() string {
	var out []string
	for _, who := range d.DataSubjects {
		out = append(out, who+": "+strings.Join(d.SubjectCategories[who], ", "))
	}
	return strings.Join(out, "; ")
}

// personalOnly drops system categories: Art. 30 lists personal data.
func personalOnly(cats []string) []string {
	var out []string
	for _, c := range cats {
		if veil.Personal(c) {
			out = append(out, c)
		}
	}
	return out
}

func addAll(set map[string]bool, items []string) {
	for _, s := range items {
		set[s] = true
	}
}

// humanDuration writes a retention period as a person would: "72 hours",
// "365 days", "5 minutes" (days from a week up).
func humanDuration(d time.Duration) string {
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return fmt.Sprintf("%d %ss", n, name)
	}
	switch {
	case d >= 7*24*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return unit(int64(d/time.Second), "second")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
