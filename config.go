package veil

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the contents of veil.yaml.
type Config struct {
	Listen     string `yaml:"listen"`
	DataDir    string `yaml:"data_dir"`
	AdminToken string `yaml:"admin_token"`
	// AuditorToken (optional) logs in to the console read-only.
	AuditorToken string     `yaml:"auditor_token"`
	Keys         KeysConfig `yaml:"keys"`
	// Dir is the folder relative paths are resolved from (the config
	// file's); set by Resolve.
	Dir       string    `yaml:"-"`
	Retention Retention `yaml:"retention"`
	Policies  string    `yaml:"policies"`
	// PolicyWatch (default true) reloads the policy folder when its files
	// change, audited as veil's. Set it false where who changed a policy
	// must be known (four-eyes review): then only veil policy reload, the
	// console's button or SIGHUP loads a change.
	PolicyWatch *bool `yaml:"policy_watch"`
	// PolicyTimeout bounds one policy decision; 0 means 100ms. A decision
	// that runs out is blocked (policy_timeout), never retried.
	PolicyTimeout Duration `yaml:"policy_timeout"`
	MaxBodyBytes  int64    `yaml:"max_body_bytes"` // 0 means 1 MiB
	// MaxConnections bounds open inbound connections; 0 means 1024.
	MaxConnections int `yaml:"max_connections"`
	// MaxDepth bounds the nesting of a webhook's JSON body; 0 means 64.
	MaxDepth     int           `yaml:"max_depth"`
	Lookup       LookupConfig  `yaml:"lookup"`
	Storage      StorageConfig `yaml:"storage"`
	Sources      []Source      `yaml:"sources"`
	Destinations []Destination `yaml:"destinations"`
	// Subjects says how Veil tells one person's records apart from
	// another's.
	Subjects SubjectsConfig `yaml:"subjects"`
	// Controller names who is responsible for the processing, for the
	// access reports (Art. 15) and the records of processing (Art. 30).
	Controller ControllerConfig `yaml:"controller"`
	// SecurityMeasures are the controller's own technical and
	// organisational measures (Art. 30(1)(g)), listed after those Veil
	// takes itself.
	SecurityMeasures []string `yaml:"security_measures"`
	// Alerts, when set, tells people when deliveries start failing.
	Alerts *AlertsConfig `yaml:"alerts"`
	// Auth says how people log in to the console: single sign-on, and how
	// long a session lasts.
	Auth AuthConfig `yaml:"auth"`
}

// AuthConfig: console logins. Without OIDC, people log in as local users
// (veil user add) or with a break-glass token.
type AuthConfig struct {
	OIDC *OIDCConfig `yaml:"oidc"`
	// SessionIdle ends a session nobody used for this long (default 30m);
	// SessionMax ends every session this long after login (default 8h).
	SessionIdle Duration `yaml:"session_idle"`
	SessionMax  Duration `yaml:"session_max"`
}

// OIDCConfig is an OpenID Connect provider the console logs in through
// (authorisation code flow with PKCE).
type OIDCConfig struct {
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// RedirectURL is the console's callback as registered at the provider:
	// https://veil.example.com/console/oidc/callback.
	RedirectURL string `yaml:"redirect_url"`
	// RolesClaim is the ID token's claim that lists the person's groups
	// (default "groups"); RoleMap maps each group to Veil's roles. A
	// person none of whose groups is mapped cannot log in.
	RolesClaim string              `yaml:"roles_claim"`
	RoleMap    map[string][]string `yaml:"role_map"`
	// Scopes are asked for besides openid (default: email, profile).
	Scopes []string `yaml:"scopes"`
	// Label is the login button's text (default "Log in with single sign-on").
	Label string `yaml:"label"`
}

// SubjectsConfig: how references are linked to one person.
type SubjectsConfig struct {
	// LinkByEmail links references from different sources by a keyed hash
	// of the candidate's normalised email: one person across two ATSs is
	// one subject.
	LinkByEmail bool `yaml:"link_by_email"`
}

