package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/gateway"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/redact"
)

const benchDestinations = `
destinations:
  - {name: slack-hiring, url: "https://slack.example/x", sources: [greenhouse], policy: veil.destinations.slack_hiring}
  - {name: bi-warehouse, url: "https://bi.example/x", sources: [greenhouse], policy: veil.destinations.bi_events}
  - name: hris-onboarding
    url: "https://hris.example/x"
    sources: [greenhouse]
    policy: veil.destinations.hris_onboarding
    processor: {name: HRIS, dpa: DPA-1}
`

// BenchmarkDecide: one ~6 KB Greenhouse hire, decided and projected for 3
// destinations as Veil does it: parse once, convert for OPA once, one
// prepared query per destination, gjson projection and the leak guard.
func BenchmarkDecide(b *testing.B) {
	var body []byte
	var header http.Header // as Greenhouse sent it, so the dedup key is its Greenhouse-Event-ID
	for _, s := range loadSamples(b) {
		if s.file == "greenhouse/hire_candidate.json" {
			body, header = s.body, s.header
		}
	}
	if body == nil {
		b.Fatal("sample greenhouse/hire_candidate.json is not in testdata/samples/headers.json")
	}
	cfg, err := veil.ParseConfig([]byte(testConfig+benchDestinations), nil, ats.Vendors())
	if err != nil {
		b.Fatal(err)
	}
	set, err := policy.Load(context.Background(), "../policies")
	if err != nil {
		b.Fatal(err)
	}
	targets := gateway.NewTargets(cfg, bytes.Repeat([]byte{1}, 32))
	src := cfg.Source("greenhouse")
	ctx := context.Background()
	// Sanity: all three get something, or the benchmark measures less.
	ev, _ := gateway.NewEvent(src, header, body, time.Now())
	in, _ := set.NewInput(ev.Event, ev.Normal)
	for _, t := range targets {
		if d := gateway.Decide(ctx, set, in, ev, t); d.Status != veil.DeliveryPending {
			b.Fatalf("%s: %s %s, want pending", t.Name, d.Status, d.Detail)
		}
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ev, err := gateway.NewEvent(src, header, body, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		in, err := set.NewInput(ev.Event, ev.Normal)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range targets {
			gateway.Decide(ctx, set, in, ev, t)
		}
		ev.Release() // as the hook handler does once the event is stored
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(targets))/1000, "µs/dest")
}

// naivePolicies build the filtered object in Rego with json.filter, the
// way a policy engine is often embedded: the baseline for BenchmarkDecide.
const naivePolicies = `package naive.lib

is_stage_change if input.event_type == "candidate_stage_change"

is_hire if input.event_type == "hire_candidate"
---
package naive.slack

import data.naive.lib

allow if lib.is_stage_change
allow if lib.is_hire

out := {"text": sprintf("Application %v (candidate %v) for %s was hired.", [a.id, a.candidate.id, a.jobs[0].name])} if {
	allow
	a := input.payload.payload.application
}
---
package naive.bi

out := json.filter(input.payload, [
	"action", "payload/application/id", "payload/application/status", "payload/application/applied_at",
	"payload/application/last_activity_at", "payload/application/current_stage", "payload/application/jobs",
	"payload/application/job/id", "payload/application/job/name", "payload/application/source/id",
	"payload/application/offer/id", "payload/application/offer/starts_at",
])
---
package naive.hris

import data.naive.lib

out := json.filter(input.payload, [
	"action", "payload/application/id", "payload/application/candidate/id",
	"payload/application/candidate/first_name", "payload/application/candidate/last_name",
	"payload/application/candidate/email_addresses", "payload/application/candidate/phone_numbers",
	"payload/application/job/id", "payload/application/job/name", "payload/application/offer/id",
]) if lib.is_hire
`

// BenchmarkDecideNaive: decode the payload, let Rego build each filtered
// object with json.filter (OPA converting the input per destination), and
// encode the result.
func BenchmarkDecideNaive(b *testing.B) {
	body, err := os.ReadFile("../testdata/samples/greenhouse/hire_candidate.json")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	mods := strings.Split(naivePolicies, "---\n")
	var queries []rego.PreparedEvalQuery
	for i, mod := range mods[1:] {
		pkg := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(mod, "\n", 2)[0], "package "))
		q, err := rego.New(rego.Query("data."+pkg+".out"), rego.Module("naive.rego", mod),
			rego.Module("lib.rego", mods[0])).PrepareForEval(ctx)
		if err != nil {
			b.Fatalf("module %d: %v", i, err)
		}
		queries = append(queries, q)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var payload any
		if err := json.Unmarshal(body, &payload); err != nil {
			b.Fatal(err)
		}
		input := map[string]any{"vendor": "greenhouse", "event_type": "hire_candidate", "payload": payload}
		for _, q := range queries {
			rs, err := q.Eval(ctx, rego.EvalInput(input))
			if err != nil || len(rs) == 0 {
				b.Fatalf("naive eval: %v %d", err, len(rs))
			}
			if _, err := json.Marshal(rs[0].Expressions[0].Value); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(queries))/1000, "µs/dest")
}

var _ = redact.Parse

// BenchmarkDecide_PathologicalPolicy: the shipped set with the BI policy
// replaced by a nine-million-pair comprehension, under a 100 ms
// policy_timeout. One op is one webhook's decisions for the three
// destinations; cpu-ms/op is the process's CPU time per op (getrusage),
// which must stay at most the deadline times the destinations that time
// out (here one), and the two others decide as before.
func BenchmarkDecide_PathologicalPolicy(b *testing.B) {
	dir := b.TempDir()
	for _, f := range []string{"slack_hiring.rego", "hris_onboarding.rego", "lookup.rego", "default.rego"} {
		src, err := os.ReadFile("../policies/" + f)
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(dir+"/"+f, src, 0o644)
	}
	os.WriteFile(dir+"/bi_events.rego", []byte("package veil.destinations.bi_events\n\nallow if {\n\tcount({[x, y] | some x in numbers.range(1, 3000); some y in numbers.range(1, 3000)}) > 0\n}\n"), 0o644)
	set, err := policy.Load(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	set.Timeout = policy.DefaultTimeout
	cfg, err := veil.ParseConfig([]byte(testConfig+benchDestinations), nil, ats.Vendors())
	if err != nil {
		b.Fatal(err)
	}
	body, err := os.ReadFile("../testdata/samples/greenhouse/hire_candidate.json")
	if err != nil {
		b.Fatal(err)
	}
	targets := gateway.NewTargets(cfg, bytes.Repeat([]byte{1}, 32))
	src := cfg.Source("greenhouse")
	ctx := context.Background()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	start := cpu()
	for b.Loop() {
		ev, err := gateway.NewEvent(src, nil, body, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		in, _ := set.NewInput(ev.Event, ev.Normal)
		for _, t := range targets {
			d := gateway.Decide(ctx, set, in, ev, t)
			if t.Name == "bi-warehouse" && d.Detail != veil.DetailPolicyTimeout {
				b.Fatalf("bi-warehouse: %s %s, want blocked policy_timeout", d.Status, d.Detail)
			} else if t.Name != "bi-warehouse" && d.Status != veil.DeliveryPending {
				b.Fatalf("%s: %s %s, want pending", t.Name, d.Status, d.Detail)
			}
		}
		ev.Release()
	}
	b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(set.Timeout)/1e6, "deadline-ms")
}
