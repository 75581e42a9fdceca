package redact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/policy"
	"github.com/veilhq/veil/redact"
)

var update = flag.Bool("update", false, "rewrite the golden want.json files")

// golden is what one destination receives, as want.json records it.
type golden struct {
	Allow bool   `json:"allow"`
	Body  string `json:"body,omitempty"` // exact bytes

	Kept          []string `json:"kept"`
	Dropped       []string `json:"dropped"`
	Pseudonymized []string `json:"pseudonymized"`
	Leak          string   `json:"leak"`
}

var masterKey = bytes.Repeat([]byte{0x42}, 32)

// TestGolden runs each testdata/redact/<case>: the real Rego policy decides
// on input.json and the projection must equal want.json, per destination
// (the case's destinations file, one per line, or "golden").
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("../testdata/redact/*")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			input := mustRead(t, filepath.Join(dir, "input.json"))
			set := loadPolicy(t, filepath.Join(dir, "policy.rego"))
			dests := []string{"golden"}
			if b, err := os.ReadFile(filepath.Join(dir, "destinations")); err == nil {
				dests = strings.Fields(string(b))
			}
			e := &veil.Event{Source: "golden", Vendor: "standard", Payload: input,
				EventType: gjson.GetBytes(input, "action|type|event").String()}
			in, err := set.NewInput(e, nil)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := redact.Parse(input)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]golden{}
			for _, d := range dests {
				dec, err := set.Decide(context.Background(), "veil.destinations.golden", in, d, veil.Processor{})
				if err != nil {
					t.Fatal(err)
				}
				g := golden{Allow: dec.Allow}
				if dec.Allow {
					res, err := doc.Apply(dec, redact.DestinationKey(masterKey, d))
					if err != nil {
						t.Fatal(err)
					}
					g.Body, g.Kept, g.Dropped, g.Pseudonymized, g.Leak = string(res.Body), res.Kept, res.Dropped, res.Pseudonymized, res.LeakPath
					if !json.Valid(res.Body) {
						t.Fatalf("%s: outbound body is not valid JSON: %s", d, res.Body)
					}
				}
				got[d] = g
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(got); err != nil {
				t.Fatal(err)
			}
			gotJSON := buf.Bytes()
			wantPath := filepath.Join(dir, "want.json")
			if *update {
				if err := os.WriteFile(wantPath, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := mustRead(t, wantPath); !bytes.Equal(gotJSON, want) {
				t.Fatalf("got:\n%s\nwant:\n%s", gotJSON, want)
			}
		})
	}
}

func loadPolicy(t *testing.T, path string) *policy.Set {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.rego"), mustRead(t, path), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := policy.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
