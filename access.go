package veil

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Roles: what a person or a token may do. A principal may hold several.
const (
	// RoleAdmin configures: destinations' policies, consumers, replays,
	// pauses, retention runs.
	RoleAdmin = "admin"
	// RoleReviewer approves or rejects held deliveries and sees their
	// minimised bodies.
	RoleReviewer = "reviewer"
	// RolePrivacy answers data subjects: access reports, erasure, lifting
	// a tombstone.
	RolePrivacy = "privacy"
	// RoleAuditor reads: the audit log, the chain's status, reports in
	// categories; never a payload value or a held body.
	RoleAuditor = "auditor"
)

// AllRoles lists the roles, in the order pages and commands show them.
var AllRoles = []string{RoleAdmin, RoleReviewer, RolePrivacy, RoleAuditor}

// ParseRoles reads a comma-separated list of roles (each once, known),
// sorted as AllRoles.
func ParseRoles(s string) ([]string, error) {
	var out []string
	for r := range strings.SplitSeq(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(AllRoles, r) {
			return nil, Errorf(EINVALID, "Unknown role %q: the roles are %s.", r, strings.Join(AllRoles, ", "))
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, Errorf(EINVALID, "Name at least one role: %s.", strings.Join(AllRoles, ", "))
	}
	return SortRoles(out), nil
}

// SortRoles returns roles without repeats, in AllRoles' order.
func SortRoles(roles []string) []string {
	var out []string
	for _, r := range AllRoles {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	return out
}

// Principal is who acts: a person logged in to the console, a person's
// or a service's API token, or a break-glass token of the config. Actor
// is how the audit log names it: user:priya@example.com, token:ci-export,
// break-glass:admin.
type Principal struct {
	Actor string
	Roles []string
}

// Actor prefixes.
const (
	ActorUser       = "user:"
	ActorToken      = "token:"
	ActorBreakGlass = "break-glass:"
)

// Has reports whether p holds role.
func (p *Principal) Has(role string) bool { return p != nil && slices.Contains(p.Roles, role) }

// HasAny reports whether p holds one of roles.
func (p *Principal) HasAny(roles ...string) bool {
	for _, r := range roles {
		if p.Has(r) {
			return true
		}
	}
	return false
}

// Person reports whether p is a named person or token (not a break-glass
// token shared by whoever holds the config).
func (p *Principal) Person() bool { return p != nil && !strings.HasPrefix(p.Actor, ActorBreakGlass) }

// BreakGlass returns the principal of a config token: the admin token
// holds every role (it is what recovers a locked-out installation), the
// auditor token the auditor's.
func BreakGlass(which string) *Principal {
	if which == RoleAdmin {
		return &Principal{Actor: ActorBreakGlass + RoleAdmin, Roles: slices.Clone(AllRoles)}
	}
	return &Principal{Actor: ActorBreakGlass + which, Roles: []string{which}}
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, nil if none.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// userName is what a local user may be called: an email address or a
// plain name. It appears in audit rows as user:NAME.
var userName = regexp.MustCompile(`^[A-Za-z0-9._%+-]{1,64}(@[A-Za-z0-9.-]{1,190})?$`)

// CheckUserName validates a local user's name.
func CheckUserName(name string) error {
	if !userName.MatchString(name) {
		return Errorf(EINVALID, "A user name is an email address or up to 64 letters, digits, dots, hyphens or underscores.")
	}
	return nil
}

// tokenName is what an API token may be called.
var tokenName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// CheckTokenName validates an API token's name.
func CheckTokenName(name string) error {
	if !tokenName.MatchString(name) {
		return Errorf(EINVALID, "A token name is 1 to 64 lower-case letters, digits, dots, hyphens or underscores.")
	}
	return nil
}

// User is a local user (an installation without an identity provider).
// The password's hash never leaves the store.
type User struct {
	Name        string    `json:"name"`
	Roles       []string  `json:"roles"`
	CreatedAt   time.Time `json:"created_at"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// MustChange is set while the password is the one-time one `veil user
	// add` printed: the first login must choose another.
	MustChange bool `json:"must_change"`
	Disabled   bool `json:"disabled"`
}

// APIToken is a per-person or per-service token: the secret is shown
// once; the store keeps a keyed hash.
type APIToken struct {
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

// State says whether t works at now: "live", "expired" or "revoked".
func (t APIToken) State(now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked"
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return "expired"
	}
	return "live"
}

// Session is a console login bound to a person: who (the actor, and for
// single sign-on the provider's subject), her roles, and when it ends.
type Session struct {
	Actor   string
	Roles   []string
	Subject string // the identity provider's sub, "" for a local login
	CSRF    string
	Via     string // "oidc", "password", "break-glass"
	// MustChange: the login used a one-time password; nothing but
	// choosing a new one is allowed.
	MustChange bool
	Created    time.Time
	Seen       time.Time
	Expires    time.Time // absolute expiry
}

// Principal returns who the session acts as.
func (s *Session) Principal() *Principal { return &Principal{Actor: s.Actor, Roles: s.Roles} }

// Approval is one person's approval of a held delivery that needs more
// than one.
type Approval struct {
	Actor string    `json:"actor"`
	At    time.Time `json:"at"`
}

// ReviewRule is what a held delivery's approval needs: how many
// different people, and who may not be one of them (the last to change
// the destination's policy; "" for nobody).
type ReviewRule struct {
	Approvers int
	Barred    string
}

// ReviewConfig is a destination's review: enabled (review: true), and how
// many different people must approve (review: {approvers: 2}).
type ReviewConfig struct {
	Enabled   bool
	Approvers int // 1 unless four-eyes
}

// UnmarshalYAML reads review: true|false or review: {approvers: N}.
func (r *ReviewConfig) UnmarshalYAML(unmarshal func(any) error) error {
	var b bool
	if err := unmarshal(&b); err == nil {
		*r = ReviewConfig{Enabled: b, Approvers: 1}
		return nil
	}
	var m struct {
		Approvers int `yaml:"approvers"`
	}
	if err := unmarshal(&m); err != nil {
		return fmt.Errorf("review is true, false or {approvers: N}")
	}
	if m.Approvers == 0 {
		m.Approvers = 1
	}
	*r = ReviewConfig{Enabled: true, Approvers: m.Approvers}
	return nil
}

// MarshalYAML writes the short form when one approver suffices.
func (r ReviewConfig) MarshalYAML() (any, error) {
	if !r.Enabled || r.Approvers <= 1 {
		return r.Enabled, nil
	}
	return map[string]int{"approvers": r.Approvers}, nil
}
