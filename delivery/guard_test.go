package delivery_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/veilhq/veil/delivery"
)

// spellings are addresses and whether the guard refuses them: every form
// the hardening review found let through, and public addresses that must
// still pass.
var spellings = []struct {
	ip   string
	want bool
}{
	{"127.0.0.1", true}, {"127.8.9.10", true}, {"10.0.0.1", true}, {"172.16.0.1", true}, {"172.31.255.255", true},
	{"192.168.1.1", true}, {"169.254.169.254", true}, {"100.64.0.1", true}, {"0.0.0.0", true},
	{"::1", true}, {"::", true}, {"fc00::1", true}, {"fd12:3456::1", true}, {"fe80::1", true}, {"::ffff:127.0.0.1", true},
	{"::ffff:10.1.2.3", true}, {"fd00:ec2::254", true}, {"224.0.0.1", true}, {"ff02::1", true},
	// reserved, broadcast, benchmark
	{"240.0.0.1", true}, {"255.255.255.255", true}, {"198.18.0.1", true}, {"198.19.255.254", true},
	// IPv6 with an IPv4 inside, judged by it
	{"::127.0.0.1", true}, {"::10.0.0.1", true}, {"::ffff:0:127.0.0.1", true}, {"::ffff:0:a9fe:a9fe", true},
	{"64:ff9b::7f00:1", true}, {"64:ff9b::a9fe:a9fe", true}, {"64:ff9b::10.1.2.3", true},
	{"64:ff9b:1:7f00:1::", true}, {"64:ff9b:1::a9fe:a9fe", true}, {"64:ff9b:1:a9fe:a9:fe00::", true},
	{"2002:7f00:1::", true}, {"2002:a9fe:a9fe::1", true}, {"2002:c0a8:101::", true},
	{"2001:0:7f00:1::ffff:ffff", true},            // Teredo server 127.0.0.1
	{"2001:0:808:808:8000:ffff:80ff:fffe", true},  // Teredo client 127.0.0.1 (inverted)
	{"2001:0:808:808:8000:ffff:f7f7:f7f7", false}, // Teredo server and client 8.8.8.8
	{"172.32.0.1", false}, {"8.8.8.8", false}, {"2606:4700::1111", false}, {"100.128.0.1", false},
	{"64:ff9b::808:808", false}, {"2002:808:808::1", false}, {"::ffff:8.8.8.8", false},
}

func TestForbidden(t *testing.T) {
	for _, c := range spellings {
		if got := delivery.Forbidden(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("Forbidden(%s): got %v, want %v", c.ip, got, c.want)
		}
	}
}

// recordingDial records every address a guard would dial and opens nothing.
type recordingDial struct {
	mu    sync.Mutex
	addrs []string
}

var errNoNetwork = errors.New("test dialer opens no connection")

func (r *recordingDial) dial(_ context.Context, _, addr string) (net.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = append(r.addrs, addr)
	return nil, errNoNetwork
}

// TestGuard: destinations at loopback, RFC 1918, metadata, IPv6 loopback,
// and a hostname that resolves to loopback are refused before any dial;
// allow_private_network lets them through (to the recording dialer only).
func TestGuard(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "internal.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		case "split.example": // one public, one private answer
			return []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("10.1.1.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	for _, addr := range []string{"127.0.0.1:443", "10.0.0.1:80", "169.254.169.254:80", "[::1]:443", "internal.example:443", "split.example:443"} {
		rec := &recordingDial{}
		g := &delivery.Guard{Lookup: lookup, Dial: rec.dial}
		_, err := g.DialContext(context.Background(), "tcp", addr)
		if !errors.Is(err, delivery.ErrForbiddenAddress) {
			t.Errorf("%s: got %v, want ErrForbiddenAddress", addr, err)
		}
		if len(rec.addrs) != 0 {
			t.Errorf("%s: dialled %v, want no dial at all", addr, rec.addrs)
		}
		// allow_private_network: the dial is attempted (and recorded, not made).
		rec = &recordingDial{}
		g = &delivery.Guard{AllowPrivate: true, Lookup: lookup, Dial: rec.dial}
		if _, err := g.DialContext(context.Background(), "tcp", addr); !errors.Is(err, errNoNetwork) || len(rec.addrs) != 1 {
			t.Errorf("%s allowed: got %v, dials %v; want one recorded dial", addr, err, rec.addrs)
		}
	}
}

func lookupLoopback(host string) ([]netip.Addr, error) {
	if host == "internal.example" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, errors.New("no such host")
}

// TestGuard_EverySpelling dials every spelling, literally and through a
// hostname that resolves to it, with an injected resolver and dialer: a
// forbidden address is refused before any dial; an allowed one reaches the
// recording dialer only, so nothing leaves the machine.
func TestGuard_EverySpelling(t *testing.T) {
	for _, c := range spellings {
		ip := netip.MustParseAddr(c.ip)
		lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
			if host == "dest.example" {
				return []netip.Addr{ip}, nil
			}
			return nil, errors.New("no such host")
		}
		for _, addr := range []string{net.JoinHostPort(c.ip, "443"), "dest.example:443"} {
			rec := &recordingDial{}
			g := &delivery.Guard{Lookup: lookup, Dial: rec.dial}
			_, err := g.DialContext(context.Background(), "tcp", addr)
			if c.want {
				if !errors.Is(err, delivery.ErrForbiddenAddress) || len(rec.addrs) != 0 {
					t.Errorf("%s: got %v and dials %v, want refused before any dial", addr, err, rec.addrs)
				}
			} else if !errors.Is(err, errNoNetwork) || len(rec.addrs) != 1 {
				t.Errorf("%s: got %v and dials %v, want one recorded dial", addr, err, rec.addrs)
			}
		}
	}
}
