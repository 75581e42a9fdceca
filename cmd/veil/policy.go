package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/gateway"
	"github.com/veilhq/veil/policies"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/redact"
)

// runPolicyTest runs the Rego tests with OPA's tester and prints its report.
func runPolicyTest(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	verbose := fs.Bool("v", false, "list every test")
	coverage := fs.Bool("coverage", false, "print OPA's coverage of each policy file")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	dir, err := c.policyFolder(fs, stderr, *configPath, pos)
	if err != nil {
		return err
	}
	rep, err := policy.RunTests(ctx, dir, stdout, *verbose, *coverage)
	if err != nil {
		return err
	}
	for _, pkg := range rep.Untested {
		fmt.Fprintf(stdout, "no tests: %s (write a %s_test package)\n", pkg, pkg)
	}
	if *coverage {
		fmt.Fprintln(stdout, "\ncoverage:")
		for _, f := range sortedKeys(rep.Coverage) {
			fmt.Fprintf(stdout, "  %6.1f%%  %s\n", rep.Coverage[f], f)
		}
		fmt.Fprintf(stdout, "  %6.1f%%  in all\n", rep.Total)
	}
	if !rep.Passed {
		return fmt.Errorf("the policies do not check or their tests fail (above)")
	}
	return nil
}

// runPolicyCheck loads a policy folder exactly as serve would before it
// swaps a set in: compiled against the allowed built-ins, type-checked,
// tested, and every package the config's destinations name defined.
func runPolicyCheck(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return c.usage(fs, stderr, "name at most one policy folder")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	dir := cfg.Policies
	if len(pos) == 1 {
		dir = pos[0]
	}
	set, err := loadPolicies(ctx, cfg, dir)
	if err != nil {
		return err
	}
	if err := checkPackages(cfg, set, dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %s, %s passed, digest %s\n", plural(int64(set.Files), "file"), plural(int64(set.Tests), "test"), set.Digest)
	return nil
}

// checkPackages is what a set must define besides loading: the package
// of every destination of the config.
func checkPackages(cfg *veil.Config, s *policy.Set, dir string) error {
	for i, d := range cfg.Destinations {
		if !s.Has(d.Policy) {
			return fmt.Errorf("destinations[%d].policy: package %s is not defined in %s", i, d.Policy, dir)
		}
	}
	return nil
}

// runPolicyCapabilities prints the OPA capabilities Veil's policies are
// compiled against, for `opa check --capabilities FILE`.
func runPolicyCapabilities(_ context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, _ := c.flags()
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usage(fs, stderr, "capabilities takes no arguments")
	}
	b, err := policy.CapabilitiesJSON()
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}

// loadPolicies loads the policy folder dir as serve would run it: each
// decision bounded by the config's policy_timeout.
func loadPolicies(ctx context.Context, cfg *veil.Config, dir string) (*policy.Set, error) {
	set, err := policy.Load(ctx, dir)
	if err != nil {
		return nil, err
	}
	set.Timeout = time.Duration(cfg.PolicyTimeout)
	return set, nil
}

// policyFolder is the one policy folder a command was given, or the
// config's when it was given none.
func (c *command) policyFolder(fs *flag.FlagSet, stderr io.Writer, configPath string, pos []string) (string, error) {
	switch len(pos) {
	case 0:
		cfg, err := loadConfig(configPath)
		if err != nil {
			return "", err
		}
		return cfg.Policies, nil
	case 1:
		return pos[0], nil
	default:
		return "", c.usage(fs, stderr, "name at most one policy folder")
	}
}

// runPolicyFmt formats the policy files with OPA's formatter.
func runPolicyFmt(_ context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	check := fs.Bool("check", false, "change nothing; list the files that are not formatted and exit 1 if any")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	dir, err := c.policyFolder(fs, stderr, *configPath, pos)
	if err != nil {
		return err
	}
	changed, err := policy.Format(dir, *check)
	if err != nil {
		return err
	}
	for _, f := range changed {
		fmt.Fprintln(stdout, f)
	}
	if *check && len(changed) > 0 {
		return fmt.Errorf("%s not formatted; run `veil policy fmt %s`", plural(int64(len(changed)), "file"), dir)
	}
	return nil
}

