package console

// Single sign-on: OpenID Connect's authorisation code flow with PKCE
// (go-oidc verifies the ID token against the issuer's keys; x/oauth2
// makes the requests). The state, nonce and PKCE verifier of a login
// under way are kept in the store under the state, used once, and bound
// to the browser that started the login by a cookie only it holds.

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
)

// PendingStore keeps logins under way (audit.Store).
type PendingStore interface {
	// PutPending keeps data under key for ttl from now, or refuses with
	// EUNAVAILABLE when too many logins are under way.
	PutPending(ctx context.Context, key, data string, now time.Time, ttl time.Duration) error
	TakePending(ctx context.Context, key string) (data string, expires time.Time, ok bool, err error)
}

// OIDC logs people in through an OpenID Connect provider.
type OIDC struct {
	Config  veil.OIDCConfig
	Pending PendingStore
	// Client makes the requests to the provider; nil means one with a
	// 10-second timeout.
	Client *http.Client

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use, again after a failure
	endURL   string         // the provider's end_session_endpoint, if any
}

const (
	oidcCookie = "veil_console_oidc" // binds a login under way to its browser
	oidcTTL    = 10 * time.Minute
)

// pendingLogin is what a login under way keeps until its callback.
type pendingLogin struct {
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Browser  string `json:"browser"` // the cookie's value
}

func (o *OIDC) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return defaultOIDCClient
}

// defaultOIDCClient is OIDC's client when none is set: one, so its
// connections to the provider are reused.
var defaultOIDCClient = &http.Client{Timeout: 10 * time.Second}

// discover returns the provider, reading its discovery document the first
// time (a provider down at start does not stop the console).
func (o *OIDC) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	// The key set fetches later on a context of its own: give it the
	// client, not the request's deadline.
	dctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), o.client()), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, o.Config.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery of %s: %w", o.Config.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&extra)
	o.provider, o.endURL = p, extra.EndSession
	return p, nil
}

func (o *OIDC) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: o.Config.ClientID, ClientSecret: o.Config.ClientSecret, RedirectURL: o.Config.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, o.Config.Scopes...)}
}

