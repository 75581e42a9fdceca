// Package policy loads, tests, compiles, hot-reloads and evaluates the Rego
// policies that decide what each destination may see. A set is compiled
// once; each package gets one prepared query that reads its allow, keep,
// pseudonymize and body rules by name, so test_ rules never run on traffic.
package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
)

// LookupPackage is the package of the gated-lookup policy.
const LookupPackage = "veil.lookup"

// Set is one compiled, tested policy set. It is immutable: a reload builds
// a new Set and swaps it in.
type Set struct {
	Digest   string    // SHA-256 over the .rego files' names and contents
	Files    int       // number of .rego files
	LoadedAt time.Time // when it was loaded

	compiler     *ast.Compiler
	store        storage.Store
	queries      map[string]*rego.PreparedEvalQuery // by package path, e.g. veil.destinations.slack_hiring
	readsPayload bool                               // some rule reads input.payload
	readsTime    bool                               // some rule reads input.received_at
	// readsEvent says some rule reads input.event beyond its envelope
	// (type, vendor_type, source, vendor, reconciled): then the whole normal
	// form is converted for each event, and decisions are not cached.
	readsEvent bool
	// Untested names the destination packages no test refers to.
	Untested []string
	// Tests is the number of tests the set passed when it loaded.
	Tests int
	// Timeout bounds each decision (DefaultTimeout after Load; set it
	// before the set serves). A decision that runs out fails with
	// ErrTimeout and is never cached.
	Timeout time.Duration

	// files holds each package's policy files (tests left out), for the
	// console to show a destination's policy as written.
	files map[string][]veil.PolicyFile

	// Decisions depend only on the input, and without the payload or the
	// time the input is a handful of names: decisions are cached by them.
	cacheMu sync.Mutex
	cache   map[string]*veil.Decision
}

// TestFailure is returned by Load when the set compiles but a test fails.
type TestFailure struct {
	Failed []string // package.rule of each failed or erroring test
	Total  int
}

func (e *TestFailure) Error() string {
	return fmt.Sprintf("%d of %d policy tests failed: %s", len(e.Failed), e.Total, strings.Join(e.Failed, ", "))
}

// Load reads every .rego file under dir (Rego v1), compiles the set, runs
// its _test.rego tests and prepares one query per package. A set that does
// not compile or whose tests fail is an error (*TestFailure for the latter).
func Load(ctx context.Context, dir string) (*Set, error) {
	digest, files, err := digestDir(dir)
	if err != nil {
		return nil, err
	}
	if files == 0 {
		return nil, fmt.Errorf("load policies: no .rego files in %s", dir)
	}
	modules, store, err := tester.Load([]string{dir}, nil)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	compiler, err := Check(modules)
	if err != nil {
		return nil, err
	}
	tests, err := runTests(ctx, modules, store)
	if err != nil {
		return nil, err
	}
	s := &Set{Digest: digest, Files: files, LoadedAt: time.Now(), Timeout: DefaultTimeout, compiler: compiler, store: store,
		queries: map[string]*rego.PreparedEvalQuery{}, Untested: untested(modules), Tests: tests,
		files: map[string][]veil.PolicyFile{}}
	for path, m := range modules {
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		if !strings.HasSuffix(path, "_test.rego") {
			text, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read policies: %w", err)
			}
			name, _ := filepath.Rel(dir, path)
			s.files[pkg] = append(s.files[pkg], veil.PolicyFile{Name: filepath.ToSlash(name), Text: string(text)})
		}
		s.readsPayload = s.readsPayload || readsInput(m, "payload")
		s.readsTime = s.readsTime || readsInput(m, "received_at")
		s.readsEvent = s.readsEvent || readsEventBody(m)
		if _, ok := s.queries[pkg]; ok {
			continue
		}
		q, err := prepare(ctx, compiler, store, m.Package.Path.String())
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", pkg, err)
		}
		s.queries[pkg] = q
	}
	return s, nil
}

// Check compiles modules with input type-checked against the input Veil
// gives (the normal form's schema under input.event), and checks that the
// paths and categories of format "event" policies exist. Errors name file
// and line.
func Check(modules map[string]*ast.Module) (*ast.Compiler, error) {
	ss, err := schemaSet()
	if err != nil {
		return nil, err
	}
	compiler := newCompiler(false).WithSchemas(ss)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile policies: %w", explainRefused(compiler.Errors))
	}
	if errs := CheckPaths(modules); len(errs) > 0 {
		return nil, fmt.Errorf("check policies: %w", errors.Join(errs...))
	}
	return compiler, nil
}

