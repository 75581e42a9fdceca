package console

// Who is logged in: sessions bound to a person (kept in the store, so
// every replica knows them and a logout ends them everywhere), local
// users' passwords, the break-glass tokens, and single sign-on (oidc.go).

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
)

// SessionStore keeps console sessions (audit.Store).
type SessionStore interface {
	CreateSession(ctx context.Context, id string, s *veil.Session) error
	Session(ctx context.Context, id string) (*veil.Session, error)
	TouchSession(ctx context.Context, id string, at time.Time, changed bool) error
	EndSession(ctx context.Context, id string) error
}

// Users checks and changes local users' passwords (audit.Store).
type Users interface {
	auth.UserStore
	SetPassword(ctx context.Context, name, hash string, mustChange bool, actor string) error
}

// session is the request's session and its cookie value.
type session struct {
	*veil.Session
	id string
}

// Who may do what. Reading the console's pages is for every role; what a
// page shows besides (a body, a control) is for the roles below.
var (
	anyone    = veil.AllRoles
	admins    = []string{veil.RoleAdmin}
	reviewers = []string{veil.RoleReviewer}
	privacy   = []string{veil.RolePrivacy}
	// reporters read a person's access report (in categories, never a
	// value): privacy officers and auditors.
	reporters = []string{veil.RolePrivacy, veil.RoleAuditor}
)

// role returns the break-glass principal a config token logs in as, nil
// for none.
func (c *Console) breakGlass(token string) *veil.Principal {
	d := c.digest(token)
	switch {
	case token == "":
		return nil
	case c.AdminToken != "" && hmac.Equal(d, c.digest(c.AdminToken)):
		return veil.BreakGlass(veil.RoleAdmin)
	case c.AuditorToken != "" && hmac.Equal(d, c.digest(c.AuditorToken)):
		return veil.BreakGlass(veil.RoleAuditor)
	}
	return nil
}

// current returns the request's live session, nil if none: the cookie
// names a stored session that is neither idle past SessionIdle nor past
// its absolute expiry (by the console's clock; an ended one is deleted).
func (c *Console) current(r *http.Request) (*session, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	se, err := c.Sessions.Session(r.Context(), ck.Value)
	if err != nil || se == nil {
		return nil, err
	}
	now := c.Now()
	if !now.Before(se.Expires) || now.Sub(se.Seen) >= c.SessionIdle {
		return nil, c.Sessions.EndSession(r.Context(), ck.Value)
	}
	if now.Sub(se.Seen) > time.Minute { // the idle clock restarts, a write a minute at most
		if err := c.Sessions.TouchSession(r.Context(), ck.Value, now, false); err != nil {
			return nil, err
		}
	}
	return &session{Session: se, id: ck.Value}, nil
}

// authed wraps a page: a live session holding one of roles, and on a POST
// a CSRF token matching the session's. A session that logged in with a
// one-time password may only choose a new one.
func (c *Console) authed(roles []string, h func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.current(r)
		if err != nil {
			c.fault(w, "The session could not be read", err)
			return
		}
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			c.relogin(w, r)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			var err error
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
				err = r.ParseMultipartForm(64 << 10) // a draft policy uploaded as a file
			} else {
				err = r.ParseForm()
			}
			if err != nil || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(s.CSRF)) {
				c.fail(w, http.StatusForbidden, "The form's CSRF token is missing or wrong; reload the page and try again.")
				return
			}
		}
		if s.MustChange && r.URL.Path != "/console/password" && r.URL.Path != "/console/logout" {
			http.Redirect(w, r, "/console/password", http.StatusSeeOther)
			return
		}
		if !s.Principal().HasAny(roles...) {
			c.fail(w, http.StatusForbidden, fmt.Sprintf("This needs the %s role; you have %s.", strings.Join(roles, " or "), strings.Join(s.Roles, ", ")))
			return
		}
		h(w, r, s)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	msg := ""
	switch r.URL.Query().Get("failed") {
	case "":
	case "sso":
		msg = "Single sign-on did not log you in: the provider's answer was refused, or none of your groups has a role here."
	default:
		msg = "That user name and password, or that token, did not log you in."
	}
	c.drawLogin(w, r, http.StatusOK, msg, nil)
}

