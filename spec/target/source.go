package target

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Source addresses (issue 15). One local address can hold at most one
// connection per ephemeral port to one target address and port (~28,000
// with Linux's default ip_local_port_range), so a run of 50,000 users
// from one host needs several. --source-addr lists local addresses;
// client i connects from address i mod n, each through its own HTTP
// client (one keep-alive pool per address).

// maxSourceAddrs bounds what one --source-addr may expand to (a /16 of
// IPv4): more addresses than any run needs, few enough to check each.
const maxSourceAddrs = 1 << 16

// sourceFlag parses --source-addr values into a list of addresses.
type sourceFlag []netip.Addr

func (f *sourceFlag) String() string {
	if f == nil {
		return ""
	}
	parts := make([]string, len(*f))
	for i, a := range *f {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

// Set takes a comma-separated list whose items are an address
// (127.0.0.2), a CIDR prefix (127.0.0.0/29: every address in it) or a
// range (127.0.0.2-127.0.0.9, both ends included).
func (f *sourceFlag) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		addrs, err := expandSource(item)
		if err != nil {
			return err
		}
		if len(*f)+len(addrs) > maxSourceAddrs {
			return fmt.Errorf("%q: more than %d source addresses in all", item, maxSourceAddrs)
		}
		*f = append(*f, addrs...)
	}
	return nil
}

// expandSource turns one item of --source-addr into its addresses.
func expandSource(item string) ([]netip.Addr, error) {
	if strings.Contains(item, "/") {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%q: not a CIDR prefix such as 127.0.0.0/29", item)
		}
		p = p.Masked()
		bits := p.Addr().BitLen() - p.Bits()
		if bits > 16 {
			return nil, fmt.Errorf("%q: %d addresses; at most %d", item, uint64(1)<<min(bits, 63), maxSourceAddrs)
		}
		return addrRange(p.Addr(), 1<<bits), nil
	}
	if from, to, ok := strings.Cut(item, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(from))
		b, err2 := netip.ParseAddr(strings.TrimSpace(to))
		if err1 != nil || err2 != nil || a.BitLen() != b.BitLen() || b.Less(a) {
			return nil, fmt.Errorf("%q: not a range of addresses such as 127.0.0.2-127.0.0.9", item)
		}
		var out []netip.Addr
		for x := a; ; x = x.Next() {
			if len(out) == maxSourceAddrs {
				return nil, fmt.Errorf("%q: more than %d addresses", item, maxSourceAddrs)
			}
			out = append(out, x)
			if x == b {
				return out, nil
			}
		}
	}
	a, err := netip.ParseAddr(item)
	if err != nil {
		return nil, fmt.Errorf("%q: not an IP address, a CIDR prefix or a range", item)
	}
	return []netip.Addr{a}, nil
}

// addrRange is n addresses from first.
func addrRange(first netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for x := first; len(out) < n && x.IsValid(); x = x.Next() {
		out = append(out, x)
	}
	return out
}

// sourceClients checks that every address is this machine's (it can be
// bound) and returns one HTTP client per address, connecting from it.
func sourceClients(addrs []netip.Addr, connectTimeout time.Duration) ([]*http.Client, error) {
	seen := map[netip.Addr]bool{}
	var clients []*http.Client
	for _, a := range addrs {
		if seen[a] {
			continue
		}
		seen[a] = true
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			return nil, fmt.Errorf("--source-addr %s: not an address of this machine (%v); on Linux every 127.x.y.z is, others need `ip addr add`", a, err)
		}
		ln.Close()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: a.AsSlice()}, Timeout: connectTimeout, KeepAlive: 30 * time.Second}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // a verdict is about the server, not an intermediary
		t.MaxIdleConns = 0
		t.MaxIdleConnsPerHost = 1024
		t.DialContext = d.DialContext
		clients = append(clients, &http.Client{Transport: t})
	}
	return clients, nil
}
