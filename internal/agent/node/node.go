// Package node assembles the agent of one network node from its parts: L2
// and L3 over the node's namespace, and the VPN device drivers the node
// can run. The command, the end-to-end tests and the benchmarks all build
// agents here, so the tests exercise what production runs.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/internal/agent"
	"github.com/neutrino-net/neutrino/internal/agent/dhcp"
	"github.com/neutrino-net/neutrino/internal/agent/l2"
	"github.com/neutrino-net/neutrino/internal/agent/l3"
	"github.com/neutrino-net/neutrino/internal/ipsec/libreswan"
	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
)

// Options describe one node.
type Options struct {
	agent.Endpoint
	// HostNS is the node's own network namespace (the agent's, opened
	// once at start); it stays the caller's to close.
	HostNS netns.NsHandle
	// NetnsDir is where named namespaces (routers', VMs') live.
	NetnsDir string
	// StateDir holds per-router state: StateDir/ipsec/<router id> for
	// each router's IKE daemon.
	StateDir string
	// DataPlane is the IPsec data plane: auto (detect), xfrm or libipsec.
	DataPlane string
	// PhysicalInterfaceMappings map physical networks to the host
	// interfaces that carry flat and VLAN networks.
	PhysicalInterfaceMappings map[string]string
	// Charon is strongSwan's daemon; default strongswan.DefaultCharon.
	// When it is missing the node runs without the strongSwan driver.
	Charon string
	// Libreswan is the root of the Libreswan tree (usr/libexec/ipsec);
	// default $NEUTRINO_LIBRESWAN_DIR, else "/". When pluto is missing
	// there the node runs without the Libreswan driver.
	Libreswan string
	// Dnsmasq is the DHCP server; default dhcp.DefaultDnsmasq. When it is
	// missing the node serves no DHCP and does not register as a DHCP
	// agent.
	Dnsmasq string
	// Heartbeat and Resync periods; zero: the agent's defaults.
	Heartbeat, Resync time.Duration
	Logger            *slog.Logger
	// WrapL2 and WrapL3, when set, decorate the layers (benchmarks time
	// them).
	WrapL2 func(agent.L2) agent.L2
	WrapL3 func(agent.L3) agent.L3
}

// Node is an assembled agent, not yet running.
type Node struct {
	Agent *agent.Agent
	// VPN is the strongSwan driver (nil when charon is missing).
	VPN *strongswan.Driver
	// Libreswan is the Libreswan device driver (nil when not available).
	Libreswan *libreswan.Driver
	// Configurations are what /v2.0/agents shows for the node.
	Configurations map[string]any
	// Collectors are the node's Prometheus metrics.
	Collectors []prometheus.Collector
	closers    []func()
}