// newCompiler returns a compiler limited to Capabilities. print calls are
// compiled only when printing: in serve they are erased, since what a
// policy prints could be a payload value; `veil policy test` shows them.
func newCompiler(printing bool) *ast.Compiler {
	return ast.NewCompiler().WithCapabilities(Capabilities()).WithEnablePrintStatements(printing)
}

// prepare builds the query that reads the four rules by name. Each rule is
// wrapped in an array comprehension, so an undefined rule is an empty array
// instead of making the whole query undefined.
func prepare(ctx context.Context, c *ast.Compiler, store storage.Store, pkgRef string) (*rego.PreparedEvalQuery, error) {
	var q strings.Builder
	for _, r := range []string{"allow", "format", "keep", "pseudonymize", "keep_categories", "pseudonymize_categories", "body", "leak_exempt"} {
		fmt.Fprintf(&q, "%s := [x | x := %s.%s]\n", r, pkgRef, r)
	}
	pq, err := rego.New(rego.Query(q.String()), rego.Compiler(c), rego.Store(store)).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	return &pq, nil
}

// readsInput reports whether a non-test rule of m may read input.<key>: a
// ref to input itself, to input.<key>, or to input[<var>].
func readsInput(m *ast.Module, key string) bool {
	found := false
	check := func(ref ast.Ref) bool {
		if found || !ref.HasPrefix(ast.InputRootRef) {
			return found
		}
		if len(ref) == 1 {
			found = true
		} else if s, ok := ref[1].Value.(ast.String); !ok || string(s) == key {
			found = true
		}
		return found
	}
	for _, imp := range m.Imports {
		if ref, ok := imp.Path.Value.(ast.Ref); ok {
			check(ref)
		}
	}
	for _, r := range m.Rules {
		if strings.HasPrefix(r.Head.Name.String(), tester.TestPrefix) {
			continue
		}
		ast.WalkRefs(r, check)
	}
	return found
}

// envelope are the keys of input.event whose values decisions may be
// cached by: the event's kind, not its content.
var envelope = map[string]bool{"type": true, "vendor_type": true, "source": true, "vendor": true, "reconciled": true, "schema": true}

// readsEventBody reports whether a non-test rule of m may read input.event
// beyond its envelope: input.event itself, a field of it outside envelope,
// or input.event[<var>].
func readsEventBody(m *ast.Module) bool {
	found := false
	check := func(ref ast.Ref) bool {
		if found || !ref.HasPrefix(ast.InputRootRef) || len(ref) < 2 {
			return found
		}
		if k, ok := ref[1].Value.(ast.String); !ok || string(k) == "event" {
			if len(ref) == 2 {
				found = true
			} else if f, ok := ref[2].Value.(ast.String); !ok || !envelope[string(f)] {
				found = true
			}
		}
		return found
	}
	for _, r := range m.Rules {
		if strings.HasPrefix(r.Head.Name.String(), tester.TestPrefix) {
			continue
		}
		ast.WalkRefs(r, check)
	}
	return found
}

// runTests runs the set's test_ rules and returns how many passed; any
// failure or error rejects the set.
func runTests(ctx context.Context, modules map[string]*ast.Module, store storage.Store) (int, error) {
	ch, err := tester.NewRunner().SetCompiler(newCompiler(false)).SetStore(store).SetModules(modules).RunTests(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("compile policies: %w", err)
	}
	tf := &TestFailure{}
	for r := range ch {
		tf.Total++
		if r.Fail || r.Error != nil {
			tf.Failed = append(tf.Failed, r.Package+"."+r.Name)
		}
	}
	if len(tf.Failed) > 0 {
		slices.Sort(tf.Failed)
		return 0, tf
	}
	return tf.Total, nil
}

// TestReport is the outcome of RunTests.
type TestReport struct {
	Passed   bool               // every test passed and the set checks
	Untested []string           // destination packages no test refers to
	Coverage map[string]float64 // per file, in percent, when asked for
	Total    float64            // over every file, in percent, when asked for
	// Uncovered lists, per file, the lines no test reached ("12", "14-16").
	Uncovered map[string][]string
}