// drawLogin hands out a login form (a fresh pre-session), carrying kept,
// the form a person was sending when her session ended, if any.
func (c *Console) drawLogin(w http.ResponseWriter, r *http.Request, status int, msg string, kept *keptForm) {
	id, tok := randomToken(), randomToken()
	c.logins.Add(id, login{csrf: tok, expires: c.Now().Add(loginTTL)})
	http.SetCookie(w, &http.Cookie{Name: loginName, Value: id, Path: "/console/login", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r), MaxAge: int(loginTTL / time.Second)})
	d := loginData{Kept: kept, Local: c.Users != nil}
	if c.OIDC != nil {
		d.SSO = c.OIDC.Config.Label
	}
	c.render(w, status, "login", page{Title: "Log in", CSRF: tok, Error: msg, Data: d})
}

type loginData struct {
	Kept  *keptForm
	Local bool   // local users can log in
	SSO   string // the single sign-on button's label, "" without
}

// throttled answers 429 when the request's address has used up its
// failures (logins of every kind share the budget).
func (c *Console) throttled(w http.ResponseWriter, r *http.Request) bool {
	wait := c.Guard.Wait(auth.SurfaceConsole, auth.Address(r), "")
	if wait <= 0 {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	c.fail(w, http.StatusTooManyRequests, fmt.Sprintf("Too many failed logins from this address; try again in %d seconds.", int(wait.Seconds())+1))
	return true
}

// login checks a local user's password or a break-glass token.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	addr := auth.Address(r)
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	perr := r.ParseForm()
	name := strings.TrimSpace(r.PostForm.Get("user"))
	cred := ""
	if name != "" {
		cred = veil.ActorUser + name
	}
	if wait := c.Guard.Wait(auth.SurfaceConsole, addr, cred); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		c.fail(w, http.StatusTooManyRequests, fmt.Sprintf("Too many failed logins from this address or for this user; try again in %d seconds.", int(wait.Seconds())+1))
		return
	}
	// The form must be one this server handed out, once: a pre-session
	// whose token only this server knows, not a cookie and field pair
	// someone else chose (login CSRF).
	var form login
	ck, err := r.Cookie(loginName)
	if err == nil {
		if f, ok := c.logins.Peek(ck.Value); ok && c.logins.Remove(ck.Value) { // one use: the POST that removes it
			form = f
		}
	}
	if perr != nil || crossSite(r) || form.csrf == "" || !c.Now().Before(form.expires) ||
		!hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(form.csrf)) {
		c.Guard.Failed(auth.SurfaceConsole, auth.ReasonCSRF, addr, "")
		c.fail(w, http.StatusForbidden, "The login form has expired or did not come from this console; reload the login page and try again.")
		return
	}
	var p *veil.Principal
	se := &veil.Session{}
	if name != "" && c.Users != nil {
		u, err := auth.LocalLogin(r.Context(), c.Users, name, r.PostForm.Get("password"), c.Now())
		switch {
		case errors.Is(err, auth.ErrLocked):
			c.Guard.Failed(auth.SurfaceConsole, auth.ReasonLocked, addr, cred)
			c.fail(w, http.StatusForbidden, fmt.Sprintf("This user is locked out after %d wrong passwords in a row; wait %s or ask an admin to reset the password.",
				auth.LockAfter, auth.LockFor))
			return
		case errors.Is(err, auth.ErrBadLogin):
		case err != nil:
			c.fault(w, "The login could not be checked", err)
			return
		default:
			p = &veil.Principal{Actor: veil.ActorUser + u.Name, Roles: u.Roles}
			se.Via, se.MustChange = "password", u.MustChange
		}
	} else if token := r.PostForm.Get("token"); token != "" {
		if p = c.breakGlass(token); p != nil {
			se.Via = "break-glass"
		}
	}
	if p == nil {
		c.Guard.Failed(auth.SurfaceConsole, auth.ReasonInvalid, addr, cred)
		http.Redirect(w, r, "/console/login?failed=1", http.StatusSeeOther)
		return
	}
	se.Actor, se.Roles = p.Actor, p.Roles
	id, err := c.startSession(w, r, se)
	if err != nil {
		c.fault(w, "The session could not be started", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginName, Value: "", Path: "/console/login", MaxAge: -1})
	if action := r.PostForm.Get("kept_action"); action != "" && c.keepable(action) && !se.MustChange {
		kept := &keptForm{Action: action}
		for i, name := range r.PostForm["kept_name"] {
			if i < len(r.PostForm["kept_value"]) && name != "csrf" {
				kept.Fields = append(kept.Fields, keptField{name, r.PostForm["kept_value"][i]})
			}
		}
		c.render(w, http.StatusOK, "resume", c.base(r, &session{Session: se, id: id}, "Send it again?", "", kept))
		return
	}
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// startSession stores a new session for se (its times and CSRF token
// filled in), sets its cookie and audits the login.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, se *veil.Session) (string, error) {
	now := c.Now()
	se.CSRF, se.Created, se.Seen, se.Expires = randomToken(), now, now, now.Add(c.SessionMax)
	id := randomToken()
	if err := c.Sessions.CreateSession(r.Context(), id, se); err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/console", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r), MaxAge: int(c.SessionMax / time.Second)})
	c.record(&veil.AuditEntry{Time: now, Action: veil.ActionLogin, Actor: se.Actor, Outcome: "logged_in",
		Detail: "via=" + se.Via + " roles=" + strings.Join(se.Roles, ",")})
	c.Logger.Info("console login", "actor", se.Actor, "via", se.Via)
	return id, nil
}

