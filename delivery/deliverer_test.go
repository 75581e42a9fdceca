package delivery_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/delivery"
	"github.com/veilhq/veil/internal/storetest"
)

// TestDeliverer_SSRF: destinations at private, link-local (metadata) and
// loopback addresses, and a hostname resolving to loopback, end dead with
// the reason and an audit row, and the (injected) dialer is never called.
func TestDeliverer_SSRF(t *testing.T) {
	cfg := mustConfig(t)
	urls := []string{"http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://127.0.0.1:9/x",
		"http://[::1]:9/x", "http://internal.example/hook", "http://192.168.1.20:8080/x"}
	for i, u := range urls {
		cfg.Destinations = append(cfg.Destinations, veil.Destination{Name: "d" + string(rune('a'+i)), URL: u,
			Sources: []string{"greenhouse"}, Policy: "p", Timeout: veil.Duration(time.Second), Concurrency: 1,
			Retry: veil.RetryConfig{MaxAttempts: 3, Backoff: []veil.Duration{veil.Duration(time.Millisecond)}}})
	}
	st := storetest.MustOpenFor(t, mustConfig(t), time.Now)
	var deliveries []*veil.Delivery
	for _, d := range cfg.Destinations {
		deliveries = append(deliveries, &veil.Delivery{Destination: d.Name, Status: veil.DeliveryPending, Body: []byte(`{"ok":true}`)})
	}
	e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate", Subject: "greenhouse:candidate:1",
		DedupKey: "ssrf", ReceivedAt: time.Now(), Payload: []byte(`{}`)}
	if _, _, err := st.IngestEvent(context.Background(), e, deliveries, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	rec := &recordingDial{}
	d := delivery.New(st, cfg.Destinations)
	d.Interval = 10 * time.Millisecond
	d.Dial = rec.dial
	d.Lookup = func(_ context.Context, host string) ([]netip.Addr, error) { return lookupLoopback(host) }
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dead, _ := st.Deliveries(context.Background(), veil.DeliveryDead, 100)
		if len(dead) == len(urls) {
			for _, dl := range dead {
				if !strings.HasPrefix(dl.Detail, "ssrf: ") || dl.Attempts != 1 {
					t.Errorf("%s: %q after %d attempts, want dead at once with an ssrf reason", dl.Destination, dl.Detail, dl.Attempts)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries dead", len(dead), len(urls))
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.Stop()
	if len(rec.addrs) != 0 {
		t.Fatalf("dialled %v, want no dial at all", rec.addrs)
	}
	audited := 0
	st.AuditEntries(context.Background(), func(a *veil.AuditEntry) error {
		if a.Action == veil.ActionDead && strings.Contains(a.Detail, "ssrf") {
			audited++
		}
		return nil
	})
	if audited != len(urls) {
		t.Fatalf("%d dead audit rows with the reason, want %d", audited, len(urls))
	}
}

// TestDeliverer_BoundedClaims: a destination that hangs does not pull the
// whole queue into memory; at most a bounded number of deliveries are
// claimed ('sending') at once.
func TestDeliverer_BoundedClaims(t *testing.T) {
	cfg := mustConfig(t)
	cfg.Destinations = []veil.Destination{{Name: "slow", URL: "http://127.0.0.1:9/x", Sources: []string{"greenhouse"},
		Policy: "p", Timeout: veil.Duration(time.Minute), Concurrency: 1, AllowPrivateNetwork: true,
		Retry: veil.RetryConfig{MaxAttempts: 3, Backoff: []veil.Duration{veil.Duration(time.Hour)}}}}
	st := storetest.MustOpenFor(t, mustConfig(t), time.Now)
	for i := 0; i < 100; i++ {
		e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "x", Subject: "greenhouse:candidate:1",
			DedupKey: fmt.Sprint("bounded-", i), ReceivedAt: time.Now(), Payload: []byte(`{}`)}
		d := &veil.Delivery{Destination: "slow", Status: veil.DeliveryPending, Body: []byte(`{}`)}
		if _, _, err := st.IngestEvent(context.Background(), e, []*veil.Delivery{d}, veil.Drift{}); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	dialled := make(chan struct{}, 100)
	dl := delivery.New(st, cfg.Destinations)
	dl.Interval = 5 * time.Millisecond
	dl.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
		dialled <- struct{}{}
		select { // hang like a destination that accepts nothing
		case <-release:
		case <-ctx.Done():
		}
		return nil, errNoNetwork
	}
	if err := dl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-dialled
	time.Sleep(100 * time.Millisecond) // many dispatch rounds
	sending, _ := st.Deliveries(context.Background(), veil.DeliverySending, 1000)
	close(release)
	dl.Stop()
	if len(sending) == 0 || len(sending) > 16 {
		t.Fatalf("%d deliveries claimed at once, want between 1 and 16", len(sending))
	}
}

// TestDeliverer_SigningSecretRotation: with signing_secrets [new, old]
// every delivery carries one signature per secret, so a receiver that
// still knows only the old one verifies it, as does one that knows the new.
func TestDeliverer_SigningSecretRotation(t *testing.T) {
	newSecret, oldSecret := "whsec_bmV3LXNpZ25pbmctc2VjcmV0LWZvci1yb3RhdGlvbg==", "whsec_b2xkLXNpZ25pbmctc2VjcmV0LWZvci1yb3RhdGlvbg=="
	got := make(chan http.Header, 1)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Set("X-Body", string(body))
		got <- h
	}))
	defer dest.Close()
	cfg := mustConfig(t)
	cfg.Destinations = []veil.Destination{{Name: "rot", URL: dest.URL, Sources: []string{"greenhouse"}, Policy: "p",
		SigningSecret: newSecret, SigningSecrets: []string{oldSecret}, Timeout: veil.Duration(5 * time.Second),
		Concurrency: 1, AllowPrivateNetwork: true, Retry: veil.RetryConfig{MaxAttempts: 1, Backoff: []veil.Duration{veil.Duration(time.Second)}}}}
	st := storetest.MustOpenFor(t, mustConfig(t), time.Now)
	e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "x", Subject: "greenhouse:candidate:1",
		DedupKey: "rot", ReceivedAt: time.Now(), Payload: []byte(`{}`)}
	d := &veil.Delivery{Destination: "rot", Status: veil.DeliveryPending, Body: []byte(`{"ok":true}`)}
	if _, _, err := st.IngestEvent(context.Background(), e, []*veil.Delivery{d}, veil.Drift{}); err != nil {
		t.Fatal(err)
	}
	dl := delivery.New(st, cfg.Destinations)
	dl.Interval = 5 * time.Millisecond
	if err := dl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer dl.Stop()
	var h http.Header
	select {
	case h = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
		t.Fatalf("webhook-signature has %d entries, want 2: %q", n, h.Get("webhook-signature"))
	}
	for _, secret := range []string{newSecret, oldSecret} {
		key, _ := veil.DecodeStandardSecret(secret)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + h.Get("X-Body")))
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		if !strings.Contains(h.Get("webhook-signature"), want) {
			t.Errorf("no signature verifies with %s", secret)
		}
	}
}