// ControllerConfig is the controller of the processing (GDPR Art. 4(7)),
// as the reports name it. Every field is optional; a report says what is
// not configured.
type ControllerConfig struct {
	Name           string `yaml:"name" json:"name"`
	Contact        string `yaml:"contact" json:"contact"`
	DPO            string `yaml:"dpo" json:"dpo"`                       // the data protection officer's contact
	Representative string `yaml:"representative" json:"representative"` // Art. 27, for a controller outside the EU
	// SupervisoryAuthority is where a data subject may lodge a complaint
	// (Art. 15(1)(f)), e.g. "Information Commissioner's Office, ico.org.uk".
	SupervisoryAuthority string `yaml:"supervisory_authority" json:"supervisory_authority"`
	// AutomatedDecisions is the statement on automated decision-making,
	// profiling included (Art. 15(1)(h)); "" means there is none.
	AutomatedDecisions string `yaml:"automated_decisions" json:"automated_decisions"`
	// Source says where personal data not collected from the person comes
	// from (Art. 15(1)(g)); "" means the report names the ATS sources.
	Source string `yaml:"source" json:"source"`
}

// StorageConfig chooses the store: SQLite in data_dir (the default, no
// setup) or PostgreSQL, which several serve replicas can share.
type StorageConfig struct {
	Driver string `yaml:"driver"` // "sqlite" (default) or "postgres"
	// DSN is PostgreSQL's connection string, a URL
	// (postgres://user:password@host:5432/db?sslmode=…) or key=value pairs.
	DSN string `yaml:"dsn"`
}

// Storage drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// LookupConfig bounds each consumer's lookups (a token bucket).
type LookupConfig struct {
	Rate  float64 `yaml:"rate"`  // lookups per second; 0 means 50
	Burst int     `yaml:"burst"` // 0 means 100
}

// KeysConfig holds the base64-encoded 32-byte master keys.
type KeysConfig struct {
	Vault     string `yaml:"vault"`     // AES-256-GCM key wrapping per-subject data keys
	Pseudonym string `yaml:"pseudonym"` // HMAC key for pseudonyms and subject hashes
	// Receipt (optional) is base64 of the 32-byte Ed25519 seed erasure
	// receipts are signed with; "" means a key the store generates on first
	// start and keeps sealed under the vault key.
	Receipt string `yaml:"receipt"`
}

// VaultKey and PseudonymKey are the keys, decoded. Validate refuses a
// config whose keys do not decode, so on a loaded config they cannot fail;
// on one that skipped it they panic rather than hand out an empty key.
func (k KeysConfig) VaultKey() []byte { return mustKey("keys.vault", k.Vault) }

// PseudonymKey: see VaultKey.
func (k KeysConfig) PseudonymKey() []byte { return mustKey("keys.pseudonym", k.Pseudonym) }

func mustKey(name, v string) []byte {
	b, err := DecodeKey(v)
	if err != nil {
		panic(fmt.Sprintf("config: %s: %v (the config was not validated)", name, err))
	}
	return b
}

// Retention says how long Veil keeps payloads and audit rows, and how
// often serve applies it.
type Retention struct {
	Payload Duration `yaml:"payload"`
	Audit   Duration `yaml:"audit"`
	Every   Duration `yaml:"every"` // 0 means 5m
}

// Source is one inbound webhook sender, reached at POST /hooks/{name}.
type Source struct {
	Name   string `yaml:"name"`
	Vendor string `yaml:"vendor"`
	Secret string `yaml:"secret"`
	// Secrets are further secrets accepted at once, for rotation (new
	// first: `veil send` signs with the first). Empty entries are ignored,
	// so an unset ${OLD_SECRET:-} costs nothing.
	Secrets   []string    `yaml:"secrets"`
	Tolerance Duration    `yaml:"tolerance"` // timestamp tolerance; 0 means 5m
	HMAC      *HMACConfig `yaml:"hmac"`      // vendor hmac only
	// EventTypePath and SubjectPath (gjson paths) override where the event
	// type and the candidate id are read; the vendor default applies when empty.
	EventTypePath string `yaml:"event_type_path"`
	SubjectPath   string `yaml:"subject_path"`
	// Normalize maps a generic (hmac) sender's body onto the normal form.
	Normalize *NormalizeConfig `yaml:"normalize"`
	// Lookup "upstream" keeps no payload: lookups fetch the record from the
	// ATS API (Greenhouse Harvest, Lever). "" or "vault" keeps it encrypted.
	Lookup string     `yaml:"lookup"`
	API    *APIConfig `yaml:"api"`
	// Reconcile polls the ATS API for changes no webhook brought.
	Reconcile *ReconcileConfig `yaml:"reconcile"`
}

