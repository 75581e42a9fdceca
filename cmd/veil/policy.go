package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/proxy"
)

// runPolicyTest runs the Rego tests with OPA's tester and prints its report.
func runPolicyTest(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	verbose := fs.Bool("v", false, "list every test")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	var dir string
	switch len(pos) {
	case 0:
		cfg, err := veil.LoadConfig(*configPath)
		if err != nil {
			return err
		}
		dir = cfg.Policies
	case 1:
		dir = pos[0]
	default:
		return c.usage(fs, stderr, "name at most one policy folder")
	}
	ok, err := policy.RunTests(ctx, dir, stdout, *verbose)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("some policy tests failed (listed above)")
	}
	return nil
}

// runPolicyPreview shows what one destination would receive for FILE.
func runPolicyPreview(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	destName := fs.String("destination", "", "destination name (required)")
	sourceName := fs.String("source", "", "source the file arrives at (default: the destination's first)")
	dir := fs.String("policies", "", "policy folder (default: the config's)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if *destName == "" || len(pos) != 1 {
		return c.usage(fs, stderr, "name a destination and one payload file")
	}
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	target, err := findTarget(cfg, *destName)
	if err != nil {
		return err
	}
	if *sourceName == "" {
		*sourceName = target.Sources[0]
	}
	src, err := sourceNamed(cfg, *sourceName)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = cfg.Policies
	}
	set, err := policy.Load(ctx, *dir)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	d, err := decideFile(ctx, set, src, target, body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "destination: %s (%s)\nsource: %s (%s)\n", target.Name, target.Policy, src.Name, src.Vendor)
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
	printPaths(stdout, "dropped", d.FieldsDropped)
	return nil
}

func printPaths(w io.Writer, title string, paths []string) {
	fmt.Fprintf(w, "\n%s (%d):\n", title, len(paths))
	for _, p := range paths {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func findTarget(cfg *veil.Config, name string) (proxy.Target, error) {
	pseudonym, _ := veil.DecodeKey(cfg.Keys.Pseudonym)
	for _, t := range proxy.NewTargets(cfg, pseudonym) {
		if t.Name == name {
			return t, nil
		}
	}
	return proxy.Target{}, fmt.Errorf("no destination is named %q; the configured destinations are %s", name, strings.Join(cfg.DestinationNames(), ", "))
}

// decideFile runs one destination's policy on a payload file.
func decideFile(ctx context.Context, set *policy.Set, src *veil.Source, t proxy.Target, body []byte) (*veil.Delivery, error) {
	e, doc, err := proxy.NewEvent(src, nil, body, time.Now())
	if err != nil {
		return nil, fmt.Errorf("parse payload: %w", err)
	}
	in, err := set.NewInput(e)
	if err != nil {
		return nil, err
	}
	return proxy.Decide(ctx, set, in, doc, t), nil
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
	cfg, err := veil.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	oldSet, err := policy.Load(ctx, cfg.Policies)
	if err != nil {
		return fmt.Errorf("running policies: %w", err)
	}
	newSet, err := policy.Load(ctx, *newDir)
	if err != nil {
		return fmt.Errorf("candidate policies: %w", err)
	}
	type change struct{ gained, lost map[string]int }
	changes := map[string]*change{}
	events := 0
	compare := func(src *veil.Source, body []byte) error {
		events++
		for _, t := range proxy.NewTargets(cfg, mustKey(cfg.Keys.Pseudonym)) {
			if !slices.Contains(t.Sources, src.Name) {
				continue
			}
			before, err := decideFile(ctx, oldSet, src, t, body)
			if err != nil {
				return err
			}
			after, err := decideFile(ctx, newSet, src, t, body)
			if err != nil {
				return err
			}
			b, a := leaving(before), leaving(after)
			c := changes[t.Name]
			if c == nil {
				c = &change{gained: map[string]int{}, lost: map[string]int{}}
				changes[t.Name] = c
			}
			for p := range a {
				if !b[p] {
					c.gained[p]++
				}
			}
			for p := range b {
				if !a[p] {
					c.lost[p]++
				}
			}
		}
		return nil
	}
	if *samples != "" {
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
			return compare(src, body)
		})
	} else {
		st, oerr := openStore(cfg, newLogger(io.Discard))
		if oerr != nil {
			return oerr
		}
		defer st.Close()
		err = st.Events(ctx, func(e *veil.Event) error {
			if src := cfg.Source(e.Source); src != nil {
				return compare(src, e.Payload)
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compared %d events: running policies (%s) -> candidate (%s)\n", events, cfg.Policies, *newDir)
	names := make([]string, 0, len(changes))
	for n := range changes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c := changes[n]
		fmt.Fprintf(stdout, "\n%s:\n", n)
		if len(c.gained) == 0 && len(c.lost) == 0 {
			fmt.Fprintln(stdout, "  no change")
		}
		for _, p := range sortedKeys(c.gained) {
			fmt.Fprintf(stdout, "  + %s  (newly leaves, %d events)\n", p, c.gained[p])
		}
		for _, p := range sortedKeys(c.lost) {
			fmt.Fprintf(stdout, "  - %s  (stops leaving, %d events)\n", p, c.lost[p])
		}
	}
	return nil
}

// leaving is the set of fields a delivery sends: kept paths, and
// pseudonymised ones marked as such. A delivery not sent sends nothing.
func leaving(d *veil.Delivery) map[string]bool {
	out := map[string]bool{}
	if d.Status != veil.DeliveryPending {
		return out
	}
	for _, p := range d.FieldsKept {
		out[p] = true
	}
	for _, p := range d.Pseudonymized {
		out[p+" (pseudonymised)"] = true
	}
	return out
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

func mustKey(s string) []byte {
	k, _ := veil.DecodeKey(s) // validated with the config
	return k
}

func proxyTargets(cfg *veil.Config) []proxy.Target {
	return proxy.NewTargets(cfg, mustKey(cfg.Keys.Pseudonym))
}

// gjsonEventType is the event type Veil reads for body at src.
func gjsonEventType(src *veil.Source, body []byte) string {
	e, _, err := proxy.NewEvent(src, nil, body, time.Now())
	if err != nil {
		return "unknown"
	}
	return e.EventType
}