// RunTests checks the policies under dir against the input schema and the
// normal form (a misspelled input.event field, a keep path or category no
// event can match: each error names file and line), runs their tests with
// OPA's tester and writes its report to w, names destination packages
// without tests, and with coverage measures OPA's per-file coverage.
func RunTests(ctx context.Context, dir string, w io.Writer, verbose, coverage bool) (*TestReport, error) {
	modules, store, err := tester.Load([]string{dir}, nil)
	if err != nil {
		return nil, err
	}
	rep := &TestReport{Untested: untested(modules)}
	if _, err := Check(modules); err != nil {
		fmt.Fprintln(w, err)
		return rep, nil
	}
	runner := tester.NewRunner().SetCompiler(newCompiler(true)).SetStore(store).SetModules(modules)
	var cov *cover.Cover
	if coverage {
		cov = cover.New()
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return nil, err
	}
	passed := true
	results := make(chan *tester.Result)
	go func() {
		defer close(results)
		for r := range ch {
			passed = passed && !r.Fail && r.Error == nil
			results <- r
		}
	}()
	if err := (tester.PrettyReporter{Output: w, Verbose: verbose, FailureLine: true}).Report(results); err != nil {
		return nil, err
	}
	rep.Passed = passed
	if cov != nil {
		r := cov.Report(modules)
		rep.Coverage, rep.Total, rep.Uncovered = map[string]float64{}, r.Coverage, map[string][]string{}
		for f, fr := range r.Files {
			if strings.HasSuffix(f, "_test.rego") {
				continue
			}
			rep.Coverage[f] = fr.Coverage
			for _, rg := range fr.NotCovered {
				l := strconv.Itoa(rg.Start.Row)
				if rg.End.Row != rg.Start.Row {
					l += "-" + strconv.Itoa(rg.End.Row)
				}
				rep.Uncovered[f] = append(rep.Uncovered[f], l)
			}
		}
	}
	return rep, nil
}

// Format formats every .rego file under dir with OPA's formatter. With
// check it changes nothing and returns the files that would change.
func Format(dir string, check bool) ([]string, error) {
	var changed []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, err := format.SourceWithOpts(path, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			return fmt.Errorf("format %s: %w", path, err)
		}
		if bytes.Equal(src, out) {
			return nil
		}
		changed = append(changed, path)
		if check {
			return nil
		}
		return os.WriteFile(path, out, 0o644)
	})
	return changed, err
}

