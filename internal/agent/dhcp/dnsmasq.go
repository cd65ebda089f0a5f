package dhcp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// Files of one network's dnsmasq, in its state dir.
const (
	PidFile   = "pid"
	HostsFile = "host"
	OptsFile  = "opts"
	LeaseFile = "leases"
	ArgsFile  = "args" // the command line it runs with, to adopt or restart
	LogFile   = "log"
)

// DefaultDnsmasq is where Debian's dnsmasq-base installs dnsmasq.
const DefaultDnsmasq = "/usr/sbin/dnsmasq"

// Args renders the command line of a network's dnsmasq: DHCP only (no DNS:
// port 0), on the DHCP port's device, one static range per DHCP subnet,
// so that only the MACs in the hosts file get an address. What changes with
// ports (hosts, options) is in the files, re-read on SIGHUP; what needs a
// restart (subnets, device, MTU) is here.
func Args(dir, device string, mtu int, d *agentv1.DHCP) []string {
	lease := d.LeaseSeconds
	if lease <= 0 {
		lease = 86400
	}
	args := []string{
		"--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0", "--user=root", "--group=root",
		"--pid-file=" + dir + "/" + PidFile,
		"--dhcp-hostsfile=" + dir + "/" + HostsFile,
		"--dhcp-optsfile=" + dir + "/" + OptsFile,
		"--dhcp-leasefile=" + dir + "/" + LeaseFile,
		"--log-facility=" + dir + "/" + LogFile,
		"--interface=" + device, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-authoritative", "--log-dhcp",
	}
	for _, sn := range subnets(d) {
		pfx := sn.CIDR.Masked()
		if pfx.Addr().Is4() {
			args = append(args, fmt.Sprintf("--dhcp-range=set:%s,%s,static,%s,%ds", tag(sn.ID), pfx.Addr(), mask4(pfx.Bits()), lease))
		} else {
			args = append(args, fmt.Sprintf("--dhcp-range=set:%s,%s,static,%d,%ds", tag(sn.ID), pfx.Addr(), pfx.Bits(), lease))
		}
	}
	if mtu > 0 {
		args = append(args, fmt.Sprintf("--dhcp-option-force=option:mtu,%d", mtu))
	}
	return args
}

// subnets returns the DHCP subnets in a stable order.
func subnets(d *agentv1.DHCP) []agentv1.DHCPSubnet {
	out := slices.Clone(d.Subnets)
	slices.SortFunc(out, func(a, b agentv1.DHCPSubnet) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func tag(subnetID string) string { return "subnet-" + subnetID }

func portTag(portID string) string { return "port-" + portID }

func mask4(bits int) string {
	m := uint32(0xffffffff) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// Hosts renders the dhcp-hostsfile: one line per port and address, each
// setting the port's tag (for its extra options). IPv6 addresses are
// given only on stateful subnets; a port with none there still has a line
// so its information requests get its options.
func Hosts(d *agentv1.DHCP) string {
	var b strings.Builder
	hosts := slices.Clone(d.Hosts)
	slices.SortFunc(hosts, func(a, b agentv1.DHCPHost) int { return strings.Compare(a.PortID, b.PortID) })
	for _, h := range hosts {
		if h.PortID == d.PortID {
			continue
		}
		mac := strings.ToLower(h.MAC)
		name := ""
		for _, ip := range h.IPs {
			sn := subnetOf(d, ip)
			if sn == nil {
				continue
			}
			if name == "" {
				name = hostname(ip)
			}
			if ip.Is4() {
				fmt.Fprintf(&b, "%s,set:%s,%s,%s\n", mac, portTag(h.PortID), name, ip)
			} else if sn.IPv6AddressMode == "dhcpv6-stateful" {
				fmt.Fprintf(&b, "%s,set:%s,%s,[%s]\n", mac, portTag(h.PortID), name, ip)
			}
		}
	}
	return b.String()
}

// hostname is the reference's host name for an address: host-10-0-0-3.
func hostname(ip netip.Addr) string {
	return "host-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip.String())
}

func subnetOf(d *agentv1.DHCP, ip netip.Addr) *agentv1.DHCPSubnet {
	for i := range d.Subnets {
		if d.Subnets[i].CIDR.Contains(ip) {
			return &d.Subnets[i]
		}
	}
	return nil
}

// Opts renders the dhcp-optsfile: per subnet its router, DNS servers and
// classless static routes (option 121, with the default route in it, as
// clients ignore option 3 when 121 is there); per port its extra options.
func Opts(d *agentv1.DHCP) string {
	var b strings.Builder
	for _, sn := range subnets(d) {
		t := "tag:" + tag(sn.ID)
		if sn.CIDR.Addr().Is4() {
			if sn.Gateway.IsValid() {
				fmt.Fprintf(&b, "%s,option:router,%s\n", t, sn.Gateway)
			} else {
				fmt.Fprintf(&b, "%s,option:router\n", t)
			}
			if dns := join(sn.DNS, false); dns != "" {
				fmt.Fprintf(&b, "%s,option:dns-server,%s\n", t, dns)
			}
			var routes []string
			for _, r := range sn.HostRoutes {
				if r.Destination.Addr().Is4() {
					routes = append(routes, r.Destination.String()+","+r.NextHop.String())
				}
			}
			if len(routes) > 0 {
				if sn.Gateway.IsValid() {
					routes = append(routes, "0.0.0.0/0,"+sn.Gateway.String())
				}
				fmt.Fprintf(&b, "%s,option:classless-static-route,%s\n", t, strings.Join(routes, ","))
				fmt.Fprintf(&b, "%s,249,%s\n", t, strings.Join(routes, ","))
			}
		} else if dns := join(sn.DNS, true); dns != "" {
			fmt.Fprintf(&b, "%s,option6:dns-server,%s\n", t, dns)
		}
	}
	hosts := slices.Clone(d.Hosts)
	slices.SortFunc(hosts, func(a, b agentv1.DHCPHost) int { return strings.Compare(a.PortID, b.PortID) })
	for _, h := range hosts {
		for _, o := range h.Options {
			name := o.Name
			if _, err := strconv.Atoi(name); err != nil {
				if o.IPVersion == 6 {
					name = "option6:" + name
				} else {
					name = "option:" + name
				}
			}
			fmt.Fprintf(&b, "tag:%s,%s,%s\n", portTag(h.PortID), name, o.Value)
		}
	}
	return b.String()
}

func join(addrs []netip.Addr, v6 bool) string {
	var out []string
	for _, a := range addrs {
		if a.Is4() == v6 {
			continue
		}
		if v6 {
			out = append(out, "["+a.String()+"]")
		} else {
			out = append(out, a.String())
		}
	}
	return strings.Join(out, ",")
}
