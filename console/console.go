// Package console is the web console `veil serve` serves at /console: for
// RecOps, compliance officers and auditors, who are not at a terminal.
// Server-rendered pages (html/template), no JavaScript, assets embedded:
// nothing to build, no CDN. Log in with the admin token (everything) or
// the auditor token (read-only); sessions are HttpOnly, SameSite=Strict
// cookies (Secure behind TLS) that expire; every form carries a CSRF
// token; every answer carries a strict Content-Security-Policy. No page
// shows a payload: only what a destination received.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/auth"
	"github.com/veilhq/veil/gateway"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Store is what the console reads of events and the audit log.
type Store interface {
	ListEvents(ctx context.Context, q veil.EventQuery) ([]veil.EventSummary, error)
	EventDeliveries(ctx context.Context, eventID string) ([]*veil.Delivery, error)
	AuditPage(ctx context.Context, f veil.AuditFilter) ([]veil.AuditEntry, error)
	WriteExport(ctx context.Context, w io.Writer, format string, f veil.AuditFilter) error
	Verify(ctx context.Context, tick func(seq int64)) (int64, error)
}

// ConsumerStore lists, grants and revokes lookup consumers.
type ConsumerStore interface {
	Consumers(ctx context.Context) ([]veil.Consumer, error)
	AddConsumer(ctx context.Context, name string, purposes []string, actor string) (string, error)
	RevokeConsumer(ctx context.Context, name, actor string) error
}

// CountStore counts what the Overview shows.
type CountStore interface {
	DeliveryCounts(ctx context.Context, since time.Time, step time.Duration) ([]veil.DeliveryCount, error)
	InboundCounts(ctx context.Context, since time.Time) ([]veil.InboundCount, error)
	LastErrors(ctx context.Context, since time.Time) (map[string]veil.AuditEntry, error)
	QueueStats(ctx context.Context) ([]veil.QueueStat, error)
	ReconcileState(ctx context.Context, source string) (veil.ReconcileState, error)
}

// Replayer re-decides and queues a dead delivery (gateway.Pipeline's Replay).
type Replayer interface {
	Replay(ctx context.Context, id, actor string) (*veil.Delivery, error)
}

// Subjects answers access requests and erases (gateway.Subjects).
type Subjects interface {
	View(ctx context.Context, ref, actor string) (veil.SubjectReport, error)
	Report(ctx context.Context, ref string) (veil.SubjectReport, error)
	Refs(ctx context.Context, ref string) ([]string, error)
	Erase(ctx context.Context, ref, actor string) (veil.Erasure, veil.ErasureReceipt, error)
}

// Reviewer lists the held deliveries, shows one, and approves or rejects
// it (gateway.Review).
type Reviewer interface {
	Queue(ctx context.Context, limit int, bodies bool) ([]gateway.Held, int64, error)
	One(ctx context.Context, id string) (gateway.Held, error)
	Decide(ctx context.Context, id string, approve bool, actor, reason string) (*veil.Delivery, error)
}

// Finder resolves what a person knows into an event query
// (gateway.Find).
type Finder interface {
	Resolve(ctx context.Context, id string, q *veil.EventQuery) error
	Source(name string) (string, error)
}

// Console serves /console. Set the fields, then use it as an http.Handler.
type Console struct {
	Store     Store
	Consumers ConsumerStore
	Counts    CountStore
	Replay    Replayer
	Review    Reviewer
	Find      Finder
	// Processing draws the records of processing (Art. 30) over the audit
	// log since a time (zero: all of it), as `veil report processing`.
	Processing func(ctx context.Context, since time.Time) (template.HTML, error)
	// ReviewTTL is each reviewed destination's review_ttl, for the expiry
	// the Review list shows.
	ReviewTTL map[string]time.Duration
	Subjects  Subjects
	Policies  Policies
	// Recovery, when set, serves the dead-letter inbox with its filters
	// and replay of all matching, and pausing destinations.
	Recovery Recovery
	// Health, when set, gives the Overview each destination's breaker,
	// success rate and latency.
	Health Health
	// CheckSubject validates a subject reference against the configured
	// sources (nil: any non-empty reference).
	CheckSubject func(ref string) error
	// Reconciled names the sources that reconcile, for the Overview;
	// DestinationNames the configured destinations, for the filters.
	Reconciled, DestinationNames []string
	// AdminToken and AuditorToken log in as break-glass:admin (every
	// role) and break-glass:auditor (AuditorToken "": none).
	AdminToken, AuditorToken string
	// Sessions keeps the sessions (required); Users, when set, lets local
	// users log in; OIDC, when set, single sign-on.
	Sessions SessionStore
	Users    Users
	OIDC     *OIDC
	// Record writes audit rows without waiting (logins, logouts, exports);
	// nil writes none.
	Record func(...*veil.AuditEntry)
	// Reload, when set, reloads the policy folder, audited as actor's.
	Reload func(ctx context.Context, actor string) error
	Logger *slog.Logger
	Now    func() time.Time
	// SessionIdle ends a session unused this long (0: 30 minutes);
	// SessionMax ends every session this long after login (0: 8 hours).
	SessionIdle, SessionMax time.Duration
	// Guard throttles and audits failed logins (share the proxy's, so one
	// address has one budget); nil means one of the console's own, which
	// audits nothing.
	Guard *auth.Guard

	once sync.Once
	tmpl *template.Template
	key  []byte // digests tokens for comparison
	// logins are the login forms handed out and not yet used: the form's
	// CSRF token by the pre-session cookie's value, so a login is accepted
	// only with a pair this server made, once, within loginTTL.
	logins *lru.Cache[string, login]
	mux    *http.ServeMux

	ovMu sync.Mutex
	ov   map[string]*drawn // guarded by ovMu: the Overview's counts by range
	// life ends at Close; bg counts the goroutines that draw the Overview.
	life context.Context
	stop context.CancelFunc
	bg   sync.WaitGroup
}