// endSession is where to send the browser after a logout, so the
// provider ends its session too ("" when it names no such endpoint).
func (o *OIDC) endSession(ctx context.Context) string {
	if _, err := o.discover(ctx); err != nil || o.endURL == "" {
		return ""
	}
	u, err := url.Parse(o.endURL)
	if err != nil {
		return ""
	}
	// RP-Initiated Logout 1.0: client_id stands in for the ID token Veil
	// does not keep; the provider sends the browser back to the login page.
	q := u.Query()
	q.Set("client_id", o.Config.ClientID)
	if back, err := url.Parse(o.Config.RedirectURL); err == nil {
		back.Path, back.RawQuery = "/console/login", ""
		q.Set("post_logout_redirect_uri", back.String())
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// roles maps the groups of the ID token's roles claim to Veil's roles.
func (o *OIDC) roles(claims map[string]any) []string {
	var groups []string
	switch v := claims[o.Config.RolesClaim].(type) {
	case string:
		groups = []string{v}
	case []any:
		for _, g := range v {
			if s, ok := g.(string); ok {
				groups = append(groups, s)
			}
		}
	}
	var out []string
	for _, g := range groups {
		out = append(out, o.Config.RoleMap[g]...)
	}
	return veil.SortRoles(out)
}

// oidcLogin starts a login: state, nonce and PKCE verifier kept under the
// state, then off to the provider.
func (c *Console) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if c.throttled(w, r) {
		return
	}
	p, err := c.OIDC.discover(c.life)
	if err != nil {
		c.fault(w, "The identity provider could not be reached", err)
		return
	}
	state, nonce, browser := randomToken(), randomToken(), randomToken()
	verifier := oauth2.GenerateVerifier()
	data, _ := json.Marshal(pendingLogin{Nonce: nonce, Verifier: verifier, Browser: browser})
	if err := c.OIDC.Pending.PutPending(r.Context(), state, string(data), c.Now(), oidcTTL); veil.ErrorCode(err) == veil.EUNAVAILABLE {
		c.fail(w, http.StatusServiceUnavailable, "Too many logins are under way; try again in a few minutes.")
		return
	} else if err != nil {
		c.fault(w, "The login could not be started", err)
		return
	}
	// Lax: the provider's redirect back is a top-level navigation from
	// another site, which a Strict cookie would miss.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: browser, Path: "/console/oidc", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: secure(r), MaxAge: int(oidcTTL / time.Second)})
	http.Redirect(w, r, c.OIDC.oauth(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusSeeOther)
}

// errSSO is a refused single sign-on answer; the log says why, the page
// only that it was refused.
var errSSO = errors.New("single sign-on refused")

// oidcCallback finishes a login: the state is taken (once), the code
// exchanged with the verifier, the ID token verified (signature by the
// issuer's keys, issuer, audience, expiry by the console's clock) and its
// nonce compared; the person's groups give her roles.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if c.throttled(w, r) {
		return
	}
	se, err := c.oidcFinish(w, r)
	if err != nil {
		c.Guard.Failed(auth.SurfaceConsole, auth.ReasonSSO, auth.Address(r), "")
		c.Logger.Warn("console single sign-on refused", "err", err)
		if errors.Is(err, errSSO) {
			http.Redirect(w, r, "/console/login?failed=sso", http.StatusSeeOther)
			return
		}
		c.fault(w, "The login could not be finished", err)
		return
	}
	if _, err := c.startSession(w, r, se); err != nil {
		c.fault(w, "The session could not be started", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/console/oidc", MaxAge: -1})
	// The session cookie is SameSite=Strict, and this request came from
	// the provider's site: a redirect would carry that navigation's
	// cross-site origin and the cookie would not be sent. A page of our
	// own moves on instead (a same-site navigation).
	c.render(w, http.StatusOK, "continue", page{Title: "Logged in"})
}

func (c *Console) oidcFinish(w http.ResponseWriter, r *http.Request) (*veil.Session, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("%w: the provider answered %.64q", errSSO, e)
	}
	state, code := q.Get("state"), q.Get("code")
	if state == "" || code == "" {
		return nil, fmt.Errorf("%w: no state or code", errSSO)
	}
	data, expires, ok, err := c.OIDC.Pending.TakePending(r.Context(), state)
	if err != nil {
		return nil, err
	}
	if !ok || !c.Now().Before(expires) {
		return nil, fmt.Errorf("%w: unknown, used or expired state", errSSO)
	}
	var pl pendingLogin
	if err := json.Unmarshal([]byte(data), &pl); err != nil {
		return nil, err
	}
	ck, err := r.Cookie(oidcCookie)
	if err != nil || !hmac.Equal([]byte(ck.Value), []byte(pl.Browser)) {
		return nil, fmt.Errorf("%w: the login was started in another browser", errSSO)
	}
	p, err := c.OIDC.discover(c.life)
	if err != nil {
		return nil, err
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, c.OIDC.client())
	tok, err := c.OIDC.oauth(p).Exchange(ctx, code, oauth2.VerifierOption(pl.Verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: code exchange: %v", errSSO, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: no id_token in the token response", errSSO)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: c.OIDC.Config.ClientID, Now: c.Now}).Verify(oidc.ClientContext(ctx, c.OIDC.client()), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: id token: %v", errSSO, err)
	}
	if !hmac.Equal([]byte(idt.Nonce), []byte(pl.Nonce)) {
		return nil, fmt.Errorf("%w: nonce mismatch", errSSO)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", errSSO, err)
	}
	roles := c.OIDC.roles(claims)
	if len(roles) == 0 {
		return nil, fmt.Errorf("%w: none of the person's groups (claim %s) is in role_map", errSSO, c.OIDC.Config.RolesClaim)
	}
	who := idt.Subject
	if email, _ := claims["email"].(string); email != "" && claims["email_verified"] != false {
		who = email
	}
	if veil.CheckUserName(who) != nil {
		who = idt.Subject
	}
	return &veil.Session{Actor: veil.ActorUser + who, Roles: roles, Subject: idt.Subject, Via: "oidc"}, nil
}