// New assembles a node. Close releases what it opened; the data plane
// (namespaces, daemons) stays as it is.
func New(opts Options) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Charon == "" {
		opts.Charon = strongswan.DefaultCharon
	}
	n := &Node{}
	l2State := ""
	if opts.StateDir != "" {
		l2State = filepath.Join(opts.StateDir, "l2")
	}
	sw, err := l2.New(l2.Options{HostNS: opts.HostNS, NetnsDir: opts.NetnsDir, UnderlayIP: opts.UnderlayIP,
		PhysicalInterfaceMappings: opts.PhysicalInterfaceMappings, StateDir: l2State, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() { sw.Close() })
	rt := l3.New(l3.Options{HostNS: opts.HostNS, NetnsDir: opts.NetnsDir, Logger: opts.Logger})
	n.closers = append(n.closers, func() { rt.Close() })
	var L2 agent.L2 = sw
	var L3 agent.L3 = rt
	serveDHCP := false
	if err := dhcp.Available(opts.Dnsmasq); err != nil {
		opts.Logger.Warn("DHCP unavailable: dnsmasq not found; this node registers no DHCP agent", "error", err)
	} else if opts.StateDir == "" {
		opts.Logger.Warn("DHCP unavailable: no state dir")
	} else {
		L2 = dhcp.Wrap(L2, dhcp.Options{NetnsDir: opts.NetnsDir, StateDir: filepath.Join(opts.StateDir, "dhcp"),
			Dnsmasq: opts.Dnsmasq, Logger: opts.Logger})
		serveDHCP = true
	}
	if opts.WrapL2 != nil {
		L2 = opts.WrapL2(L2)
	}
	if opts.WrapL3 != nil {
		L3 = opts.WrapL3(L3)
	}
	vpn, err := n.vpnDrivers(opts)
	if err != nil {
		n.Close()
		return nil, err
	}
	n.Agent, err = agent.New(agent.Options{Endpoint: opts.Endpoint, L2: L2, L3: L3, VPN: vpn, Configurations: n.Configurations,
		DHCP: serveDHCP, DHCPConfigurations: map[string]any{"dhcp_driver": "dnsmasq"},
		Heartbeat: opts.Heartbeat, Resync: opts.Resync, Logger: opts.Logger})
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// vpnDrivers builds the device drivers this node can run. A driver whose
// daemon is not installed is left out (its services show ERROR with the
// reason) rather than failing the node.
func (n *Node) vpnDrivers(opts Options) (map[string]agent.VPN, error) {
	plane, why, err := strongswan.ResolveDataPlane(opts.DataPlane)
	if err != nil {
		return nil, err
	}
	mappings := map[string]string{}
	maps.Copy(mappings, opts.PhysicalInterfaceMappings)
	n.Configurations = map[string]any{"ipsec_data_plane": plane, "ipsec_data_plane_reason": why, "vpn_device_drivers": []string{},
		"interface_mappings": mappings}
	drivers := map[string]agent.VPN{}
	if opts.StateDir == "" {
		return nil, errors.New("node: StateDir is required for the VPN device drivers")
	}
	onChange := func(routerID string) {
		if n.Agent != nil {
			n.Agent.VPNChanged(routerID)
		}
	}
	names := []string{}
	if _, err := os.Stat(opts.Charon); err != nil {
		opts.Logger.Warn("strongSwan device driver unavailable: charon not found; VPN services of strongSwan providers will be in ERROR",
			"charon", opts.Charon, "error", err)
	} else {
		drv, err := strongswan.NewDriver(strongswan.DriverOptions{StateDir: filepath.Join(opts.StateDir, "ipsec"),
			NetnsDir: opts.NetnsDir, DataPlane: plane, Charon: opts.Charon, Logger: opts.Logger, OnChange: onChange})
		if err != nil {
			return nil, fmt.Errorf("strongswan driver: %w", err)
		}
		n.VPN = drv
		n.closers = append(n.closers, drv.Close)
		n.Collectors = append(n.Collectors, drv)
		drivers[strongswan.DriverName] = drv
		names = append(names, strongswan.DriverName)
		opts.Logger.Info("VPN device driver ready", "driver", strongswan.DriverName, "data_plane", plane, "why", why)
	}
	// Libreswan has no user-space ESP: without the kernel's, its services
	// are ERROR with the reason.
	root := opts.Libreswan
	if root == "" {
		root = os.Getenv("NEUTRINO_LIBRESWAN_DIR")
	}
	if root == "" {
		root = "/"
	}
	if version, err := libreswan.Find(root); err != nil {
		opts.Logger.Warn("Libreswan device driver unavailable: pluto not found; VPN services of Libreswan providers will be in ERROR",
			"root", root, "error", err)
	} else {
		var unavailable string
		if p, reason := strongswan.DetectDataPlane(); p != strongswan.DataPlaneXFRM {
			unavailable = "Libreswan needs the kernel's IPsec (ESP) on this host: " + reason
		}
		drv, err := libreswan.NewDriver(libreswan.DriverOptions{StateDir: filepath.Join(opts.StateDir, "libreswan"),
			NetnsDir: opts.NetnsDir, Root: root, Unavailable: unavailable, Logger: opts.Logger, OnChange: onChange})
		if err != nil {
			return nil, fmt.Errorf("libreswan driver: %w", err)
		}
		n.Libreswan = drv
		n.closers = append(n.closers, drv.Close)
		n.Collectors = append(n.Collectors, drv)
		drivers[libreswan.DriverName] = drv
		names = append(names, libreswan.DriverName)
		n.Configurations["libreswan_version"] = version
		opts.Logger.Info("VPN device driver ready", "driver", libreswan.DriverName, "version", version, "unavailable", unavailable)
	}
	n.Configurations["vpn_device_drivers"] = names
	return drivers, nil
}

// Close releases the node's handles, the VPN driver's watchers first; the
// data plane and the IKE daemons keep running.
func (n *Node) Close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}
