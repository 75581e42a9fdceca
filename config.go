package veil

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the contents of veil.yaml.
type Config struct {
	Listen       string        `yaml:"listen"`
	DataDir      string        `yaml:"data_dir"`
	AdminToken   string        `yaml:"admin_token"`
	Keys         KeysConfig    `yaml:"keys"`
	Retention    Retention     `yaml:"retention"`
	Policies     string        `yaml:"policies"`
	MaxBodyBytes int64         `yaml:"max_body_bytes"` // 0 means 1 MiB
	Lookup       LookupConfig  `yaml:"lookup"`
	Sources      []Source      `yaml:"sources"`
	Destinations []Destination `yaml:"destinations"`
}

// LookupConfig bounds each consumer's lookups (a token bucket).
type LookupConfig struct {
	Rate  float64 `yaml:"rate"`  // lookups per second; 0 means 50
	Burst int     `yaml:"burst"` // 0 means 100
}

// KeysConfig holds the base64-encoded 32-byte master keys.
type KeysConfig struct {
	Vault     string `yaml:"vault"`     // AES-256-GCM key wrapping per-subject data keys
	Pseudonym string `yaml:"pseudonym"` // HMAC key for pseudonyms and subject hashes
}

// Retention says how long Veil keeps payloads and audit rows.
type Retention struct {
	Payload Duration `yaml:"payload"`
	Audit   Duration `yaml:"audit"`
}

// Source is one inbound webhook sender, reached at POST /hooks/{name}.
type Source struct {
	Name      string      `yaml:"name"`
	Vendor    string      `yaml:"vendor"`
	Secret    string      `yaml:"secret"`
	Tolerance Duration    `yaml:"tolerance"` // timestamp tolerance; 0 means 5m
	HMAC      *HMACConfig `yaml:"hmac"`      // vendor hmac only
	// EventTypePath and SubjectPath (gjson paths) override where the event
	// type and the candidate id are read; the vendor default applies when empty.
	EventTypePath string `yaml:"event_type_path"`
	SubjectPath   string `yaml:"subject_path"`
	// Lookup "upstream" keeps no payload: lookups fetch the record from the
	// ATS API (Greenhouse Harvest, Lever). "" or "vault" keeps it encrypted.
	Lookup string     `yaml:"lookup"`
	API    *APIConfig `yaml:"api"`
}

// APIConfig reaches an ATS API for upstream lookups.
type APIConfig struct {
	BaseURL string   `yaml:"base_url"`
	Key     string   `yaml:"key"`     // sent as the HTTP Basic user, as Harvest and Lever expect
	Timeout Duration `yaml:"timeout"` // 0 means 10s
}

// HMACConfig configures the generic hmac vendor: an HMAC-SHA256 of the raw
// body in a header, after an optional prefix, hex or base64 encoded.
type HMACConfig struct {
	Header   string `yaml:"header"`
	Prefix   string `yaml:"prefix"`
	Encoding string `yaml:"encoding"` // hex (default) or base64
}

// Destination is one third party that receives minimised events.
type Destination struct {
	Name                string      `yaml:"name"`
	URL                 string      `yaml:"url"`
	Sources             []string    `yaml:"sources"`
	Policy              string      `yaml:"policy"`
	SigningSecret       string      `yaml:"signing_secret"`
	Timeout             Duration    `yaml:"timeout"`
	Retry               RetryConfig `yaml:"retry"`
	Concurrency         int         `yaml:"concurrency"`
	AllowPrivateNetwork bool        `yaml:"allow_private_network"`
	Processor           Processor   `yaml:"processor"`
}

// RetryConfig is a destination's retry schedule; the last backoff repeats.
type RetryConfig struct {
	MaxAttempts int        `yaml:"max_attempts"`
	Backoff     []Duration `yaml:"backoff"`
}