// runPolicySchema prints the normal form's JSON Schema, or a table of its
// fields and their data categories.
func runPolicySchema(_ context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, _ := c.flags()
	table := fs.Bool("table", false, "print each field with its data category instead of the schema")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usage(fs, stderr, "schema takes no arguments")
	}
	if !*table {
		_, err := stdout.Write(policies.EventSchema())
		return err
	}
	cats := policies.EventCategories()
	for _, p := range policies.EventPaths() {
		fmt.Fprintf(stdout, "%-34s %s\n", p, cats[p])
	}
	return nil
}

// runPolicyPreview shows what one destination would receive for FILE.
func runPolicyPreview(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	destName := fs.String("destination", "", "destination name (required)")
	sourceName := fs.String("source", "", "source the file arrives at (default: the one configured source whose vendor recognises the file)")
	dir := fs.String("policies", "", "policy folder (default: the config's)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if *destName == "" || len(pos) != 1 {
		return c.usage(fs, stderr, "name a destination and one payload file")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	target, err := findTarget(cfg, *destName)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	if *sourceName == "" {
		if *sourceName, err = inferSource(cfg, target, body); err != nil {
			return c.usage(fs, stderr, err.Error())
		}
	}
	src, err := sourceNamed(cfg, *sourceName)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = cfg.Policies
	}
	set, err := loadPolicies(ctx, cfg, *dir)
	if err != nil {
		return err
	}
	// A sample in a samples folder (vendor/file.json) comes with the
	// headers it was sent with in the folder's headers.json: the event
	// name SmartRecruiters sends as a header.
	samples := filepath.Dir(filepath.Dir(pos[0]))
	d, err := decideFile(ctx, set, src, target, body, sampleHeaders(samples)[sampleKey(samples, pos[0])])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "destination: %s (%s)\nsource: %s (%s)\n", target.Name, target.Policy, src.Name, src.Vendor)
	if d.Event != nil {
		fmt.Fprintf(stdout, "event: %s (%s)\n", d.Event.Type, d.Event.VendorType)
	}
	switch d.Status {
	case veil.DeliveryFiltered:
		fmt.Fprintln(stdout, "decision: filtered (the policy does not allow this event here); nothing is sent")
		return nil
	case veil.DeliveryDead:
		fmt.Fprintf(stdout, "decision: error (%s); nothing is sent\n", d.Detail)
		return nil
	case veil.DeliveryBlocked:
		fmt.Fprintf(stdout, "decision: BLOCKED by the leak guard: the value of %s, which the policy drops, appears in the outbound body; nothing is sent\n", d.Detail)
	default:
		fmt.Fprintln(stdout, "decision: allowed\n\noutbound body:")
		var pretty bytes.Buffer // json.Indent keeps the bytes and key order
		if json.Indent(&pretty, d.Body, "", "  ") != nil {
			pretty.Write(d.Body)
		}
		fmt.Fprintf(stdout, "%s\n", pretty.Bytes())
	}
	printPaths(stdout, "kept", d.FieldsKept)
	printPaths(stdout, "pseudonymised", d.Pseudonymized)
	printPaths(stdout, "categories released", d.Categories)
	printPaths(stdout, "dropped", d.FieldsDropped)
	return nil
}

