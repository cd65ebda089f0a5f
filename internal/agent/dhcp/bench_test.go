package dhcp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent/dhcp"
	"github.com/neutrino-net/neutrino/internal/agent/l2"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/nstest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// BenchmarkDHCPLease measures a VM's DHCPv4 exchange, from DISCOVER to a
// bound lease (busybox udhcpc -q: discover, offer, request, ack), against a
// network's dnsmasq run by the DHCP layer over a real L2 in a throw-away
// host namespace; it reports each network's dnsmasq resident memory
// (dnsmasq-RSS-kB) with 10 networks served.
func BenchmarkDHCPLease(b *testing.B) {
	testenv.RequireKernel(b, testenv.Bridge, testenv.Veth)
	if err := dhcp.Available(""); err != nil {
		testenv.Missing(b, "needs dnsmasq (dnsmasq-base): %v", err)
	}
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		testenv.Missing(b, "needs busybox-static: %v", err)
	}
	dir, rm := nstest.Dir(b, "neutrino-dhcp-bench")
	defer rm()
	hostNS, err := namespace.New()
	if err != nil {
		b.Fatal(err)
	}
	defer hostNS.Close()
	defer nstest.Clear(dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	inner, err := l2.New(l2.Options{HostNS: hostNS, NetnsDir: dir, UnderlayIP: netip.MustParseAddr("192.0.2.1"), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer inner.Close()
	state := b.TempDir()
	layer := dhcp.Wrap(inner, dhcp.Options{NetnsDir: dir, StateDir: state, Logger: log})

	const networks = 10
	var nets []agentv1.Network
	var ports []agentv1.Port
	for i := range networks {
		id := fmt.Sprintf("0000000%d-0000-0000-0000-00000000000%d", i, i)
		cidr := netip.MustParsePrefix(fmt.Sprintf("10.50.%d.0/24", i))
		dhcpPort := fmt.Sprintf("d000000%d-0000-0000-0000-000000000000", i)
		vmPort := fmt.Sprintf("e000000%d-0000-0000-0000-000000000000", i)
		vmMAC := fmt.Sprintf("fa:16:3e:00:01:%02x", i)
		nets = append(nets, agentv1.Network{ID: id, VNI: uint32(100 + i), MTU: 1450, DHCP: &agentv1.DHCP{PortID: dhcpPort,
			Subnets: []agentv1.DHCPSubnet{{ID: "s" + strconv.Itoa(i), CIDR: cidr, Gateway: netip.MustParseAddr(fmt.Sprintf("10.50.%d.1", i)),
				DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}}},
			Hosts: []agentv1.DHCPHost{{PortID: vmPort, MAC: vmMAC, IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.50.%d.10", i))}}}}})
		ports = append(ports,
			agentv1.Port{Interface: agentv1.Interface{PortID: dhcpPort, NetworkID: id, MAC: fmt.Sprintf("fa:16:3e:00:00:%02x", i),
				Addresses: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.50.%d.2/24", i))}}, AdminStateUp: true,
				Netns: agentv1.DHCPNamespace(id)},
			agentv1.Port{Interface: agentv1.Interface{PortID: vmPort, NetworkID: id, MAC: vmMAC, Addresses: []netip.Prefix{}},
				AdminStateUp: true, Netns: "vm" + strconv.Itoa(i)})
		vm, _ := nstest.VM(b, dir, "vm"+strconv.Itoa(i))
		defer vm.Close()
	}
	ctx := context.Background()
	if err := layer.Apply(ctx, nets, ports); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := layer.Apply(ctx, nil, nil); err != nil {
			b.Error(err)
		}
	}()
	vm, err := namespaceAt(filepath.Join(dir, "vm0"))
	if err != nil {
		b.Fatal(err)
	}
	dev := agentv1.DeviceName(l2.NamespacePortPrefix, ports[1].PortID)
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command("/usr/bin/busybox", "udhcpc", "-q", "-n", "-f", "-i", dev, "-s", "/bin/true", "-t", "3", "-T", "1")
		if err := namespace.Do(vm, cmd.Run); err != nil {
			b.Fatalf("udhcpc: %v", err)
		}
	}
	b.StopTimer()
	var total float64
	for _, n := range nets {
		pid, ok := layer.Running(n.ID)
		if !ok {
			b.Fatalf("no dnsmasq for network %s", n.ID)
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				total += kb
			}
		}
	}
	b.ReportMetric(total/networks, "dnsmasq-RSS-kB")
}

func namespaceAt(path string) (netns.NsHandle, error) { return netns.GetFromPath(path) }