// SecretList returns the source's secrets, secret first, without empty ones.
func (s *Source) SecretList() []string {
	var out []string
	for _, v := range append([]string{s.Secret}, s.Secrets...) {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// APIConfig reaches an ATS API, for upstream lookups and reconciliation.
type APIConfig struct {
	// BaseURL is the API's root; "" means the vendor's documented one
	// (DefaultAPIBase).
	BaseURL string `yaml:"base_url"`
	// Key is Lever's and Ashby's API key, sent as the HTTP Basic user.
	Key string `yaml:"key"`
	// ClientID, ClientSecret and UserID are Greenhouse Harvest v3's OAuth
	// 2.0 client credentials and the user the token acts as (its sub).
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	UserID       string `yaml:"user_id"`
	// TokenURL is where Harvest v3 tokens come from; "" means
	// https://auth.greenhouse.io/token.
	TokenURL string   `yaml:"token_url"`
	Timeout  Duration `yaml:"timeout"` // per request; 0 means 10s
	// Rate is the requests per second Veil allows itself at most; 0 means
	// under the vendor's documented limit (Lever 9/s, under its 10/s;
	// Greenhouse and Ashby 5/s). Whatever the rate, Veil pauses when the
	// API's rate-limit headers say the window is spent.
	Rate float64 `yaml:"rate"`
	// Confidential asks Lever for confidential opportunities too
	// (confidentiality=all); off, Lever leaves them out of every list, and
	// reconciliation never sees them. The API key must be allowed them.
	Confidential bool `yaml:"confidential"`
	// AllowPrivateNetwork lets the API resolve to a loopback or private
	// address (the SSRF guard applies to ATS APIs as to destinations).
	AllowPrivateNetwork bool `yaml:"allow_private_network"`
}

// DefaultAPIBase is each vendor's documented API root, used when a
// source's api block names none: Harvest v3
// (https://harvestdocs.greenhouse.io), Lever
// (https://hire.lever.co/developer/documentation), Ashby
// (https://developers.ashbyhq.com).
var DefaultAPIBase = map[string]string{
	VendorGreenhouse: "https://harvest.greenhouse.io/v3",
	VendorLever:      "https://api.lever.co",
	VendorAshby:      "https://api.ashbyhq.com",
}

// noSmartRecruitersClient says why a SmartRecruiters source cannot have
// an api block.
const noSmartRecruitersClient = "Veil has no SmartRecruiters API client, so no reconciliation or upstream lookup for it: " +
	"the reference Veil's clients are written from confirms its candidate search pages (limit up to 100, pageId and nextPageId) " +
	"but not the shape of the listed applications, and a client written on guesses reports nothing true. " +
	"SmartRecruiters web hooks work as before (lookup: vault)."

// ReconcileConfig schedules reconciliation passes for a source.
type ReconcileConfig struct {
	Every   Duration `yaml:"every"`   // between passes; 0 means 15m
	Overlap Duration `yaml:"overlap"` // listed again before the watermark; 0 means 10m
	// Since is where the first pass starts (RFC 3339); "" means when Veil
	// first reconciles the source, minus overlap.
	Since   string `yaml:"since"`
	PerPage int    `yaml:"per_page"` // records per page; 0 means 100
}

// NormalizeConfig maps a generic sender's body onto the normal form: a
// gjson path into the body for each normal-form field it has, and where
// its event name is and how it maps onto the normal types.
//
//	normalize:
//	  type: { path: event, map: { candidate_created: application.created } }
//	  candidate.id: data.id
//	  candidate.first_name: data.firstname
type NormalizeConfig struct {
	Type   *NormalizeType
	Fields map[string]string // normal-form field -> gjson path
}

// NormalizeType says where a generic sender's event name is and which
// normal type each name is.
type NormalizeType struct {
	Path string            `yaml:"path"`
	Map  map[string]string `yaml:"map"`
}

// UnmarshalYAML reads the type entry and the field paths.
func (n *NormalizeConfig) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: normalize is a mapping of normal-form fields to paths", node.Line)
	}
	n.Fields = map[string]string{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if k.Value == "type" {
			n.Type = &NormalizeType{}
			dec := yaml.NewDecoder(bytes.NewReader(mustMarshal(v)))
			dec.KnownFields(true)
			if err := dec.Decode(n.Type); err != nil {
				return fmt.Errorf("line %d: normalize.type is {path: …, map: {…}}", k.Line)
			}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: normalize.%s: the value is a path into the body", v.Line, k.Value)
		}
		n.Fields[k.Value] = v.Value
	}
	return nil
}