// Processor describes who receives a destination's data, for policies and
// the records-of-processing report.
type Processor struct {
	Name       string `yaml:"name" json:"name"`
	DPA        string `yaml:"dpa" json:"dpa"`
	Purpose    string `yaml:"purpose" json:"purpose"`
	LegalBasis string `yaml:"legal_basis" json:"legal_basis"`
}

// Duration is a time.Duration written as "5s", "72h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// DefaultMaxBodyBytes is the inbound body limit when the config sets none.
const DefaultMaxBodyBytes = 1 << 20

// ParseConfig expands ${VAR} and ${VAR:-default} in every scalar of the
// YAML document, decodes it strictly (unknown keys are errors), applies
// defaults and validates. lookup reads the environment (os.LookupEnv when nil).
func ParseConfig(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	// Expand inside scalars only, so a variable's value can never add YAML structure.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	var missing []string
	expandNode(&doc, lookup, &missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("config: environment variable %s is not set and has no default", strings.Join(missing, ", "))
	}
	expanded, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("re-encode config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadConfig reads and parses the config file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, nil)
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

func expandNode(n *yaml.Node, lookup func(string) (string, bool), missing *[]string) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		n.Value = varRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := varRef.FindStringSubmatch(ref)
			if v, ok := lookup(m[1]); ok && v != "" {
				return v
			}
			if m[2] != "" {
				return m[3]
			}
			*missing = append(*missing, m[1])
			return ""
		})
		n.Style = yaml.DoubleQuotedStyle // an expanded value stays a string
		return
	}
	for _, c := range n.Content {
		expandNode(c, lookup, missing)
	}
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Policies == "" {
		c.Policies = "./policies"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Retention.Payload == 0 {
		c.Retention.Payload = Duration(72 * time.Hour)
	}
	if c.Retention.Audit == 0 {
		c.Retention.Audit = Duration(8760 * time.Hour)
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Tolerance == 0 {
			s.Tolerance = Duration(5 * time.Minute)
		}
		if s.HMAC != nil && s.HMAC.Encoding == "" {
			s.HMAC.Encoding = "hex"
		}
		if s.API != nil && s.API.Timeout == 0 {
			s.API.Timeout = Duration(10 * time.Second)
		}
	}
	for i := range c.Destinations {
		d := &c.Destinations[i]
		if d.Timeout == 0 {
			d.Timeout = Duration(10 * time.Second)
		}
		if d.Retry.MaxAttempts == 0 {
			d.Retry.MaxAttempts = 10
		}
		if len(d.Retry.Backoff) == 0 {
			d.Retry.Backoff = []Duration{Duration(5 * time.Second), Duration(30 * time.Second),
				Duration(2 * time.Minute), Duration(10 * time.Minute), Duration(time.Hour)}
		}
		if d.Concurrency == 0 {
			d.Concurrency = 4
		}
	}
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate reports the first problem in c, naming its path in the file.
func (c *Config) Validate() error {
	if c.AdminToken == "" {
		return fmt.Errorf("config: admin_token: required")
	}
	for _, k := range []struct{ path, val string }{{"keys.vault", c.Keys.Vault}, {"keys.pseudonym", c.Keys.Pseudonym}} {
		if _, err := DecodeKey(k.val); err != nil {
			return fmt.Errorf("config: %s: %w", k.path, err)
		}
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("config: max_body_bytes: must be positive")
	}
	if c.Retention.Payload < 0 || c.Retention.Audit < 0 {
		return fmt.Errorf("config: retention: durations must be positive")
	}
	seen := map[string]bool{}
	for i, s := range c.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		switch {
		case !namePattern.MatchString(s.Name):
			return fmt.Errorf("config: %s.name: %q must be lower-case letters, digits, - or _", p, s.Name)
		case seen[s.Name]:
			return fmt.Errorf("config: %s.name: duplicate source %q", p, s.Name)
		case !slices.Contains(Vendors, s.Vendor):
			return fmt.Errorf("config: %s.vendor: %q is not one of %s", p, s.Vendor, strings.Join(Vendors, ", "))
		case s.Secret == "":
			return fmt.Errorf("config: %s.secret: required (a source without a secret would accept forged events)", p)
		case s.Tolerance < 0:
			return fmt.Errorf("config: %s.tolerance: must be positive", p)
		}
		seen[s.Name] = true
		switch s.Lookup {
		case "", "vault":
		case "upstream":
			if s.Vendor != VendorGreenhouse && s.Vendor != VendorLever {
				return fmt.Errorf("config: %s.lookup: upstream mode exists for greenhouse and lever sources", p)
			}
			if s.API == nil || s.API.BaseURL == "" || s.API.Key == "" {
				return fmt.Errorf("config: %s.api: base_url and key are required for lookup: upstream", p)
			}
		default:
			return fmt.Errorf("config: %s.lookup: %q is not vault or upstream", p, s.Lookup)
		}
		if s.Vendor == VendorStandard {
			if _, err := DecodeStandardSecret(s.Secret); err != nil {
				return fmt.Errorf("config: %s.secret: %w", p, err)
			}
		}
		if s.Vendor == VendorHMAC {
			if s.HMAC == nil || s.HMAC.Header == "" {
				return fmt.Errorf("config: %s.hmac.header: required for vendor hmac", p)
			}
			if s.HMAC.Encoding != "hex" && s.HMAC.Encoding != "base64" {
				return fmt.Errorf("config: %s.hmac.encoding: %q is not hex or base64", p, s.HMAC.Encoding)
			}
		} else if s.HMAC != nil {
			return fmt.Errorf("config: %s.hmac: only for vendor hmac", p)
		}
	}
	dests := map[string]bool{}
	for i, d := range c.Destinations {
		p := fmt.Sprintf("destinations[%d]", i)
		if !namePattern.MatchString(d.Name) {
			return fmt.Errorf("config: %s.name: %q must be lower-case letters, digits, - or _", p, d.Name)
		}
		if dests[d.Name] {
			return fmt.Errorf("config: %s.name: duplicate destination %q", p, d.Name)
		}
		dests[d.Name] = true
		u, err := url.Parse(d.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: %s.url: must be an absolute http or https URL", p)
		}
		if len(d.Sources) == 0 {
			return fmt.Errorf("config: %s.sources: name at least one source", p)
		}
		for j, s := range d.Sources {
			if !seen[s] {
				return fmt.Errorf("config: %s.sources[%d]: unknown source %q", p, j, s)
			}
		}
		if d.Policy == "" {
			return fmt.Errorf("config: %s.policy: required (the Rego package, e.g. veil.destinations.slack_hiring)", p)
		}
		if d.Timeout < 0 || d.Retry.MaxAttempts < 1 || d.Concurrency < 1 {
			return fmt.Errorf("config: %s: timeout, retry.max_attempts and concurrency must be positive", p)
		}
		for j, b := range d.Retry.Backoff {
			if b <= 0 {
				return fmt.Errorf("config: %s.retry.backoff[%d]: must be positive", p, j)
			}
		}
	}
	return nil
}

// Source returns the source named name, or nil.
func (c *Config) Source(name string) *Source {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i]
		}
	}
	return nil
}

// DecodeKey decodes a base64 (standard or URL, padded or not) 32-byte key.
func DecodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("required (base64 of 32 bytes)")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("decodes to %d bytes, want 32", len(b))
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("not valid base64")
}

// DecodeStandardSecret decodes a Standard Webhooks secret, whsec_<base64>.
func DecodeStandardSecret(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil {
		return nil, fmt.Errorf("a Standard Webhooks secret is whsec_ followed by base64")
	}
	if len(b) < 16 {
		return nil, fmt.Errorf("a Standard Webhooks secret decodes to at least 16 bytes")
	}
	return b, nil
}