// digestDir hashes the names (relative to dir) and contents of every .rego file.
func digestDir(dir string) (string, int, error) {
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
		n++
		return nil
	})
	if err != nil {
		return "", 0, fmt.Errorf("read policies: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// PackageDigests returns, for each package with files, a SHA-256 over its
// files' names and contents (tests left out): what changed between two
// loads, package by package.
func (s *Set) PackageDigests() map[string]string {
	out := make(map[string]string, len(s.files))
	for pkg := range s.files {
		h := sha256.New()
		for _, f := range s.PackageFiles(pkg) {
			fmt.Fprintf(h, "%s\x00%d\x00%s", f.Name, len(f.Text), f.Text)
		}
		out[pkg] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

// PackageFiles returns the files that define package pkg, tests left out,
// sorted by name.
func (s *Set) PackageFiles(pkg string) []veil.PolicyFile {
	fs := slices.Clone(s.files[pkg])
	slices.SortFunc(fs, func(a, b veil.PolicyFile) int { return strings.Compare(a.Name, b.Name) })
	return fs
}

// Has reports whether the set defines package pkg.
func (s *Set) Has(pkg string) bool { _, ok := s.queries[pkg]; return ok }

// ReadsPayload reports whether any policy reads input.payload; when none
// does, Input skips converting the payload.
func (s *Set) ReadsPayload() bool { return s.readsPayload }

// Input is one event converted for OPA once and shared by every
// destination's decision; converted on the first decision the cache does
// not answer.
type Input struct {
	e        *veil.Event
	ne       *veil.NormalEvent
	full     bool           // convert the whole normal form, not only its envelope
	meta     [][2]*ast.Term // source, vendor, event_type, received_at, event; nil until needed
	payload  *ast.Term
	cacheKey string // "" when decisions on this input cannot be cached
}

// NewInput prepares an event and its normal form for evaluation. The
// payload is converted only when some policy of s reads it, the normal
// form in full only when some policy reads more than its envelope.
func (s *Set) NewInput(e *veil.Event, ne *veil.NormalEvent) (*Input, error) {
	in := &Input{e: e, ne: ne, full: s.readsEvent}
	if s.readsPayload {
		v, err := valueOf(e.Payload)
		if err != nil {
			return nil, err
		}
		in.payload = ast.NewTerm(v)
	} else if !s.readsTime && !s.readsEvent {
		in.cacheKey = e.Source + "\x00" + e.Vendor + "\x00" + e.EventType
		if ne != nil {
			in.cacheKey += "\x00" + ne.Type + "\x00" + strconv.FormatBool(ne.Reconciled)
		}
	}
	return in, nil
}

// terms converts the event's fields for OPA, once.
func (in *Input) terms() [][2]*ast.Term {
	if in.meta == nil {
		e := in.e
		in.meta = [][2]*ast.Term{
			ast.Item(ast.StringTerm("source"), ast.StringTerm(e.Source)),
			ast.Item(ast.StringTerm("vendor"), ast.StringTerm(e.Vendor)),
			ast.Item(ast.StringTerm("event_type"), ast.StringTerm(e.EventType)),
			ast.Item(ast.StringTerm("received_at"), ast.StringTerm(e.ReceivedAt.UTC().Format(time.RFC3339Nano))),
			ast.Item(ast.StringTerm("event"), ast.NewTerm(eventValue(in.ne, in.full))),
		}
	}
	return in.meta
}

// valueOf converts a JSON document straight into an OPA value with gjson.
// ast.ValueFromReader decodes into Go maps first and then converts them; at
// ~120 µs for a 6 KB payload that was the largest single cost of a decision.
// Numbers keep their JSON text (ast.Number), as OPA's own decoder does.
func valueOf(payload []byte) (ast.Value, error) {
	if !gjson.ValidBytes(payload) {
		return nil, errors.New("convert payload: not valid JSON")
	}
	return gjsonValue(gjson.ParseBytes(payload)), nil
}

func gjsonValue(r gjson.Result) ast.Value {
	switch {
	case r.IsObject():
		obj := ast.NewObject()
		r.ForEach(func(k, v gjson.Result) bool {
			obj.Insert(ast.StringTerm(k.Str), ast.NewTerm(gjsonValue(v)))
			return true
		})
		return obj
	case r.IsArray():
		var terms []*ast.Term
		r.ForEach(func(_, v gjson.Result) bool {
			terms = append(terms, ast.NewTerm(gjsonValue(v)))
			return true
		})
		return ast.NewArray(terms...)
	}
	switch r.Type {
	case gjson.String:
		return ast.String(r.Str)
	case gjson.Number:
		return ast.Number(r.Raw)
	case gjson.True:
		return ast.Boolean(true)
	case gjson.False:
		return ast.Boolean(false)
	}
	return ast.NullValue
}

// ErrNoPackage is returned by Decide for a package the set does not define.
var ErrNoPackage = errors.New("no such policy package")

// ErrTimeout is returned by Decide when a decision runs past the set's
// Timeout; ErrTooLarge when what it returns is over MaxResultBytes.
var (
	ErrTimeout  = errors.New("the policy ran past its time limit")
	ErrTooLarge = errors.New("the policy's decision is larger than the limit")
)

// DefaultTimeout is how long one decision may take when the config sets no
// policy_timeout: shipped decisions take tens of microseconds.
const DefaultTimeout = 100 * time.Millisecond

// MaxResultBytes bounds the text of one decision: its paths, categories and
// body together.
const MaxResultBytes = 1 << 20

// Decide evaluates package pkg for one destination and returns its decision.
// Undefined rules take their defaults: allow false, keep and pseudonymize
// empty, body none.
func (s *Set) Decide(ctx context.Context, pkg string, in *Input, destination string, p veil.Processor) (*veil.Decision, error) {
	var key string
	if in.cacheKey != "" {
		key = strings.Join([]string{in.cacheKey, pkg, destination, p.Name, p.DPA, p.Purpose, p.LegalBasis}, "\x00")
		s.cacheMu.Lock()
		d, ok := s.cache[key]
		s.cacheMu.Unlock()
		if ok {
			return d, nil // shared: callers never modify a decision
		}
	}
	d, err := s.decide(ctx, pkg, in, destination, p)
	if err == nil && key != "" {
		s.cacheMu.Lock()
		if s.cache == nil || len(s.cache) >= 10_000 {
			s.cache = map[string]*veil.Decision{} // event types are few; a flood of new ones starts over
		}
		s.cache[key] = d
		s.cacheMu.Unlock()
	}
	return d, err
}

func (s *Set) decide(ctx context.Context, pkg string, in *Input, destination string, p veil.Processor) (*veil.Decision, error) {
	items := append(slices.Clone(in.terms()),
		ast.Item(ast.StringTerm("destination"), ast.StringTerm(destination)),
		ast.Item(ast.StringTerm("processor"), ast.NewTerm(ast.NewObject(
			ast.Item(ast.StringTerm("name"), ast.StringTerm(p.Name)),
			ast.Item(ast.StringTerm("dpa"), ast.StringTerm(p.DPA)),
			ast.Item(ast.StringTerm("purpose"), ast.StringTerm(p.Purpose)),
			ast.Item(ast.StringTerm("legal_basis"), ast.StringTerm(p.LegalBasis)),
		))))
	if in.payload != nil {
		items = append(items, ast.Item(ast.StringTerm("payload"), in.payload))
	}
	return s.eval(ctx, pkg, ast.NewObject(items...))
}

// DecideLookup evaluates the lookup policy for a consumer and purpose on
// a stored (or fetched) event and its normal form.
func (s *Set) DecideLookup(ctx context.Context, consumer, purpose string, e *veil.Event, ne *veil.NormalEvent) (*veil.Decision, error) {
	var v ast.Value = ast.NewObject()
	if s.readsPayload {
		var err error
		if v, err = valueOf(e.Payload); err != nil {
			return nil, err
		}
	}
	return s.eval(ctx, LookupPackage, ast.NewObject(
		ast.Item(ast.StringTerm("consumer"), ast.StringTerm(consumer)),
		ast.Item(ast.StringTerm("purpose"), ast.StringTerm(purpose)),
		ast.Item(ast.StringTerm("event_id"), ast.StringTerm(e.ID)),
		ast.Item(ast.StringTerm("source"), ast.StringTerm(e.Source)),
		ast.Item(ast.StringTerm("vendor"), ast.StringTerm(e.Vendor)),
		ast.Item(ast.StringTerm("event_type"), ast.StringTerm(e.EventType)),
		ast.Item(ast.StringTerm("received_at"), ast.StringTerm(e.ReceivedAt.UTC().Format(time.RFC3339Nano))),
		ast.Item(ast.StringTerm("event"), ast.NewTerm(eventValue(ne, true))),
		ast.Item(ast.StringTerm("payload"), ast.NewTerm(v)),
	))
}

func (s *Set) eval(ctx context.Context, pkg string, input ast.Value) (*veil.Decision, error) {
	q, ok := s.queries[pkg]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoPackage, pkg)
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	rs, err := q.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("evaluate %s: %w", pkg, ErrTimeout)
		}
		return nil, fmt.Errorf("evaluate %s: %w", pkg, err)
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("evaluate %s: %d results, want 1", pkg, len(rs))
	}
	b := rs[0].Bindings
	if resultSize(map[string]any(b), MaxResultBytes) > MaxResultBytes {
		return nil, fmt.Errorf("evaluate %s: %w (over %d bytes)", pkg, ErrTooLarge, MaxResultBytes)
	}
	d := &veil.Decision{}
	if v := one(b["allow"]); v != nil {
		allow, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%s.allow is %T, want boolean", pkg, v)
		}
		d.Allow = allow
	}
	d.Format = veil.FormatVendor
	if v := one(b["format"]); v != nil {
		f, ok := v.(string)
		if !ok || (f != veil.FormatVendor && f != veil.FormatEvent) {
			return nil, fmt.Errorf("%s.format is %v, want \"vendor\" or \"event\"", pkg, v)
		}
		d.Format = f
	}
	if d.KeepCategories, err = paths(pkg, "keep_categories", one(b["keep_categories"])); err != nil {
		return nil, err
	}
	if d.PseudonymizeCategories, err = paths(pkg, "pseudonymize_categories", one(b["pseudonymize_categories"])); err != nil {
		return nil, err
	}
	if d.Keep, err = paths(pkg, "keep", one(b["keep"])); err != nil {
		return nil, err
	}
	if d.Pseudonymize, err = paths(pkg, "pseudonymize", one(b["pseudonymize"])); err != nil {
		return nil, err
	}
	if d.LeakExempt, err = paths(pkg, "leak_exempt", one(b["leak_exempt"])); err != nil {
		return nil, err
	}
	if v := one(b["body"]); v != nil {
		if _, ok := v.(map[string]any); !ok {
			return nil, fmt.Errorf("%s.body is %T, want object", pkg, v)
		}
		if d.Body, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("%s.body: %w", pkg, err)
		}
	}
	return d, nil
}

// resultSize is about the bytes of JSON a decision's values take, counted
// until it passes limit.
func resultSize(v any, limit int) int {
	n := 0
	var walk func(v any)
	walk = func(v any) {
		if n > limit {
			return
		}
		switch x := v.(type) {
		case string:
			n += len(x) + 3
		case []any:
			n += 2
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			n += 2
			for k, e := range x {
				n += len(k) + 4
				walk(e)
			}
		default:
			n += 8
		}
	}
	walk(v)
	return n
}

// one returns the single element of a comprehension result, or nil.
func one(v any) any {
	if a, ok := v.([]any); ok && len(a) == 1 {
		return a[0]
	}
	return nil
}

func paths(pkg, rule string, v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s.%s is %T, want a set of paths", pkg, rule, v)
	}
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s.%s holds %T, want strings", pkg, rule, x)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}