// Close stops the console's background work (an Overview being counted)
// and waits for it.
func (c *Console) Close() {
	c.init()
	c.stop()
	c.bg.Wait()
}

type login struct {
	csrf    string
	expires time.Time
}

// loginTTL is how long a login form is good for; maxLogins bounds the
// forms held (the oldest go first), whatever the number of GETs.
const (
	loginTTL  = 10 * time.Minute
	maxLogins = 10_000
)

const (
	cookieName = "veil_console"
	loginName  = "veil_console_login" // the login form's CSRF token, before a session exists
)

func (c *Console) init() {
	c.once.Do(func() {
		if c.Now == nil {
			c.Now = time.Now
		}
		if c.Logger == nil {
			c.Logger = slog.New(slog.DiscardHandler)
		}
		if c.SessionMax == 0 {
			c.SessionMax = 8 * time.Hour
		}
		if c.SessionIdle == 0 {
			c.SessionIdle = min(30*time.Minute, c.SessionMax)
		}
		c.key = randomBytes(32)
		c.life, c.stop = context.WithCancel(context.Background())
		c.logins, _ = lru.New[string, login](maxLogins)
		if c.Guard == nil {
			c.Guard = auth.NewGuard()
			c.Guard.Now = c.Now
		}
		c.tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html"))
		c.mux = http.NewServeMux()
		c.routes(c.mux)
	})
}

// Routes adds the console's routes to m, the server's: one router for
// the whole server. Each answers with the console's security headers.
func (c *Console) Routes(m *http.ServeMux) {
	c.init()
	c.routes(&secured{m})
}

// routes adds the console's routes to m.
func (c *Console) routes(m handler) {
	static, _ := fs.Sub(assets, "static")
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	if c.OIDC != nil {
		m.HandleFunc("GET /console/oidc/login", c.oidcLogin)
		m.HandleFunc("GET /console/oidc/callback", c.oidcCallback)
	}
	m.HandleFunc("POST /console/logout", c.authed(anyone, c.logout))
	m.HandleFunc("GET /console/password", c.authed(anyone, c.passwordPage))
	m.HandleFunc("POST /console/password", c.authed(anyone, c.changePassword))
	m.HandleFunc("GET /console/{$}", c.authed(anyone, c.overview))
	m.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	m.HandleFunc("GET /console/events", c.authed(anyone, c.events))
	m.HandleFunc("GET /console/events/{id}", c.authed(anyone, c.event))
	m.HandleFunc("GET /console/dead", c.authed(anyone, c.dead))
	m.HandleFunc("POST /console/dead/replay", c.authed(admins, c.replay))
	m.HandleFunc("POST /console/dead/replay-all", c.authed(admins, c.replayAll))
	m.HandleFunc("POST /console/destinations/{name}/{verb}", c.authed(admins, c.pause))
	m.HandleFunc("GET /console/review", c.authed(anyone, c.review))
	m.HandleFunc("GET /console/review/{id}", c.authed(reviewers, c.reviewOne))
	m.HandleFunc("POST /console/review/{id}/{verb}", c.authed(reviewers, c.decide))
	m.HandleFunc("POST /console/review/bulk", c.authed(reviewers, c.decideBulk))
	m.HandleFunc("GET /console/subjects", c.authed(reporters, c.subjects))
	m.HandleFunc("GET /console/subjects/report", c.authed(reporters, c.printReport))
	m.HandleFunc("GET /console/subjects/erase", c.authed(privacy, c.confirmErase))
	m.HandleFunc("POST /console/subjects/erase", c.authed(privacy, c.erase))
	m.HandleFunc("GET /console/audit", c.authed(anyone, c.audit))
	m.HandleFunc("GET /console/audit/export", c.authed(anyone, c.export))
	m.HandleFunc("GET /console/audit/verify", c.authed(anyone, c.verify))
	m.HandleFunc("GET /console/consumers", c.authed(anyone, c.consumers))
	m.HandleFunc("POST /console/consumers", c.authed(admins, c.addConsumer))
	m.HandleFunc("POST /console/consumers/{name}/revoke", c.authed(admins, c.revokeConsumer))
	m.HandleFunc("GET /console/policies", c.authed(anyone, c.policies))
	m.HandleFunc("POST /console/policies/reload", c.authed(admins, c.reload))
	m.HandleFunc("GET /console/processing", c.authed(anyone, c.processing))
	m.HandleFunc("POST /console/policies/impact", c.authed(admins, c.impact))
}

