package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

// smtpSink is an SMTP server on loopback, written from RFC 5321's minimal
// exchange (EHLO, MAIL, RCPT, DATA, QUIT): it keeps each message's data.
type smtpSink struct {
	ln   net.Listener
	mu   sync.Mutex
	mail []string
}

func newSMTPSink(t *testing.T) *smtpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { io.WriteString(c, line+"\r\n") }
	say("220 sink ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 sink")
		case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"), strings.HasPrefix(cmd, "RSET"), strings.HasPrefix(cmd, "NOOP"):
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.mail = append(s.mail, b.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 not here")
		}
	}
}

func (s *smtpSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mail...)
}

// alertSink keeps the bodies and headers it is posted.
type alertSink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	heads  []http.Header
}

func newAlertSink(t *testing.T) *alertSink {
	s := &alertSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies, s.heads = append(s.bodies, string(b)), append(s.heads, r.Header.Clone())
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *alertSink) got() ([]string, []http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...), append([]http.Header(nil), s.heads...)
}

const alertSecret = "whsec_YWxlcnQtc2lnbmluZy1zZWNyZXQtZm9yLXRlc3Rz"

// TestAlerts_DeadDeliveriesToSlackWebhookAndEmail: a destination whose
// deliveries go dead opens one alert, sent once to a Slack-shaped sink, a
// signed webhook and an SMTP server; when no delivery has died for the
// window it is resolved, sent once more; both are audited; no message
// carries a value of the payload.
func TestAlerts_DeadDeliveriesToSlackWebhookAndEmail(t *testing.T) {
	slackSink, hook, mail := newAlertSink(t), newAlertSink(t), newSMTPSink(t)
	var broken atomic.Bool
	broken.Store(true)
	dest := newSink(t, func(int, http.ResponseWriter) int {
		if broken.Load() {
			return 404
		}
		return 200
	})
	dir := t.TempDir()
	alerts := fmt.Sprintf(`alerts:
  check_every: 1s
  dead: {within: 3s, at_least: 2}
  send:
    - {name: ops-slack, slack: %q, allow_private_network: true}
    - {name: pager, webhook: %q, secret: %s, allow_private_network: true}
    - name: oncall
      email: {smtp: %q, from: veil@example.com, to: [oncall@example.com]}
`, slackSink.URL+"/services/T/B/X", hook.URL+"/alerts", alertSecret, mail.ln.Addr().String())
	config := writeConfigDests(t, dir, alerts+"destinations:"+destination("hris-x", dest.URL+"/hris", 1, "")+"\n")
	p := startVeil(t, config, &syncBuffer{})
	defer p.stop(t)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, name := range []string{"hire_candidate", "candidate_stage_change"} {
		if code, _, err := postGreenhouse(context.Background(), client, p.url, mustRead(t, "../../testdata/samples/greenhouse/"+name+".json"), "alert-"+name); err != nil || code != 200 {
			t.Fatalf("send: %d %v", code, err)
		}
	}
	waitFor(t, "the alert at the Slack sink", func() bool { b, _ := slackSink.got(); return len(b) >= 1 })
	waitFor(t, "the resolution at the Slack sink", func() bool { b, _ := slackSink.got(); return len(b) >= 2 })
	waitFor(t, "both mails", func() bool { return len(mail.messages()) >= 2 })
	bodies, _ := slackSink.got()
	if len(bodies) != 2 {
		t.Fatalf("Slack got %d messages, want an opening and a resolution:\n%s", len(bodies), strings.Join(bodies, "\n"))
	}
	var msg struct{ Text string }
	json.Unmarshal([]byte(bodies[0]), &msg)
	if !strings.Contains(msg.Text, "Veil alert opened: 2 deliveries to hris-x went dead in the last 3s") {
		t.Fatalf("opening: %s", bodies[0])
	}
	json.Unmarshal([]byte(bodies[1]), &msg)
	if !strings.Contains(msg.Text, "Veil alert resolved") || !strings.Contains(msg.Text, "no longer so") {
		t.Fatalf("resolution: %s", bodies[1])
	}
	hb, hh := hook.got()
	key, _ := veil.DecodeStandardSecret(alertSecret)
	if len(hb) != 2 || !strings.Contains(hb[0], `"type":"veil.alert.opened"`) || !strings.Contains(hb[1], `"type":"veil.alert.resolved"`) ||
		!ats.StandardSigned([][]byte{key}, hh[0], []byte(hb[0])) {
		t.Fatalf("webhook: %d messages, signed %v:\n%s", len(hb), len(hh) > 0 && ats.StandardSigned([][]byte{key}, hh[0], []byte(hb[0])), strings.Join(hb, "\n"))
	}
	mails := mail.messages()
	if len(mails) != 2 || !strings.Contains(mails[0], "Subject: [Veil] opened: dead at hris-x") {
		t.Fatalf("mail: %q", mails)
	}
	// No message carries a value of the payloads.
	all := strings.Join(append(append(bodies, hb...), mails...), "\n")
	for _, canary := range append(consoleCanaries, "61548830", "88190254") {
		if strings.Contains(all, canary) {
			t.Fatalf("an alert carries %q:\n%s", canary, all)
		}
	}
	var export string
	adminDo(t, http.MethodGet, p.url+"/v1/audit/export?format=csv&action=alert_opened,alert_resolved", &export)
	if rows := strings.Split(strings.TrimSpace(export), "\n")[1:]; len(rows) != 2 || !strings.Contains(rows[0], ",alert_opened,veil,") ||
		!strings.Contains(rows[1], ",alert_resolved,") {
		t.Fatalf("audit rows: %q", rows)
	}
}
