package destination

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/auditexport/auditexport/store"
)

// AddressPolicy says which addresses the service may connect to on a customer's behalf. It is
// applied to the address actually dialled, after name resolution, so a public name that
// resolves to an internal address is refused as the address itself would be:
//
//   - link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254,
//     100.100.100.200, 168.63.129.16, …), unspecified, multicast and reserved ones: never;
//   - loopback and private addresses (127.0.0.0/8, ::1, 10/8, 172.16/12, 192.168/16, fc00::/7,
//     100.64/10, …): only for endpoints the operator names (--allow-private-endpoints);
//   - every other (public) address: always, within the endpoint policy on names
//     (store.EndpointPolicy, --allowed-endpoints).
//
// The zero value allows no private address.
type AddressPolicy struct {
	anyPrivate bool
	private    store.EndpointPolicy // restricted to the patterns named; none when empty
	patterns   string
}

// ParseAddressPolicy reads the endpoints whose connections may go to loopback and private
// addresses: "" none, "any" every endpoint, else host[:port] patterns as --allowed-endpoints
// takes them ("127.0.0.1", "minio.internal:9000", "*.corp.example").
func ParseAddressPolicy(allowPrivate string) (AddressPolicy, error) {
	s := strings.TrimSpace(strings.ToLower(allowPrivate))
	switch s {
	case "", "none":
		return AddressPolicy{}, nil
	case "any":
		return AddressPolicy{anyPrivate: true, patterns: "any"}, nil
	}
	if s == "*" {
		return AddressPolicy{}, fmt.Errorf(`allow private endpoints: "*" is not a pattern: use "any" to allow every endpoint to reach private addresses`)
	}
	p, err := store.ParseEndpointPolicy(s)
	if err != nil {
		return AddressPolicy{}, fmt.Errorf("allow private endpoints: %s", strings.TrimPrefix(err.Error(), "allowed endpoints: "))
	}
	return AddressPolicy{private: p, patterns: s}, nil
}

// String describes the policy for the log.
func (p AddressPolicy) String() string { return cmp.Or(p.patterns, "none") }

// allowsPrivate reports whether connections to host:port may go to loopback and private addresses.
func (p AddressPolicy) allowsPrivate(host, port string) bool {
	if p.anyPrivate {
		return true
	}
	if p.patterns == "" {
		return false
	}
	return p.private.Check("http://"+net.JoinHostPort(host, port)) == nil
}

// addressClass is what an address is to the policy.
type addressClass int

const (
	public addressClass = iota
	private
	never
)

// neverPrefixes are addresses no destination may be: metadata services of the clouds (besides
// the link-local ones, which are refused as a class), unspecified and reserved ranges.
var neverPrefixes = prefixes(
	"0.0.0.0/8",          // "this network"; 0.0.0.0 reaches the local host
	"100.100.100.200/32", // Alibaba Cloud metadata
	"168.63.129.16/32",   // Azure's host (wire server, metadata)
	"192.0.0.192/32",     // Oracle Cloud metadata
	"240.0.0.0/4",        // reserved, and the broadcast address
	"fd00:ec2::254/128",  // AWS metadata over IPv6
	"::/128",
)

// privatePrefixes are internal addresses besides loopback and RFC 1918 / unique local ones.
var privatePrefixes = prefixes(
	"100.64.0.0/10",  // carrier-grade NAT: internal to providers and clusters
	"192.0.0.0/24",   // IETF protocol assignments
	"198.18.0.0/15",  // benchmarking
	"64:ff9b:1::/48", // local-use NAT64
	"fec0::/10",      // deprecated site-local
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// classify says whether a may be connected to always, with the operator's leave, or never. IPv6
// forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address too.
func classify(a netip.Addr) addressClass {
	a = a.Unmap().WithZone("")
	class := public
	switch {
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(), a.IsMulticast(), a.IsUnspecified():
		return never
	case a.IsLoopback(), a.IsPrivate():
		class = private
	}
	for _, p := range neverPrefixes {
		if p.Contains(a) {
			return never
		}
	}
	for _, p := range privatePrefixes {
		if p.Contains(a) {
			class = private
		}
	}
	if a.Is6() {
		b := a.As16()
		var embedded netip.Addr
		switch {
		case nat64.Contains(a):
			embedded = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(a):
			embedded = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if embedded.IsValid() {
			class = max(class, classify(embedded))
		}
	}
	return class
}

// AddressError is a connection the policy refused: the endpoint's name resolved to (or is) an
// address the service does not connect to. It names the host, never the address a name
// resolved to, which would tell a customer about the operator's network.
type AddressError struct {
	Host  string
	Never bool // link-local or metadata, rather than private without the operator's leave
}

func (e *AddressError) Error() string {
	if e.Never {
		return fmt.Sprintf("%s is, or resolves to, a link-local, cloud metadata or reserved address, which this server never connects to", e.Host)
	}
	return fmt.Sprintf("%s is, or resolves to, a loopback or private address, which this server connects to only for endpoints its operator allows (--allow-private-endpoints)", e.Host)
}

// RetryableError tells the AWS SDK not to retry: the answer will not change.
func (e *AddressError) RetryableError() bool { return false }

// NonRetriable tells the Azure SDK not to retry.
func (e *AddressError) NonRetriable() {}

// dialer returns a DialContext that connects only where p allows, judged on each address the
// name resolves to as it is dialled (a net.Dialer Control hook), so DNS answers that change
// between a check and a connection change nothing.
func (p AddressPolicy) dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		privateOK := p.allowsPrivate(host, port)
		guarded := *d
		guarded.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &AddressError{Host: host, Never: true}
			}
			switch classify(ap.Addr()) {
			case never:
				return &AddressError{Host: host, Never: true}
			case private:
				if !privateOK {
					return &AddressError{Host: host}
				}
			}
			return nil
		}
		conn, err := guarded.DialContext(ctx, network, addr)
		var refused *AddressError
		if errors.As(err, &refused) {
			return nil, refused // without the dial's wrapping, which the SDKs would retry
		}
		return conn, err
	}
}