func mustMarshal(n *yaml.Node) []byte {
	b, _ := yaml.Marshal(n)
	return b
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
	Name          string   `yaml:"name"`
	URL           string   `yaml:"url"`
	Sources       []string `yaml:"sources"`
	Policy        string   `yaml:"policy"`
	SigningSecret string   `yaml:"signing_secret"`
	// SigningSecrets sign alongside SigningSecret while a secret rotates:
	// each delivery carries one signature per secret.
	SigningSecrets []string    `yaml:"signing_secrets"`
	Timeout        Duration    `yaml:"timeout"`
	Retry          RetryConfig `yaml:"retry"`
	Concurrency    int         `yaml:"concurrency"`
	// MaxConcurrency is how far concurrency may rise while the destination
	// answers fast (a backlog drains); 0 means 4 × concurrency.
	MaxConcurrency      int       `yaml:"max_concurrency"`
	AllowPrivateNetwork bool      `yaml:"allow_private_network"`
	Processor           Processor `yaml:"processor"`
	// Review holds each allowed delivery until a person approves it (then
	// it is sent) or rejects it (then it never is): review: true, or
	// review: {approvers: 2} for two different people (four eyes), neither
	// of whom changed the destination's policy in the last reload.
	// ReviewTTL (default 72h) is how long it may wait before it expires
	// unsent.
	Review    ReviewConfig `yaml:"review"`
	ReviewTTL Duration     `yaml:"review_ttl"`
	// NotifyErasure sends the destination a signed subject.erased event
	// when a person whose data it received is erased (Art. 19): its own id
	// or pseudonym of the person and the events it received, never a name.
	NotifyErasure bool `yaml:"notify_erasure"`
	// Country is where the recipient processes the data (ISO 3166 code or
	// name), and TransferSafeguard what makes a transfer outside the EEA
	// lawful (Art. 30(1)(e), Art. 46): an adequacy decision, standard
	// contractual clauses, binding corporate rules.
	Country           string `yaml:"country"`
	TransferSafeguard string `yaml:"transfer_safeguard"`
}