func (c *Console) record(rows ...*veil.AuditEntry) {
	if c.Record != nil {
		c.Record(rows...)
	}
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.Sessions.EndSession(r.Context(), s.id); err != nil {
		c.fault(w, "The session could not be ended", err)
		return
	}
	c.record(&veil.AuditEntry{Time: c.Now(), Action: veil.ActionLogout, Actor: s.Actor, Outcome: "logged_out", Detail: "via=" + s.Via})
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	if c.OIDC != nil && s.Via == "oidc" {
		if end := c.OIDC.endSession(r.Context()); end != "" {
			http.Redirect(w, r, end, http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// passwordPage asks a local user for a new password.
func (c *Console) passwordPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.drawPassword(w, r, s, http.StatusOK, "")
}

func (c *Console) drawPassword(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	p := c.base(r, s, "Choose a password", "", s.MustChange)
	p.Error = msg
	c.render(w, status, "password", p)
}

// changePassword sets a local user's new password, given her current
// one (the one-time one, the first time).
func (c *Console) changePassword(w http.ResponseWriter, r *http.Request, s *session) {
	name, ok := strings.CutPrefix(s.Actor, veil.ActorUser)
	if !ok || s.Via != "password" || c.Users == nil {
		c.fail(w, http.StatusForbidden, "Only local users have a password here; yours is your identity provider's.")
		return
	}
	addr := auth.Address(r)
	if wait := c.Guard.Wait(auth.SurfaceConsole, addr, s.Actor); wait > 0 {
		c.fail(w, http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts; try again in %d seconds.", int(wait.Seconds())+1))
		return
	}
	next := r.PostForm.Get("new")
	if err := auth.CheckNewPassword(next); err != nil {
		c.drawPassword(w, r, s, http.StatusBadRequest, veil.ErrorMessage(err))
		return
	}
	if next != r.PostForm.Get("again") {
		c.drawPassword(w, r, s, http.StatusBadRequest, "The two new passwords differ.")
		return
	}
	if _, err := auth.LocalLogin(r.Context(), c.Users, name, r.PostForm.Get("current"), c.Now()); err != nil {
		c.Guard.Failed(auth.SurfaceConsole, auth.ReasonInvalid, addr, s.Actor)
		c.drawPassword(w, r, s, http.StatusForbidden, "The current password is wrong.")
		return
	}
	if err := c.Users.SetPassword(r.Context(), name, auth.HashPassword(next), false, s.Actor); err != nil {
		c.fault(w, "The password could not be changed", err)
		return
	}
	if err := c.Sessions.TouchSession(r.Context(), s.id, c.Now(), true); err != nil {
		c.fault(w, "The session could not be updated", err)
		return
	}
	http.Redirect(w, r, "/console/?notice="+urlText("Your new password is set."), http.StatusSeeOther)
}

// Has reports whether the session's person holds role.
func (s *session) Has(role string) bool { return s.Principal().Has(role) }