// inferSource finds the one source of the destination whose vendor
// recognises body; several or none is an error that lists them.
func inferSource(cfg *veil.Config, t gateway.Target, body []byte) (string, error) {
	var fits []string
	for _, name := range t.Sources {
		src := cfg.Source(name)
		sch, err := ats.New(src)
		if err == nil && sch.Recognize(body) {
			fits = append(fits, name)
		}
	}
	switch len(fits) {
	case 1:
		return fits[0], nil
	case 0:
		return "", fmt.Errorf("no source of %s recognises the file; name one with --source (%s)", t.Name, strings.Join(t.Sources, ", "))
	}
	return "", fmt.Errorf("the file fits several sources of %s (%s); name one with --source", t.Name, strings.Join(fits, ", "))
}

// decided is a decision with the event it was made on, for previews.
type decided struct {
	*veil.Delivery
	Event *veil.NormalEvent
	// classify gives a kept path's category: the normal form's, or the
	// vendor's for a vendor-format policy.
	classify redact.Classifier
}

// categoryOf is the data category of a path the delivery kept.
func (d *decided) categoryOf(path string) string {
	if d.classify == nil {
		return ""
	}
	return d.classify.Category(path)
}

func printPaths(w io.Writer, title string, paths []string) {
	fmt.Fprintf(w, "\n%s (%d):\n", title, len(paths))
	for _, p := range paths {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func findTarget(cfg *veil.Config, name string) (gateway.Target, error) {
	pseudonym := cfg.Keys.PseudonymKey()
	for _, t := range gateway.NewTargets(cfg, pseudonym) {
		if t.Name == name {
			return t, nil
		}
	}
	return gateway.Target{}, fmt.Errorf("no destination is named %q; the configured destinations are %s", name, strings.Join(cfg.DestinationNames(), ", "))
}

// decideFile runs one destination's policy on a payload file (with the
// headers the vendor sent it with, when known: SmartRecruiters' event name).
func decideFile(ctx context.Context, set *policy.Set, src *veil.Source, t gateway.Target, body []byte, h http.Header) (*decided, error) {
	ev, err := gateway.NewEvent(src, h, body, time.Now())
	if err != nil {
		return nil, fmt.Errorf("parse payload: %w", err)
	}
	defer ev.Release()
	return decidePrepared(ctx, set, ev, t)
}

// decidePrepared runs one destination's policy on a prepared event.
func decidePrepared(ctx context.Context, set *policy.Set, ev *gateway.Prepared, t gateway.Target) (*decided, error) {
	in, err := set.NewInput(ev.Event, ev.Normal)
	if err != nil {
		return nil, err
	}
	dl := gateway.Decide(ctx, set, in, ev, t)
	var classify redact.Classifier = ev.Classify
	if d, err := set.Decide(ctx, t.Policy, in, t.Name, t.Processor); err == nil && d.Format == veil.FormatEvent {
		classify = policies.EventClassifier
	}
	return &decided{Delivery: dl, Event: ev.Normal, classify: classify}, nil
}

// prepareStored prepares a stored event with its source's scheme: its
// event type as it was received, whatever headers named it.
func prepareStored(src *veil.Source, e *veil.Event) (*gateway.Prepared, error) {
	sch, err := ats.New(src)
	if err != nil {
		return nil, err
	}
	doc, err := redact.Parse(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("parse stored payload of %s: %w", e.ID, err)
	}
	return gateway.NewPrepared(e, doc, sch), nil
}

// sampleHeaders reads dir/headers.json, the headers each sample file was
// sent with (keyed by its path below dir), when there is one.
func sampleHeaders(dir string) map[string]http.Header { return sampleHeadersFS(os.DirFS(dir)) }

// sampleHeadersFS is sampleHeaders for a file system.
func sampleHeadersFS(fsys fs.FS) map[string]http.Header {
	out := map[string]http.Header{}
	b, err := fs.ReadFile(fsys, "headers.json")
	if err != nil {
		return out
	}
	var raw map[string]map[string]string
	if json.Unmarshal(b, &raw) != nil {
		return out
	}
	for file, hs := range raw {
		h := http.Header{}
		for k, v := range hs {
			h.Set(k, v)
		}
		out[file] = h
	}
	return out
}

// sampleKey is a sample's key in headers.json: its path below dir.
func sampleKey(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}

// sampleVendors maps a samples sub-folder to its vendor.
var sampleVendors = map[string]string{"greenhouse": veil.VendorGreenhouse, "lever": veil.VendorLever,
	"ashby": veil.VendorAshby, "standard-webhooks": veil.VendorStandard, "standard": veil.VendorStandard,
	"smartrecruiters": veil.VendorSmartRecruiters}

// runPolicyDiff lists, per destination, the fields that would newly leave
// or stop leaving under NEW_DIR compared with the running policies.
func runPolicyDiff(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fset, configPath := c.flags()
	newDir := fset.String("policies", "", "candidate policy folder (required)")
	samples := fset.String("samples", "", "folder of sample payloads in vendor sub-folders (default: the events in the vault)")
	pos, err := c.parse(fset, args, stdout, stderr)
	if err != nil {
		return err
	}
	if *newDir == "" || len(pos) != 0 {
		return c.usage(fset, stderr, "name the candidate policy folder with --policies")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	oldSet, err := loadPolicies(ctx, cfg, cfg.Policies)
	if err != nil {
		return fmt.Errorf("running policies: %w", err)
	}
	newSet, err := loadPolicies(ctx, cfg, *newDir)
	if err != nil {
		return fmt.Errorf("candidate policies: %w", err)
	}
	im := gateway.NewImpact(oldSet, newSet, proxyTargets(cfg))
	compare := func(ev *gateway.Prepared) error {
		defer ev.Release()
		return im.Add(ctx, ev)
	}
	if *samples != "" {
		headers := sampleHeaders(*samples)
		err = filepath.WalkDir(*samples, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
				return err
			}
			vendor := sampleVendors[filepath.Base(filepath.Dir(path))]
			src := sourceForVendor(cfg, vendor)
			if src == nil {
				return nil // no source of that vendor configured
			}
			body, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			ev, err := gateway.NewEvent(src, headers[sampleKey(*samples, path)], body, time.Now())
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			return compare(ev)
		})
	} else {
		st, oerr := openStore(cfg, newLogger(io.Discard))
		if oerr != nil {
			return oerr
		}
		defer st.Close()
		var p *progress
		started := false
		err = st.Events(ctx, func(e *veil.Event) error {
			src := cfg.Source(e.Source)
			if src == nil {
				return nil
			}
			ev, err := prepareStored(src, e)
			if err != nil {
				return err
			}
			return compare(ev)
		}, func(done, total int) {
			if !started {
				p, started = newProgress(stderr, "comparing stored events", "events", int64(total)), true
			}
			p.set(int64(done))
		})
		p.finish()
	}
	if err != nil {
		return err
	}
	res := im.Result()
	fmt.Fprintf(stdout, "compared %d events: running policies (%s) -> candidate (%s)\n", res.Events, cfg.Policies, *newDir)
	for _, c := range res.Changes {
		fmt.Fprintf(stdout, "\n%s:\n", c.Destination)
		if len(c.Gained) == 0 && len(c.Lost) == 0 {
			fmt.Fprintln(stdout, "  no change")
		}
		for _, f := range c.Gained {
			fmt.Fprintf(stdout, "  + %s  (newly leaves, %d events)\n", f.Field, f.Events)
		}
		for _, f := range c.Lost {
			fmt.Fprintf(stdout, "  - %s  (stops leaving, %d events)\n", f.Field, f.Events)
		}
	}
	return nil
}

func sourceForVendor(cfg *veil.Config, vendor string) *veil.Source {
	for i := range cfg.Sources {
		if cfg.Sources[i].Vendor == vendor {
			return &cfg.Sources[i]
		}
	}
	return nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func proxyTargets(cfg *veil.Config) []gateway.Target {
	return gateway.NewTargets(cfg, cfg.Keys.PseudonymKey())
}
