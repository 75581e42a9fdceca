package alert_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/alert"
	"github.com/veilhq/veil/internal/pgtest"
	"github.com/veilhq/veil/internal/storetest"
)

// recorder is a Sender that keeps what it is sent.
type recorder struct {
	mu  sync.Mutex
	got []alert.Message
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Send(_ context.Context, m alert.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, m)
	return nil
}
func (r *recorder) kinds() (out []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.got {
		out = append(out, m.Kind+":"+m.Alert.Key())
	}
	return out
}

// health reports one destination's breaker.
type health struct{ state atomic.Value }

func (h *health) Health() []veil.DestinationHealth {
	return []veil.DestinationHealth{{Destination: "hris", Breaker: h.state.Load().(string)}}
}

func config() *veil.AlertsConfig {
	a := &veil.AlertsConfig{Send: []veil.AlertChannel{{Slack: "https://hooks.slack.com/x"}}}
	a.SetDefaults()
	if err := a.Validate(); err != nil {
		panic(err)
	}
	return a
}

// TestAlerter_OpensRemindsResolvesOnceAcrossReplicas: two replicas on one
// PostgreSQL database check the same conditions: the breaker alert is
// sent once when it opens, once as a reminder after repeat_after, once
// when it resolves; a flood of checks past max_per_hour is suppressed.
func TestAlerter_OpensRemindsResolvesOnceAcrossReplicas(t *testing.T) {
	pgtest.Need(t)
	dsn := pgtest.Schema(t, "veil_alert")
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	key := make([]byte, 32)
	h := &health{}
	h.state.Store("open")
	rec := &recorder{}
	var replicas []*alert.Alerter
	for range 2 {
		st := storetest.MustOpenPostgres(t, dsn, key, key, now)
		replicas = append(replicas, &alert.Alerter{Config: config(), Store: st, Health: h, Senders: []alert.Sender{rec}, Now: now})
	}
	check := func() {
		t.Helper()
		for _, a := range replicas {
			if err := a.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	check() // first seen open: not yet for 2 minutes
	clock.Add(int64(3 * time.Minute))
	check()
	check()
	clock.Add(int64(61 * time.Minute))
	check()
	h.state.Store("closed")
	check()
	want := []string{"opened:breaker_open:hris", "reminder:breaker_open:hris", "resolved:breaker_open:hris"}
	if got := rec.kinds(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("sent %v, want %v", got, want)
	}
}

// TestAlerter_MaxPerHour: past max_per_hour, messages are not sent (the
// alerts stay open and audited).
func TestAlerter_MaxPerHour(t *testing.T) {
	st := storetest.MustOpenStore(t, "", make([]byte, 32), make([]byte, 32), nil)
	cfg := config()
	cfg.MaxPerHour = 2
	rec := &recorder{}
	h := &health{}
	a := &alert.Alerter{Config: cfg, Store: st, Health: h, Senders: []alert.Sender{rec}}
	for _, state := range []string{"open", "closed", "open", "closed", "open"} {
		cfg.BreakerOpen = 0 // at once
		h.state.Store(state)
		if err := a.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.kinds(); len(got) != 2 {
		t.Fatalf("sent %v, want the first 2", got)
	}
	open, _ := st.OpenAlerts(context.Background())
	if len(open) != 1 {
		t.Fatalf("open alerts: %+v", open)
	}
}

// TestSenders_SSRF: an alert channel's host that resolves to a private,
// link-local or metadata address is refused before any dial, unless the
// channel allows the private network.
func TestSenders_SSRF(t *testing.T) {
	for _, addr := range []string{"10.0.0.5", "169.254.169.254", "127.0.0.1", "192.168.1.1", "fd00::1"} {
		var dialled atomic.Int32
		lookup := func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr(addr)}, nil
		}
		dial := func(context.Context, string, string) (net.Conn, error) {
			dialled.Add(1)
			return nil, errors.New("no dial in this test")
		}
		cfg := &veil.AlertsConfig{Send: []veil.AlertChannel{{Name: "s", Slack: "https://hooks.example.com/x"},
			{Name: "w", Webhook: "https://alerts.example.com/x"}}}
		senders, err := alert.Senders(cfg, lookup, dial)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range senders {
			if err := s.Send(context.Background(), alert.Message{Kind: "opened", Alert: veil.Alert{Condition: "dead", Destination: "x"}}); err == nil {
				t.Fatalf("%s to %s: sent", s.Name(), addr)
			}
		}
		if n := dialled.Load(); n != 0 {
			t.Fatalf("%s: %d dials attempted", addr, n)
		}
	}
}
