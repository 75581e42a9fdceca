package veil_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

const baseConfig = `
admin_token: "${ADMIN:-fallback-token}"
keys:
  vault: "${VAULT}"
  pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="
sources:
  - {name: greenhouse, vendor: greenhouse, secret: "${GH_SECRET}"}
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfig_Expansion(t *testing.T) {
	cfg, err := veil.ParseConfig([]byte(baseConfig), env(map[string]string{
		"VAULT": "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", "GH_SECRET": "s: {not yaml}",
	}), ats.Vendors())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminToken != "fallback-token" {
		t.Errorf("admin_token: got %q, want the default", cfg.AdminToken)
	}
	if got := cfg.Sources[0].Secret; got != "s: {not yaml}" {
		t.Errorf("secret: got %q, want the variable's text verbatim", got)
	}
	if cfg.MaxBodyBytes != veil.DefaultMaxBodyBytes || time.Duration(cfg.Sources[0].Tolerance) != 5*time.Minute {
		t.Errorf("defaults: got max_body_bytes %d tolerance %v", cfg.MaxBodyBytes, cfg.Sources[0].Tolerance)
	}
}

func TestParseConfig_Errors(t *testing.T) {
	okEnv := map[string]string{"VAULT": "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", "GH_SECRET": "x"}
	for _, c := range []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"missing variable", baseConfig, map[string]string{"GH_SECRET": "x"}, "VAULT is not set"},
		{"unknown key", baseConfig + "colour: blue\n", okEnv, `line 7: "colour" is not a known key at the top level`},
		{"unknown nested key", strings.Replace(baseConfig, "vendor: greenhouse", "vendor: greenhouse, secrt: y", 1), okEnv, `"secrt" is not a known key in a source`},
		{"bad vendor", strings.Replace(baseConfig, "vendor: greenhouse", "vendor: taleo", 1), okEnv, "sources[0].vendor"},
		{"empty secret", baseConfig, map[string]string{"VAULT": okEnv["VAULT"], "GH_SECRET": ""}, "GH_SECRET is not set"},
		{"short key", baseConfig, map[string]string{"VAULT": "c2hvcnQ=", "GH_SECRET": "x"}, "keys.vault"},
		{"bad duration", baseConfig + "retention: {payload: soon}\n", okEnv, `"soon" is not a duration (write it like 30s`},
		{"hmac without header", baseConfig + "  - {name: w, vendor: hmac, secret: s}\n", okEnv, "sources[1].hmac.header"},
		{"destination unknown source", baseConfig + "destinations:\n  - {name: d, url: 'https://x.example', sources: [nope], policy: p}\n", okEnv, "destinations[0].sources[0]"},
		{"wrong type", baseConfig + "destinations: nope\n", okEnv, "line 7: expected a list here, not text"},
		{"audit shorter than payloads", baseConfig + "retention: {payload: 72h, audit: 24h}\n", okEnv, "retention.audit (24h0m0s) is shorter than retention.payload (72h0m0s)"},
		{"max_depth", baseConfig + "max_depth: 1\n", okEnv, "max_depth"},
		{"bad signing secret", baseConfig + "destinations:\n  - {name: d, url: 'https://x.example', sources: [greenhouse], policy: p, signing_secret: nope}\n", okEnv, "destinations[0].signing_secret"},
		{"normalize: not a gjson path", baseConfig + "  - {name: w, vendor: hmac, secret: s, hmac: {header: X-S}, normalize: {candidate.id: 'data.#(id==1)'}}\n", okEnv, `sources[1].normalize.candidate.id: "data.#(id==1)" is not a gjson path`},
		{"normalize: empty segment", baseConfig + "  - {name: w, vendor: hmac, secret: s, hmac: {header: X-S}, normalize: {candidate.id: 'data..id'}}\n", okEnv, `sources[1].normalize.candidate.id: "data..id" is not a gjson path`},
		{"normalize: modifier", baseConfig + "  - {name: w, vendor: hmac, secret: s, hmac: {header: X-S}, normalize: {type: {path: '@reverse', map: {}}}}\n", okEnv, `sources[1].normalize.type.path: "@reverse" is not a gjson path`},
		{"normalize: type outside the list", baseConfig + "  - {name: w, vendor: hmac, secret: s, hmac: {header: X-S}, normalize: {type: {path: event, map: {moved: application.moved}}}}\n", okEnv, `sources[1].normalize.type.map.moved: "application.moved" is not a normal type`},
		{"normalize: unknown field", baseConfig + "  - {name: w, vendor: hmac, secret: s, hmac: {header: X-S}, normalize: {candidate.nickname: data.nick}}\n", okEnv, `sources[1].normalize.candidate.nickname: not a field of the normal form`},
		{"normalize: not hmac", strings.Replace(baseConfig, "vendor: greenhouse,", "vendor: greenhouse, normalize: {candidate.id: x},", 1), okEnv, "sources[0].normalize: only a generic hmac source"},
		{"harvest v1 key", strings.Replace(baseConfig, "vendor: greenhouse,", "vendor: greenhouse, api: {base_url: 'https://harvest.greenhouse.io/v3', key: k},", 1), okEnv, "sources[0].api: Harvest v3 needs client_id, client_secret and user_id"},
		{"reconcile without api", strings.Replace(baseConfig, "vendor: greenhouse,", "vendor: greenhouse, reconcile: {every: 15m},", 1), okEnv, "sources[0].api: required for reconcile"},
		{"upstream without api", strings.Replace(baseConfig, "vendor: greenhouse,", "vendor: greenhouse, lookup: upstream,", 1), okEnv, "sources[0].api: required for lookup: upstream"},
		{"reconcile too often", strings.Replace(baseConfig, "vendor: greenhouse,", "vendor: greenhouse, api: {base_url: 'https://x.example', client_id: a, client_secret: b, user_id: '1'}, reconcile: {every: 10s},", 1), okEnv, "sources[0].reconcile.every: at least 1m"},
		{"reconcile bad since", strings.Replace(baseConfig, "vendor: greenhouse,", "vendor: greenhouse, api: {base_url: 'https://x.example', client_id: a, client_secret: b, user_id: '1'}, reconcile: {since: yesterday},", 1), okEnv, "sources[0].reconcile.since"},
		{"api bad url", baseConfig + "  - {name: l, vendor: lever, secret: s, api: {base_url: 'api.lever.co', key: k}}\n", okEnv, "sources[1].api.base_url"},
		{"reconcile other vendor", baseConfig + "  - {name: s, vendor: standard, secret: 'whsec_qi30n6UNTGAkAqwOsrRJil8R+0kDgCYHta7MhRRlqlw=', api: {base_url: 'https://x.example', key: k}, reconcile: {}}\n", okEnv, "sources[1].reconcile: Veil reconciles greenhouse, lever and ashby"},
		{"smartrecruiters upstream", baseConfig + "  - {name: sr, vendor: smartrecruiters, secret: s, lookup: upstream}\n", okEnv, "sources[1].lookup: upstream: Veil has no SmartRecruiters API client"},
		{"smartrecruiters reconcile", baseConfig + "  - {name: sr, vendor: smartrecruiters, secret: s, api: {key: k}, reconcile: {}}\n", okEnv, "sources[1].reconcile: Veil has no SmartRecruiters API client"},
		{"confidential not lever", strings.Replace(baseConfig, "vendor: greenhouse,", "vendor: greenhouse, api: {client_id: a, client_secret: b, user_id: '1', confidential: true},", 1), okEnv, "sources[0].api.confidential: only Lever"},
		{"destination bad backoff", baseConfig + "destinations:\n  - {name: d, url: 'https://x.example', sources: [greenhouse], policy: p, retry: {backoff: [5s, -1s]}}\n", okEnv, "destinations[0].retry.backoff[1]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := veil.ParseConfig([]byte(c.yaml), env(c.env), ats.Vendors())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestParseConfig_Normalize: a normalize block with escaped keys, indices
// and # is accepted.
func TestParseConfig_Normalize(t *testing.T) {
	okEnv := map[string]string{"VAULT": "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", "GH_SECRET": "x"}
	yaml := baseConfig + `  - name: w
    vendor: hmac
    secret: s
    hmac: {header: X-S}
    normalize:
      type: {path: meta.event, map: {moved: application.stage_changed, hired: application.hired}}
      candidate.id: data.id
      candidate.emails: data.emails.#.address
      application.stage.name: 'data.stage\.name'
      job.id: data.jobs.0.id
`
	cfg, err := veil.ParseConfig([]byte(yaml), env(okEnv), ats.Vendors())
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Sources[1].Normalize
	if n == nil || n.Type.Path != "meta.event" || n.Type.Map["hired"] != veil.TypeApplicationHired || n.Fields["candidate.emails"] != "data.emails.#.address" {
		t.Errorf("normalize: %+v", n)
	}
}

// TestExampleConfig keeps the shipped veil.yaml valid with no environment.
func TestExampleConfig(t *testing.T) {
	if _, err := veil.LoadConfig("veil.yaml", ats.Vendors()); err != nil {
		t.Fatal(err)
	}
}

// TestLoadConfig_RelativePaths: data_dir and policies are relative to the
// config file's folder, not to the working directory.
func TestLoadConfig_RelativePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "conf", "veil.yaml")
	os.MkdirAll(filepath.Dir(path), 0o755)
	cfg := strings.Replace(baseConfig, "${VAULT}", "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", 1)
	cfg = strings.Replace(cfg, "${GH_SECRET}", "x", 1) + "data_dir: ./state\npolicies: ../rego\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := veil.LoadConfig(path, ats.Vendors())
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "conf", "state"); c.DataDir != want {
		t.Errorf("data_dir: got %s, want %s", c.DataDir, want)
	}
	if want := filepath.Join(dir, "rego"); c.Policies != want {
		t.Errorf("policies: got %s, want %s", c.Policies, want)
	}
	if _, err := veil.LoadConfig(filepath.Join(dir, "none.yaml"), ats.Vendors()); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("missing file: got %v, want a sentence naming --config", err)
	}
}

// TestParseConfig_DefaultAPIBase: an api block without base_url reaches
// the vendor's documented API.
func TestParseConfig_DefaultAPIBase(t *testing.T) {
	yaml := strings.Replace(baseConfig, "vendor: greenhouse,", "vendor: greenhouse, api: {client_id: a, client_secret: b, user_id: '1'},", 1) +
		"  - {name: l, vendor: lever, secret: s, api: {key: k}}\n  - {name: a, vendor: ashby, secret: s, api: {key: k}}\n"
	cfg, err := veil.ParseConfig([]byte(yaml), env(map[string]string{"VAULT": "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=", "GH_SECRET": "x"}), ats.Vendors())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"https://harvest.greenhouse.io/v3", "https://api.lever.co", "https://api.ashbyhq.com"} {
		if got := cfg.Sources[i].API.BaseURL; got != want {
			t.Errorf("%s: base_url %q, want %q", cfg.Sources[i].Name, got, want)
		}
	}
}
