package alert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/smtp"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/delivery"
)

// Senders builds a sender per channel of the config. lookup and dial, when
// set, replace the resolver and dialer of the HTTP channels (SSRF tests).
func Senders(cfg *veil.AlertsConfig, lookup func(ctx context.Context, host string) ([]netip.Addr, error),
	dial func(ctx context.Context, network, addr string) (net.Conn, error)) ([]Sender, error) {
	var out []Sender
	for _, ch := range cfg.Send {
		guard := &delivery.Guard{AllowPrivate: ch.AllowPrivateNetwork, Lookup: lookup, Dial: dial}
		client := &http.Client{Timeout: 10 * time.Second,
			Transport:     &http.Transport{DialContext: guard.DialContext, Proxy: nil, TLSHandshakeTimeout: 10 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		switch {
		case ch.Slack != "":
			out = append(out, &slack{name: ch.Name, url: ch.Slack, client: client})
		case ch.Webhook != "":
			w := &webhook{name: ch.Name, url: ch.Webhook, client: client}
			if ch.Secret != "" {
				key, err := veil.DecodeStandardSecret(ch.Secret)
				if err != nil {
					return nil, err
				}
				w.keys = [][]byte{key}
			}
			out = append(out, w)
		case ch.Email != nil:
			out = append(out, &email{name: ch.Name, cfg: *ch.Email})
		}
	}
	return out, nil
}

// post sends a JSON body and wants a 2xx.
func post(ctx context.Context, client *http.Client, url string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "veil")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("http %d", resp.StatusCode)
	}
	return nil
}

// slack posts to a Slack incoming webhook: {"text": …}.
type slack struct {
	name, url string
	client    *http.Client
}

func (s *slack) Name() string { return s.name }

func (s *slack) Send(ctx context.Context, m Message) error {
	icon := map[string]string{"opened": ":rotating_light:", "reminder": ":warning:", "resolved": ":white_check_mark:"}[m.Kind]
	body, _ := json.Marshal(map[string]string{"text": icon + " " + m.Text()})
	return post(ctx, s.client, s.url, body, nil)
}

// webhook posts the alert as a Standard Webhooks event (signed when the
// channel has a secret): type veil.alert.opened|reminder|resolved.
type webhook struct {
	name, url string
	keys      [][]byte
	client    *http.Client
}

func (w *webhook) Name() string { return w.name }

func (w *webhook) Send(ctx context.Context, m Message) error {
	body, _ := json.Marshal(map[string]any{"type": "veil.alert." + m.Kind, "timestamp": m.Time.UTC().Format(time.RFC3339),
		"data": m.Alert})
	h := sha256.Sum256([]byte(m.Kind + m.Alert.Key() + m.Time.UTC().Format(time.RFC3339Nano)))
	id := "alt_" + hex.EncodeToString(h[:12])
	header := http.Header{}
	if len(w.keys) > 0 {
		ats.StandardSign(header, w.keys, id, m.Time, body)
	} else {
		header.Set("webhook-id", id)
	}
	return post(ctx, w.client, w.url, body, header)
}

// email sends a plain-text mail through SMTP (net/smtp: STARTTLS when the
// server offers it; PLAIN auth only over TLS or to loopback).
type email struct {
	name string
	cfg  veil.AlertEmail
}

func (e *email) Name() string { return e.name }

func (e *email) Send(ctx context.Context, m Message) error {
	var auth smtp.Auth
	if e.cfg.Username != "" {
		host, _, _ := net.SplitHostPort(e.cfg.SMTP)
		auth = smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, host)
	}
	subject := "[Veil] " + m.Kind + ": " + m.Alert.Condition
	if m.Alert.Destination != "" {
		subject += " at " + m.Alert.Destination
	} else if m.Alert.Source != "" {
		subject += " of " + m.Alert.Source
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		e.cfg.From, strings.Join(e.cfg.To, ", "), subject, m.Time.UTC().Format(time.RFC1123Z), m.Text())
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(e.cfg.SMTP, auth, e.cfg.From, e.cfg.To, []byte(b.String())) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err() // SendMail takes no context; its connection ends with the process
	}
}
