// Package oidctest is an OpenID Connect provider for tests, written from
// OpenID Connect Core 1.0 (authorisation code flow, §3.1), Discovery 1.0
// and RFC 7636 (PKCE, S256): a discovery document, a JSON Web Key Set, an
// authorisation endpoint with a login form (or a user chosen in advance,
// for tests without a browser), and a token endpoint that checks the
// client's secret, the redirect URI and the code verifier before it
// issues an RS256-signed ID token. Knobs make it misbehave the ways a
// relying party must refuse: a tampered signature, another audience, an
// expired token, another nonce, a key the JWKS does not hold.
//
// The issuer zitadel/oidc's example provider would have been, but it puts
// no groups claim in its ID tokens, which Veil's roles come from.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// User is a person the provider knows.
type User struct {
	Subject, Email, Password string
	Groups                   []string
}

// Provider is a running provider on loopback. Set the knobs before a
// login to make its next ID tokens misbehave.
type Provider struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string

	mu    sync.Mutex
	users map[string]User // by email
	codes map[string]grant
	// AutoLogin, when set, logs this email in without the form.
	AutoLogin string
	// Knobs: Tamper flips a byte of the signature; Audience replaces the
	// aud claim; Lifetime the token's validity (negative: expired);
	// Nonce replaces the nonce; ForeignKey signs with a key not in the
	// JWKS.
	Tamper     bool
	Audience   string
	Lifetime   time.Duration
	Nonce      string
	ForeignKey bool
	// ReusableCodes lets a code be exchanged more than once (a provider
	// that does not enforce single use), so the client's own refusal of a
	// replayed state is what a test sees.
	ReusableCodes bool
	// Now is the provider's clock; nil means time.Now.
	Now func() time.Time

	key, foreign *rsa.PrivateKey
	srv          *http.Server
}

type grant struct {
	user               User
	clientID, redirect string
	nonce, challenge   string
	expires            time.Time
}

// Start runs a provider on 127.0.0.1 for the test's lifetime, with one
// client whose callback is redirectURL.
func Start(t testing.TB, clientID, clientSecret, redirectURL string, users ...User) *Provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	foreign, _ := rsa.GenerateKey(rand.Reader, 2048)
	p := &Provider{Issuer: "http://" + ln.Addr().String(), ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL,
		users: map[string]User{}, codes: map[string]grant{}, key: key, foreign: foreign}
	for _, u := range users {
		p.users[u.Email] = u
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	m.HandleFunc("GET /jwks", p.jwks)
	m.HandleFunc("GET /authorize", p.authorize)
	m.HandleFunc("POST /authorize", p.authorize)
	m.HandleFunc("POST /token", p.token)
	m.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "logged out of the provider") })
	p.srv = &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// SetRedirect changes the client's registered callback (the console's
// address is known only once it runs).
func (p *Provider) SetRedirect(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.RedirectURL = u
}

// Reset clears every knob.
func (p *Provider) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Tamper, p.Audience, p.Lifetime, p.Nonce, p.ForeignKey, p.AutoLogin, p.ReusableCodes = false, "", 0, "", false, "", false
}

// Set changes knobs under the provider's lock.
func (p *Provider) Set(f func(p *Provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// discovery is OpenID Connect Discovery 1.0 §4.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/authorize",
		"token_endpoint":                        p.Issuer + "/token",
		"jwks_uri":                              p.Issuer + "/jwks",
		"end_session_endpoint":                  p.Issuer + "/logout",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"claims_supported":                      []string{"sub", "email", "email_verified", "groups"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

var loginForm = template.Must(template.New("").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head>
<body><main><h1>Test identity provider</h1><form method="post" action="/authorize">
{{range $k, $v := .}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<label>Email <input name="login_email" id="idp-email"></label>
<label>Password <input type="password" name="login_password" id="idp-password"></label>
<button id="idp-login">Sign in</button></form></main></body></html>`))

// authorize is Core §3.1.2: the request is checked, the person logs in,
// and the browser goes back to the client with a code and the state.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	q := r.Form
	p.mu.Lock()
	redirect, auto := p.RedirectURL, p.AutoLogin
	p.mu.Unlock()
	switch {
	case q.Get("client_id") != p.ClientID:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case q.Get("redirect_uri") != redirect: // never redirect to an unregistered URI
		http.Error(w, "redirect_uri is not registered", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(redirect)
	fail := func(code string) {
		v := url.Values{"error": {code}, "state": {q.Get("state")}}
		back.RawQuery = v.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" || !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		fail("invalid_request")
		return
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		fail("invalid_request") // PKCE is required here, as OAuth 2.1 has it
		return
	}
	email := auto
	if email == "" {
		if r.Method == http.MethodGet || q.Get("login_email") == "" {
			params := map[string]string{}
			for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method"} {
				params[k] = q.Get(k)
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			loginForm.Execute(w, params)
			return
		}
		email = q.Get("login_email")
		p.mu.Lock()
		u, ok := p.users[email]
		p.mu.Unlock()
		if !ok || u.Password != q.Get("login_password") {
			fail("access_denied")
			return
		}
	}
	p.mu.Lock()
	u, ok := p.users[email]
	code := rand.Text()
	if ok {
		p.codes[code] = grant{user: u, clientID: p.ClientID, redirect: redirect, nonce: q.Get("nonce"),
			challenge: q.Get("code_challenge"), expires: p.now().Add(time.Minute)}
	}
	p.mu.Unlock()
	if !ok {
		fail("access_denied")
		return
	}
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token is Core §3.1.3: the client authenticates, the code is used once,
// the verifier must hash to the challenge (RFC 7636 §4.6).
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || secret != p.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostForm.Get("code")]
	if found && !p.ReusableCodes {
		delete(p.codes, r.PostForm.Get("code"))
	}
	knobs := struct {
		Tamper, ForeignKey bool
		Audience, Nonce    string
		Lifetime           time.Duration
	}{p.Tamper, p.ForeignKey, p.Audience, p.Nonce, p.Lifetime}
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case r.PostForm.Get("grant_type") != "authorization_code", !found, p.now().After(g.expires),
		r.PostForm.Get("redirect_uri") != g.redirect:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
		return
	}
	now := p.now()
	life := knobs.Lifetime
	if life == 0 {
		life = 5 * time.Minute
	}
	aud, nonce := p.ClientID, g.nonce
	if knobs.Audience != "" {
		aud = knobs.Audience
	}
	if knobs.Nonce != "" {
		nonce = knobs.Nonce
	}
	claims := map[string]any{"iss": p.Issuer, "sub": g.user.Subject, "aud": aud, "iat": now.Unix(), "exp": now.Add(life).Unix(),
		"nonce": nonce, "email": g.user.Email, "email_verified": true, "groups": g.user.Groups}
	key := p.key
	if knobs.ForeignKey {
		key = p.foreign
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	body, _ := json.Marshal(claims)
	jws, err := signer.Sign(body)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	raw, _ := jws.CompactSerialize()
	if knobs.Tamper {
		parts := strings.Split(raw, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[len(sig)/2] ^= 0xff
		parts[2] = base64.RawURLEncoding.EncodeToString(sig)
		raw = strings.Join(parts, ".")
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": raw})
}