// SigningSecretList returns the destination's signing secrets,
// signing_secret first, without empty ones.
func (d *Destination) SigningSecretList() []string {
	var out []string
	for _, v := range append([]string{d.SigningSecret}, d.SigningSecrets...) {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
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
		return fmt.Errorf("line %d: %q is not a duration (write it like 30s, 5m or 72h)", n.Line, n.Value)
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
// defaults and validates, sources against vendors (ats.Vendors). lookup
// reads the environment (os.LookupEnv when nil).
func ParseConfig(data []byte, lookup func(string) (string, bool), vendors Vendors) (*Config, error) {
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
		return nil, decodeError(err)
	}
	c.setDefaults()
	if err := c.Validate(vendors); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadConfig reads and parses the config file at path. Relative paths in
// it (data_dir, policies) are resolved against the file's folder, so the
// same file works from any working directory.
func LoadConfig(path string, vendors Vendors) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config: no file at %s (pass --config PATH)", path)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(data, nil, vendors)
	if err != nil {
		return nil, err
	}
	c.Resolve(filepath.Dir(path))
	return c, nil
}

// Resolve makes the config's relative paths relative to dir.
func (c *Config) Resolve(dir string) {
	c.Dir = dir
	for _, p := range []*string{&c.DataDir, &c.Policies} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// yamlSections names, for a user, the config section each Go type decodes.
var yamlSections = map[string]string{"Config": "at the top level", "Source": "in a source", "Destination": "in a destination",
	"RetryConfig": "in retry", "Processor": "in processor", "KeysConfig": "in keys", "Retention": "in retention",
	"HMACConfig": "in hmac", "APIConfig": "in api", "LookupConfig": "in lookup", "StorageConfig": "in storage",
	"ReconcileConfig": "in reconcile", "NormalizeRule": "in a normalize rule", "SubjectsConfig": "in subjects",
	"ControllerConfig": "in controller", "AlertsConfig": "in alerts", "AlertCount": "in an alert threshold",
	"AlertChannel": "in an alerts.send entry", "AlertEmail": "in email"}

var (
	unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type veil\.(\w+)`)
	badType      = regexp.MustCompile(`line (\d+): cannot unmarshal !!(\w+) .* into (\S+)`)
)

var kindOfYAML = map[string]string{"str": "text", "seq": "a list", "map": "a mapping", "int": "a number",
	"float": "a number", "bool": "true or false", "null": "nothing"}

// kindOfGo names what a Go type is written as in YAML.
func kindOfGo(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "veil."), strings.HasPrefix(t, "*veil."):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	}
	return "text"
}

// decodeError rewrites the YAML decoder's errors as sentences: no Go type
// names, the line and the key.
func decodeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		if msg, ok := strings.CutPrefix(err.Error(), "yaml: "); ok {
			return fmt.Errorf("config: the file is not valid YAML: %s", msg)
		}
		return fmt.Errorf("config: %w", err) // a value's own error, e.g. a duration
	}
	var out []string
	for _, e := range te.Errors {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			where := yamlSections[m[3]]
			if where == "" {
				where = "here"
			}
			out = append(out, fmt.Sprintf("line %s: %q is not a known key %s", m[1], m[2], where))
		} else if m := badType.FindStringSubmatch(e); m != nil {
			out = append(out, fmt.Sprintf("line %s: expected %s here, not %s", m[1], kindOfGo(m[3]), kindOfYAML[m[2]]))
		} else {
			out = append(out, e)
		}
	}
	return fmt.Errorf("config: %s", strings.Join(out, "; "))
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
	if c.Storage.Driver == "" {
		c.Storage.Driver = DriverSQLite
	}
	if c.Policies == "" {
		c.Policies = "./policies"
	}
	if c.PolicyTimeout == 0 {
		c.PolicyTimeout = Duration(100 * time.Millisecond)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 1024
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = 64
	}
	if c.Retention.Payload == 0 {
		c.Retention.Payload = Duration(72 * time.Hour)
	}
	if c.Retention.Audit == 0 {
		c.Retention.Audit = Duration(8760 * time.Hour)
	}
	if c.Retention.Every == 0 {
		c.Retention.Every = Duration(5 * time.Minute)
	}
	if c.Alerts != nil {
		c.Alerts.SetDefaults()
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Tolerance == 0 {
			s.Tolerance = Duration(5 * time.Minute)
		}
		if s.HMAC != nil && s.HMAC.Encoding == "" {
			s.HMAC.Encoding = "hex"
		}
		if s.Reconcile != nil {
			if s.Reconcile.Every == 0 {
				s.Reconcile.Every = Duration(15 * time.Minute)
			}
			if s.Reconcile.Overlap == 0 {
				s.Reconcile.Overlap = Duration(10 * time.Minute)
			}
			if s.Reconcile.PerPage == 0 {
				s.Reconcile.PerPage = 100
			}
		}
		if s.API != nil && s.API.Timeout == 0 {
			s.API.Timeout = Duration(10 * time.Second)
		}
		if s.API != nil && s.API.BaseURL == "" {
			s.API.BaseURL = DefaultAPIBase[s.Vendor]
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
		if d.MaxConcurrency == 0 {
			d.MaxConcurrency = 4 * d.Concurrency
		}
		if d.ReviewTTL == 0 {
			d.ReviewTTL = Duration(72 * time.Hour)
		}
		if d.Review.Enabled && d.Review.Approvers == 0 {
			d.Review.Approvers = 1
		}
	}
	if c.Auth.SessionIdle == 0 {
		c.Auth.SessionIdle = Duration(30 * time.Minute)
	}
	if c.Auth.SessionMax == 0 {
		c.Auth.SessionMax = Duration(8 * time.Hour)
	}
	if o := c.Auth.OIDC; o != nil {
		if o.RolesClaim == "" {
			o.RolesClaim = "groups"
		}
		if o.Scopes == nil {
			o.Scopes = []string{"email", "profile"}
		}
		if o.Label == "" {
			o.Label = "Log in with single sign-on"
		}
	}
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate reports the first problem in c, naming its path in the file;
// a source's vendor must be one of vendors, and pass its check.
func (c *Config) Validate(vendors Vendors) error {
	if c.AdminToken == "" {
		return fmt.Errorf("config: admin_token: required")
	}
	if c.Keys.Receipt != "" {
		if _, err := DecodeKey(c.Keys.Receipt); err != nil {
			return fmt.Errorf("config: keys.receipt: %w (the Ed25519 seed)", err)
		}
	}
	if c.AuditorToken != "" && c.AuditorToken == c.AdminToken {
		return fmt.Errorf("config: auditor_token: must differ from admin_token (it grants read-only access)")
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	for i, d := range c.Destinations {
		if d.Review.Approvers < 0 || d.Review.Approvers > 5 {
			return fmt.Errorf("config: destinations[%d].review.approvers: between 1 and 5", i)
		}
	}
	for _, k := range []struct{ path, val string }{{"keys.vault", c.Keys.Vault}, {"keys.pseudonym", c.Keys.Pseudonym}} {
		if _, err := DecodeKey(k.val); err != nil {
			return fmt.Errorf("config: %s: %w", k.path, err)
		}
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("config: max_body_bytes: must be positive")
	}
	if c.MaxConnections < 8 {
		return fmt.Errorf("config: max_connections: must be at least 8")
	}
	if c.MaxDepth < 2 || c.MaxDepth > 1000 {
		return fmt.Errorf("config: max_depth: must be between 2 and 1000")
	}
	if c.Retention.Payload < 0 || c.Retention.Audit < 0 || c.Retention.Every < 0 {
		return fmt.Errorf("config: retention: durations must be positive")
	}
	if c.PolicyTimeout < Duration(time.Millisecond) || c.PolicyTimeout > Duration(10*time.Second) {
		return fmt.Errorf("config: policy_timeout: between 1ms and 10s (a decision runs on the webhook's request)")
	}
	if c.Retention.Audit < c.Retention.Payload {
		// Past retention.audit the event's rows go too, payload and all.
		return fmt.Errorf("config: retention.audit (%s) is shorter than retention.payload (%s): the audit log and the event rows must outlive the payloads they account for",
			time.Duration(c.Retention.Audit), time.Duration(c.Retention.Payload))
	}
	if c.Alerts != nil {
		if err := c.Alerts.Validate(); err != nil {
			return err
		}
	}
	switch c.Storage.Driver {
	case DriverSQLite:
		if c.Storage.DSN != "" {
			return fmt.Errorf("config: storage.dsn: only for driver postgres; SQLite keeps its file in data_dir")
		}
	case DriverPostgres:
		if c.Storage.DSN == "" {
			return fmt.Errorf("config: storage.dsn: required for driver postgres (postgres://user@host:5432/db)")
		}
	default:
		return fmt.Errorf("config: storage.driver: %q is not sqlite or postgres", c.Storage.Driver)
	}
	seen := map[string]bool{}
	for i, s := range c.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		switch {
		case !namePattern.MatchString(s.Name):
			return fmt.Errorf("config: %s.name: %q must be lower-case letters, digits, - or _", p, s.Name)
		case seen[s.Name]:
			return fmt.Errorf("config: %s.name: duplicate source %q", p, s.Name)
		case vendors[s.Vendor] == nil:
			return fmt.Errorf("config: %s.vendor: %q is not one of %s", p, s.Vendor, strings.Join(vendors.Names(), ", "))
		case len(s.SecretList()) == 0:
			return fmt.Errorf("config: %s.secret: required (a source without a secret would accept forged events)", p)
		case s.Tolerance < 0:
			return fmt.Errorf("config: %s.tolerance: must be positive", p)
		}
		seen[s.Name] = true
		switch s.Lookup {
		case "", "vault", "upstream":
		default:
			return fmt.Errorf("config: %s.lookup: %q is not vault or upstream", p, s.Lookup)
		}
		if err := s.checkAPI(p); err != nil {
			return err
		}
		if s.HMAC != nil && s.Vendor != VendorHMAC {
			return fmt.Errorf("config: %s.hmac: only for vendor hmac", p)
		}
		if s.Normalize != nil && s.Vendor != VendorHMAC {
			return fmt.Errorf("config: %s.normalize: only a generic hmac source needs one; %s events are normalised by Veil", p, s.Vendor)
		}
		if err := vendors[s.Vendor](&c.Sources[i]); err != nil {
			return fmt.Errorf("config: %s.%w", p, err)
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
		if d.MaxConcurrency < d.Concurrency {
			return fmt.Errorf("config: %s.max_concurrency: must be at least concurrency (%d)", p, d.Concurrency)
		}
		for j, b := range d.Retry.Backoff {
			if b <= 0 {
				return fmt.Errorf("config: %s.retry.backoff[%d]: must be positive", p, j)
			}
		}
		for _, secret := range d.SigningSecretList() {
			if _, err := DecodeStandardSecret(secret); err != nil {
				return fmt.Errorf("config: %s.signing_secret: %w", p, err)
			}
		}
	}
	return nil
}

// Vendors are the source vendors a config may name, each with its check
// of a source's vendor-specific settings: an error that starts with the
// key it names, relative to the source ("hmac.header: required for vendor
// hmac"). Package ats has Veil's (ats.Vendors); the caller passes them.
type Vendors map[string]func(*Source) error

// Names returns the vendors' names in order.
func (v Vendors) Names() []string {
	out := make([]string, 0, len(v))
	for name := range v {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// WatchPolicies reports whether serve reloads the policy folder when its
// files change.
func (c *Config) WatchPolicies() bool { return c.PolicyWatch == nil || *c.PolicyWatch }

// Destination returns the destination named name, or nil.
func (c *Config) Destination(name string) *Destination {
	for i := range c.Destinations {
		if c.Destinations[i].Name == name {
			return &c.Destinations[i]
		}
	}
	return nil
}

// DestinationNames returns the destinations' names in config order.
func (c *Config) DestinationNames() []string {
	out := make([]string, len(c.Destinations))
	for i, d := range c.Destinations {
		out[i] = d.Name
	}
	return out
}

// ReconciledSources names the sources that reconcile, in config order.
func (c *Config) ReconciledSources() []string {
	var out []string
	for _, s := range c.Sources {
		if s.Reconcile != nil {
			out = append(out, s.Name)
		}
	}
	return out
}

// SourceNames returns the sources' names in config order.
func (c *Config) SourceNames() []string {
	out := make([]string, len(c.Sources))
	for i, s := range c.Sources {
		out[i] = s.Name
	}
	return out
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

func (a *AuthConfig) validate() error {
	if a.SessionIdle < Duration(time.Minute) || a.SessionMax < a.SessionIdle {
		return fmt.Errorf("config: auth: session_idle is at least 1m and session_max at least session_idle")
	}
	o := a.OIDC
	if o == nil {
		return nil
	}
	u, err := url.Parse(o.Issuer)
	if o.Issuer == "" || err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
		return fmt.Errorf("config: auth.oidc.issuer: an https URL (http only on loopback, for tests)")
	}
	if o.ClientID == "" {
		return fmt.Errorf("config: auth.oidc.client_id: required")
	}
	r, err := url.Parse(o.RedirectURL)
	if o.RedirectURL == "" || err != nil || r.Path != "/console/oidc/callback" || (r.Scheme != "https" && r.Scheme != "http") {
		return fmt.Errorf("config: auth.oidc.redirect_url: the console's callback, https://HOST/console/oidc/callback")
	}
	if len(o.RoleMap) == 0 {
		return fmt.Errorf("config: auth.oidc.role_map: map at least one group to roles (nobody else can log in)")
	}
	for g, roles := range o.RoleMap {
		for _, role := range roles {
			if !slices.Contains(AllRoles, role) {
				return fmt.Errorf("config: auth.oidc.role_map.%s: unknown role %q (%s)", g, role, strings.Join(AllRoles, ", "))
			}
		}
	}
	return nil
}

func isLoopbackHost(h string) bool { return h == "localhost" || h == "127.0.0.1" || h == "::1" }

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

// checkAPI validates a source's api and reconcile blocks.
func (s *Source) checkAPI(p string) error {
	if s.Vendor == VendorSmartRecruiters {
		switch {
		case s.Lookup == "upstream":
			return fmt.Errorf("config: %s.lookup: upstream: %s", p, noSmartRecruitersClient)
		case s.Reconcile != nil:
			return fmt.Errorf("config: %s.reconcile: %s", p, noSmartRecruitersClient)
		case s.API != nil:
			return fmt.Errorf("config: %s.api: %s", p, noSmartRecruitersClient)
		}
	}
	if s.Lookup == "upstream" && s.API == nil {
		return fmt.Errorf("config: %s.api: required for lookup: upstream", p)
	}
	if s.Reconcile != nil && s.API == nil {
		return fmt.Errorf("config: %s.api: required for reconcile", p)
	}
	if r := s.Reconcile; r != nil {
		switch {
		case s.Vendor != VendorGreenhouse && s.Vendor != VendorLever && s.Vendor != VendorAshby:
			return fmt.Errorf("config: %s.reconcile: Veil reconciles greenhouse, lever and ashby sources", p)
		case r.Every < Duration(time.Minute):
			return fmt.Errorf("config: %s.reconcile.every: at least 1m", p)
		case r.Overlap < 0:
			return fmt.Errorf("config: %s.reconcile.overlap: must not be negative", p)
		case r.PerPage < 1 || r.PerPage > 500:
			return fmt.Errorf("config: %s.reconcile.per_page: between 1 and 500", p)
		}
		if r.Since != "" {
			if _, err := time.Parse(time.RFC3339, r.Since); err != nil {
				return fmt.Errorf("config: %s.reconcile.since: not an RFC 3339 time (2026-11-01T00:00:00Z)", p)
			}
		}
	}
	a := s.API
	if a == nil {
		return nil
	}
	u, err := url.Parse(a.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("config: %s.api.base_url: must be an absolute http or https URL", p)
	}
	switch s.Vendor {
	case VendorGreenhouse:
		if a.ClientID == "" || a.ClientSecret == "" || a.UserID == "" {
			return fmt.Errorf("config: %s.api: Harvest v3 needs client_id, client_secret and user_id (Basic-auth keys were retired with v1/v2)", p)
		}
		if a.TokenURL != "" {
			if t, err := url.Parse(a.TokenURL); err != nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" {
				return fmt.Errorf("config: %s.api.token_url: must be an absolute http or https URL", p)
			}
		}
	case VendorLever, VendorAshby:
		if a.Key == "" {
			return fmt.Errorf("config: %s.api.key: required", p)
		}
	default:
		return fmt.Errorf("config: %s.api: Veil has no API client for %s", p, s.Vendor)
	}
	if a.Confidential && s.Vendor != VendorLever {
		return fmt.Errorf("config: %s.api.confidential: only Lever asks for confidential records per request; "+
			"Ashby and Greenhouse show them when the API key or user is allowed them", p)
	}
	if a.Rate < 0 {
		return fmt.Errorf("config: %s.api.rate: must not be negative", p)
	}
	return nil
}
