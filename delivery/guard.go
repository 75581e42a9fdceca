package delivery

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
var ErrForbiddenAddress = errors.New("destination address is in a private, loopback, link-local, metadata or reserved range")

// forbidden4 are the IPv4 ranges refused unless a destination allows the
// private network.
var forbidden4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("10.0.0.0/8"),      // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata at 169.254.169.254
	netip.MustParsePrefix("172.16.0.0/12"),   // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"),  // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255 broadcast
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation: never a real destination
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// forbidden6 are the IPv6 ranges refused outright; those that embed an
// IPv4 address are judged by it instead (embedded4).
var forbidden6 = []netip.Prefix{
	netip.MustParsePrefix("::/128"),        // unspecified
	netip.MustParsePrefix("::1/128"),       // loopback
	netip.MustParsePrefix("100::/64"),      // discard-only
	netip.MustParsePrefix("fc00::/7"),      // unique-local, AWS metadata fd00:ec2::254
	netip.MustParsePrefix("fe80::/10"),     // link-local
	netip.MustParsePrefix("fec0::/10"),     // site-local (deprecated, still private)
	netip.MustParsePrefix("ff00::/8"),      // multicast
	netip.MustParsePrefix("2001:db8::/32"), // documentation
}

var (
	compat4    = netip.MustParsePrefix("::/96")           // IPv4-compatible ::a.b.c.d
	translated = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (SIIT)
	nat64      = netip.MustParsePrefix("64:ff9b::/96")    // NAT64 well-known prefix
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")  // NAT64 local-use prefix
	sixToFour  = netip.MustParsePrefix("2002::/16")       // 6to4
	teredo     = netip.MustParsePrefix("2001::/32")       // Teredo
)

// Forbidden reports whether the SSRF guard refuses ip. An IPv6 address that
// embeds an IPv4 one (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64,
// 6to4, Teredo) is judged by every IPv4 address inside it: on a NAT64
// network 64:ff9b::a9fe:a9fe is the cloud metadata address.
func Forbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is4() {
		for _, p := range forbidden4 {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	for _, p := range forbidden6 {
		if p.Contains(ip) {
			return true
		}
	}
	for _, v4 := range embedded4(ip) {
		if Forbidden(v4) {
			return true
		}
	}
	return false
}

// embedded4 returns the IPv4 addresses an IPv6 address carries, in every
// layout it may be read with.
func embedded4(ip netip.Addr) []netip.Addr {
	b := ip.As16()
	last := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	switch {
	case compat4.Contains(ip), translated.Contains(ip), nat64.Contains(ip):
		return []netip.Addr{last}
	case nat64Local.Contains(ip):
		// RFC 6052: a /48 prefix puts the address around the u octet (byte
		// 8); operators also use /96 inside it. Judge both readings.
		return []netip.Addr{netip.AddrFrom4([4]byte{b[6], b[7], b[9], b[10]}), last}
	case sixToFour.Contains(ip):
		return []netip.Addr{netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})}
	case teredo.Contains(ip):
		// The server's address, and the client's, stored inverted.
		return []netip.Addr{netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}),
			netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})}
	}
	return nil
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
