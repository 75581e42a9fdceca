package veil

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// AlertsConfig is the alerts: section: when to tell a person that
// deliveries are failing, and where. Absent: no alerts (Prometheus only).
type AlertsConfig struct {
	// CheckEvery is how often the conditions are checked; 0 means 30s.
	CheckEvery Duration `yaml:"check_every"`
	// RepeatAfter is how long an alert stays open before it is sent
	// again as a reminder; 0 means 1h.
	RepeatAfter Duration `yaml:"repeat_after"`
	// MaxPerHour bounds the messages sent, all conditions together
	// (a flood of conditions costs at most this); 0 means 30.
	MaxPerHour int `yaml:"max_per_hour"`
	// Dead opens an alert for a destination when at least AtLeast of its
	// deliveries went dead within Within (default 1 in 5m).
	Dead AlertCount `yaml:"dead"`
	// BreakerOpen opens one when a destination's breaker has stayed open
	// this long (default 2m).
	BreakerOpen Duration `yaml:"breaker_open"`
	// OldestWaiting opens one when a destination's oldest waiting
	// delivery has waited this long (default 15m).
	OldestWaiting Duration `yaml:"oldest_waiting"`
	// SignatureFailures opens one for a source with at least AtLeast
	// requests refused for their signature within Within (default 20 in
	// 5m).
	SignatureFailures AlertCount `yaml:"signature_failures"`
	// ReconcileLag opens one for a reconciling source whose last good pass
	// listed changes only up to longer ago than this (default 2h).
	ReconcileLag Duration `yaml:"reconcile_lag"`
	// ReviewExpired opens one for a reviewed destination when at least
	// AtLeast held deliveries waited past review_ttl within Within
	// (default 1 in 1h).
	ReviewExpired AlertCount `yaml:"review_expired"`
	// Send lists where the messages go; at least one.
	Send []AlertChannel `yaml:"send"`
}

// AlertCount is a count threshold over a sliding window.
type AlertCount struct {
	Within  Duration `yaml:"within"`
	AtLeast int      `yaml:"at_least"`
}

// AlertChannel is one place alerts are sent: exactly one of Slack (an
// incoming webhook URL), Webhook (a URL; the message is a signed Standard
// Webhooks event when Secret is set) or Email.
type AlertChannel struct {
	Name    string      `yaml:"name"`
	Slack   string      `yaml:"slack"`
	Webhook string      `yaml:"webhook"`
	Secret  string      `yaml:"secret"` // whsec_…, for webhook
	Email   *AlertEmail `yaml:"email"`
	// AllowPrivateNetwork lets the channel reach loopback and private
	// addresses (an internal relay; tests).
	AllowPrivateNetwork bool `yaml:"allow_private_network"`
}

// AlertEmail sends through an SMTP server (STARTTLS when it offers it;
// credentials only over TLS or to loopback).
type AlertEmail struct {
	SMTP     string   `yaml:"smtp"` // host:port
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
}

// SetDefaults fills in the thresholds not set.
func (a *AlertsConfig) SetDefaults() {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	count := func(c *AlertCount, within time.Duration, n int) {
		def(&c.Within, within)
		if c.AtLeast == 0 {
			c.AtLeast = n
		}
	}
	def(&a.CheckEvery, 30*time.Second)
	def(&a.RepeatAfter, time.Hour)
	if a.MaxPerHour == 0 {
		a.MaxPerHour = 30
	}
	count(&a.Dead, 5*time.Minute, 1)
	def(&a.BreakerOpen, 2*time.Minute)
	def(&a.OldestWaiting, 15*time.Minute)
	count(&a.SignatureFailures, 5*time.Minute, 20)
	def(&a.ReconcileLag, 2*time.Hour)
	count(&a.ReviewExpired, time.Hour, 1)
	for i := range a.Send {
		if a.Send[i].Name == "" {
			a.Send[i].Name = fmt.Sprint("channel-", i+1)
		}
	}
}

// Validate refuses thresholds and channels that cannot work.
func (a *AlertsConfig) Validate() error {
	if a.CheckEvery < Duration(time.Second) {
		return fmt.Errorf("config: alerts.check_every: at least 1s")
	}
	if a.MaxPerHour < 1 {
		return fmt.Errorf("config: alerts.max_per_hour: at least 1")
	}
	for _, c := range []struct {
		name string
		c    AlertCount
	}{{"dead", a.Dead}, {"signature_failures", a.SignatureFailures}, {"review_expired", a.ReviewExpired}} {
		if c.c.Within < Duration(time.Second) || c.c.AtLeast < 1 {
			return fmt.Errorf("config: alerts.%s: within at least 1s, at_least at least 1", c.name)
		}
	}
	if len(a.Send) == 0 {
		return fmt.Errorf("config: alerts.send: name at least one place to send alerts (slack, webhook or email)")
	}
	for i, ch := range a.Send {
		p := fmt.Sprintf("alerts.send[%d]", i)
		n := 0
		for _, set := range []bool{ch.Slack != "", ch.Webhook != "", ch.Email != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("config: %s: exactly one of slack, webhook or email", p)
		}
		for _, u := range []string{ch.Slack, ch.Webhook} {
			if u == "" {
				continue
			}
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
				return fmt.Errorf("config: %s: not an http(s) URL", p)
			}
		}
		if ch.Secret != "" {
			if _, err := DecodeStandardSecret(ch.Secret); err != nil {
				return fmt.Errorf("config: %s.secret: %w", p, err)
			}
		}
		if e := ch.Email; e != nil {
			if e.SMTP == "" || e.From == "" || len(e.To) == 0 {
				return fmt.Errorf("config: %s.email: smtp (host:port), from and to are required", p)
			}
			for _, addr := range append([]string{e.From}, e.To...) {
				if _, err := mail.ParseAddress(addr); err != nil {
					return fmt.Errorf("config: %s.email: %q is not an email address", p, addr)
				}
			}
		}
	}
	return nil
}

// Alert is one alert condition and what it concerns: a destination or a
// source (never a value of a payload).
type Alert struct {
	Condition   string    `json:"condition"` // AlertDead, AlertBreakerOpen…
	Destination string    `json:"destination,omitempty"`
	Source      string    `json:"source,omitempty"`
	Summary     string    `json:"summary"`
	Since       time.Time `json:"opened_at"`
}

// The alert conditions.
const (
	AlertDead              = "dead"
	AlertBreakerOpen       = "breaker_open"
	AlertOldestWaiting     = "oldest_waiting"
	AlertSignatureFailures = "signature_failures"
	AlertReconcileLag      = "reconcile_lag"
	AlertReviewExpired     = "review_expired"
)

// Key names the alert: its condition and what it concerns.
func (a Alert) Key() string {
	if a.Source != "" {
		return a.Condition + ":source:" + a.Source
	}
	return a.Condition + ":" + a.Destination
}

// ParseAlertKey is Key's inverse.
func ParseAlertKey(key, summary string) Alert {
	a := Alert{Summary: summary}
	cond, rest, _ := strings.Cut(key, ":")
	a.Condition = cond
	if src, ok := strings.CutPrefix(rest, "source:"); ok {
		a.Source = src
	} else {
		a.Destination = rest
	}
	return a
}
