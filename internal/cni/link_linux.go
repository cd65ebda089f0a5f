package cni

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// masterLink is the VM's NIC: the named link, or that of the IPv4
// default route.
func masterLink(name string) (netlink.Link, error) {
	if name != "" {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("master %s: %w", name, err)
		}
		return l, nil
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask)) && r.LinkIndex > 0 {
			l, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("default route's link: %w", err)
			}
			return l, nil
		}
	}
	return nil, errors.New("no master configured and no IPv4 default route to find the VM's NIC by")
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// masterAddrs are the master's IPv4 and IPv6 addresses, as text.
func masterAddrs(l netlink.Link) []string {
	addrs, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
	var out []string
	for _, a := range addrs {
		out = append(out, a.IP.String())
	}
	return out
}

// linkSpec is the container link to make.
type linkSpec struct {
	mode       string
	ipvlanMode string
	master     netlink.Link
	mac        net.HardwareAddr // macvlan and trunk
	vlan       int              // trunk
	mtu        int
}

// makeLink creates the container's link in netns under a temporary name,
// renames it to ifName there and returns its MAC. The link never shows
// in the VM's namespace under the container's name.
func makeLink(netns ns.NetNS, ifName string, s linkSpec) (net.HardwareAddr, error) {
	tmp := fmt.Sprintf("ncni%08x", rand.Uint32())
	mtu := s.mtu
	if mtu == 0 {
		mtu = s.master.Attrs().MTU
	}
	la := netlink.LinkAttrs{Name: tmp, ParentIndex: s.master.Attrs().Index, MTU: mtu, Namespace: netlink.NsFd(int(netns.Fd()))}
	var link netlink.Link
	switch s.mode {
	case ModeMacvlan:
		la.HardwareAddr = s.mac
		link = &netlink.Macvlan{LinkAttrs: la, Mode: netlink.MACVLAN_MODE_BRIDGE}
	case ModeIPvlan:
		m := netlink.IPVLAN_MODE_L2
		if s.ipvlanMode == "l3" {
			m = netlink.IPVLAN_MODE_L3
		}
		link = &netlink.IPVlan{LinkAttrs: la, Mode: m}
	case ModeTrunk:
		la.HardwareAddr = s.mac
		link = &netlink.Vlan{LinkAttrs: la, VlanId: s.vlan}
	}
	if err := netlink.LinkAdd(link); err != nil {
		return nil, fmt.Errorf("create %s link on %s: %w", s.mode, s.master.Attrs().Name, err)
	}
	var mac net.HardwareAddr
	err := netns.Do(func(ns.NetNS) error {
		if err := ip.RenameLink(tmp, ifName); err != nil {
			_ = netlink.LinkDel(link)
			return fmt.Errorf("rename %s to %s: %w", tmp, ifName, err)
		}
		l, err := netlink.LinkByName(ifName)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr
		return nil
	})
	return mac, err
}

// configure sets the result's addresses and routes on ifName in netns.
func configure(netns ns.NetNS, ifName string, res *current.Result) error {
	return netns.Do(func(ns.NetNS) error { return ipam.ConfigureIface(ifName, res) })
}

// removeLink deletes ifName in the namespace at path; a missing
// namespace or link is already what DEL wants.
func removeLink(path, ifName string) error {
	if path == "" {
		return nil
	}
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		err := ip.DelLinkByName(ifName)
		if errors.Is(err, ip.ErrLinkNotFound) {
			return nil
		}
		return err
	})
	var notExist ns.NSPathNotExistErr
	if errors.As(err, &notExist) {
		return nil
	}
	return err
}

// checkLink verifies ifName in netns: it exists, has the result's
// addresses and routes, and, when mac is set, that MAC.
func checkLink(netns ns.NetNS, ifName string, mac string, res *current.Result) error {
	return netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("container link %s: %w", ifName, err)
		}
		if mac != "" && !strings.EqualFold(l.Attrs().HardwareAddr.String(), mac) {
			return fmt.Errorf("container link %s has MAC %s, want %s", ifName, l.Attrs().HardwareAddr, mac)
		}
		if err := ip.ValidateExpectedInterfaceIPs(ifName, res.IPs); err != nil {
			return err
		}
		return ip.ValidateExpectedRoute(res.Routes)
	})
}
