package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrForbiddenAddress is returned when a destination resolves to an address
// the SSRF guard refuses.
var ErrForbiddenAddress = errors.New("destination address is in a private, loopback, link-local or metadata range")

// forbiddenPrefixes are refused unless a destination allows the private
// network: RFC 1918, CGNAT, link-local (and so cloud metadata at
// 169.254.169.254), unique-local IPv6, and the "this network" block.
var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"), // AWS metadata over IPv6
}

// Forbidden reports whether the SSRF guard refuses ip.
func Forbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLinkLocalUnicast() || ip.IsPrivate() {
		return true
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Guard dials destinations and refuses forbidden addresses at dial time,
// after resolution, so a redirect (not followed anyway) or a DNS answer that
// changes between check and use cannot reach the private network.
type Guard struct {
	// AllowPrivate turns the guard off (allow_private_network: true).
	AllowPrivate bool
	// Lookup resolves a host; nil means net.DefaultResolver. Tests inject it.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// Dial connects to a resolved address; nil means a net.Dialer. Tests
	// inject it to prove no forbidden address is ever dialled.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialContext resolves addr, refuses it if any of its addresses is
// forbidden, and dials the first allowed one.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		lookup := g.Lookup
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if ips, err = lookup(ctx, host); err != nil {
			return nil, err
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s: no address", host)
	}
	if !g.AllowPrivate {
		for _, ip := range ips {
			if Forbidden(ip) {
				return nil, fmt.Errorf("%w (%s)", ErrForbiddenAddress, ip)
			}
		}
	}
	dial := g.Dial
	if dial == nil {
		d := &net.Dialer{Control: g.control}
		dial = d.DialContext
	}
	return dial(ctx, network, net.JoinHostPort(ips[0].String(), port))
}

// control re-checks the address the socket is about to connect to.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil || Forbidden(ap.Addr()) {
		return ErrForbiddenAddress
	}
	return nil
}