// handler is where routes go: a ServeMux, or one that adds the console's
// headers first.
type handler interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// secured adds the console's routes to a ServeMux with its headers.
type secured struct{ m *http.ServeMux }

func (s *secured) Handle(pattern string, h http.Handler) {
	s.m.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		h.ServeHTTP(w, r)
	}))
}

func (s *secured) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	s.Handle(pattern, http.HandlerFunc(h))
}

// securityHeaders are on every console answer.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "+
		"frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// ServeHTTP serves the console's routes alone, with its security headers
// (tests; the server adds them to its own with Routes).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.init()
	securityHeaders(w)
	c.mux.ServeHTTP(w, r)
}

// secure reports whether the request came over TLS (directly or through a
// proxy that says so): the cookie is then Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randomToken() string { return hex.EncodeToString(randomBytes(24)) }

// digest is a keyed digest of a token: comparing digests takes the same
// time whatever the token's length.
func (c *Console) digest(v string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(v))
	return m.Sum(nil)
}

// keptForm is a form a person sent after her session ended: where it
// went and what she entered (the CSRF token aside). It rides in the login
// form's body, never in a URL, and is sent again only when she confirms
// after logging in.
type keptForm struct {
	Action string
	Fields []keptField
}

type keptField struct{ Name, Value string }

// keepable is a console form's action: a path of the console's own POST
// routes, nothing else.
func (c *Console) keepable(action string) bool {
	if !strings.HasPrefix(action, "/console/") || strings.HasPrefix(action, "/console/login") || strings.Contains(action, "//") {
		return false
	}
	req, err := http.NewRequest(http.MethodPost, action, nil)
	if err != nil {
		return false
	}
	_, pattern := c.mux.Handler(req)
	return pattern != "" && strings.HasPrefix(pattern, "POST ")
}

// relogin answers a form sent without a live session: the login page,
// keeping what was entered.
func (c *Console) relogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var kept *keptForm
	if r.ParseForm() == nil && c.keepable(r.URL.Path) {
		kept = &keptForm{Action: r.URL.Path}
		for name, vs := range r.PostForm {
			if name == "csrf" {
				continue
			}
			for _, v := range vs {
				kept.Fields = append(kept.Fields, keptField{name, v})
			}
		}
		slices.SortFunc(kept.Fields, func(a, b keptField) int { return strings.Compare(a.Name, b.Name) })
	}
	c.drawLogin(w, r, http.StatusUnauthorized, "Your session ended before this was sent. Log in again: what you entered is kept, and sent when you confirm.", kept)
}

// crossSite reports whether the browser says a POST comes from another
// origin: Sec-Fetch-Site is anything but same-origin (or none, a user's
// own navigation), or, from a client that sends no Sec-Fetch-Site, the
// Origin names another host. (Under the console's no-referrer policy a
// browser sends Origin: null, which says nothing.)
func crossSite(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site != "same-origin" && site != "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}

// page is what every template gets.
type page struct {
	// Role lists the person's roles, for the header; Actor names her; Can
	// says which roles she holds, for the controls a page draws.
	Title, Nav, CSRF, Role, Actor, Error, Notice string
	Can                                          map[string]bool
	Data                                         any
}

func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	var b strings.Builder
	if err := c.tmpl.ExecuteTemplate(&b, name, p); err != nil {
		c.fault(w, "The page could not be drawn", fmt.Errorf("template %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

// fault answers a failure of Veil's own: logged once under an error id
// the page shows too, so a person's report of it can be found in the log.
func (c *Console) fault(w http.ResponseWriter, what string, err error) {
	id := veil.ErrorID()
	c.Logger.Error("console: "+what, "error_id", id, "err", err)
	c.fail(w, http.StatusInternalServerError, fmt.Sprintf("%s (error %s).", strings.TrimSuffix(what, "."), id))
}

// fail answers a console error as a page of the console, with its
// navigation (its text is Veil's own, never a value from a payload).
func (c *Console) fail(w http.ResponseWriter, status int, msg string) {
	var b strings.Builder
	if err := c.tmpl.ExecuteTemplate(&b, "error", page{Title: http.StatusText(status), Error: msg, Data: status}); err != nil {
		c.Logger.Error("console template", "page", "error", "err", err)
		b.Reset()
		template.HTMLEscape(&b, []byte(msg))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}
