package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
)

// gate authenticates the admin API's requests: the config's break-glass
// tokens (compared by keyed digest) and the API tokens of the store.
type gate struct {
	Tokens TokenStore // nil: the break-glass tokens only
	Guard  *auth.Guard
	Logger *slog.Logger
	// tokenKey keys the digests tokens are compared by.
	tokenKey    []byte
	adminDigest []byte
	// auditorDigest is the auditor token's digest, nil without one.
	auditorDigest []byte
}

func newGate(cfg *veil.Config, tokens TokenStore, guard *auth.Guard, log *slog.Logger) *gate {
	g := &gate{Tokens: tokens, Guard: guard, Logger: log, tokenKey: make([]byte, 32)}
	rand.Read(g.tokenKey)
	g.adminDigest = g.tokenDigest(cfg.AdminToken)
	if cfg.AuditorToken != "" {
		g.auditorDigest = g.tokenDigest(cfg.AuditorToken)
	}
	return g
}

// tokenDigest is what tokens are compared by: keyed digests of equal
// length, so the comparison leaks neither content nor length.
func (g *gate) tokenDigest(token string) []byte {
	m := hmac.New(sha256.New, g.tokenKey)
	m.Write([]byte(token))
	return m.Sum(nil)
}

// principal returns who the Authorization header's bearer token acts
// as: a break-glass token of the config (compared by keyed digest) or a
// live API token of the store; nil when it is neither.
func (g *gate) principal(ctx context.Context, authorization string) (*veil.Principal, error) {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || token == "" {
		return nil, nil
	}
	d := g.tokenDigest(token)
	switch {
	case hmac.Equal(d, g.adminDigest):
		return veil.BreakGlass(veil.RoleAdmin), nil
	case g.auditorDigest != nil && hmac.Equal(d, g.auditorDigest):
		return veil.BreakGlass(veil.RoleAuditor), nil
	case g.Tokens == nil || !strings.HasPrefix(token, "vt_"):
		return nil, nil
	}
	p, err := g.Tokens.TokenPrincipal(ctx, token)
	if veil.ErrorCode(err) == veil.EUNAUTHORIZED {
		return nil, nil
	}
	return p, err
}

// require wraps h with a check of the Authorization header: a token whose
// principal holds one of roles, carried in the request's context for
// the audit rows h writes. Failures are throttled per address (past the
// budget even the right token waits) and audited in aggregate; a token
// without the role is 403; each API token's uses are audited, one row per
// token and minute.
func (g *gate) require(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		addr := auth.Address(r)
		if wait := g.Guard.Wait(auth.SurfaceAdminAPI, addr, ""); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(w, r, g.Logger, veil.Errorf(veil.ERATELIMITED, "Too many failed attempts from this address; retry in %d g.", int(wait.Seconds())+1))
			return
		}
		p, err := g.principal(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			writeError(w, r, g.Logger, err)
			return
		}
		if p == nil {
			g.Guard.Failed(auth.SurfaceAdminAPI, auth.ReasonInvalid, addr, "")
			writeError(w, r, g.Logger, veil.Errorf(veil.EUNAUTHORIZED, "A valid token with the %s role is required (Authorization: Bearer …).",
				strings.Join(roles, " or ")))
			return
		}
		if strings.HasPrefix(p.Actor, veil.ActorToken) {
			g.Guard.Used(auth.SurfaceAdminAPI, p.Actor)
		}
		if !p.HasAny(roles...) {
			writeError(w, r, g.Logger, veil.Errorf(veil.EFORBIDDEN, "This needs the %s role; %s has %s.", strings.Join(roles, " or "),
				p.Actor, strings.Join(p.Roles, ", ")))
			return
		}
		h(w, r.WithContext(veil.WithPrincipal(r.Context(), p)))
	}
}

// actor names who a request authenticated by require acts as.
func actor(r *http.Request) string {
	if p := veil.PrincipalFrom(r.Context()); p != nil {
		return p.Actor
	}
	return "unknown"
}
