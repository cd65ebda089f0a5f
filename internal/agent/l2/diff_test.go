package l2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// fakeDP is a dataplane that keeps links by name and records a script of
// its writes.
type fakeDP struct {
	kinds map[string]string
	tag   string
	ops   []string
	fail  map[string]error // by op
}

func newFake() *fakeDP { return &fakeDP{kinds: map[string]string{}, fail: map[string]error{}} }

func (f *fakeDP) do(op string) error {
	f.ops = append(f.ops, op)
	return f.fail[op]
}

func (f *fakeDP) links(context.Context) (map[string]string, error) { return maps.Clone(f.kinds), nil }

func (f *fakeDP) ensureNetwork(_ context.Context, n agentv1.Network) error {
	if err := f.do("ensure network " + n.ID); err != nil {
		return err
	}
	f.kinds[agentv1.DeviceName(agentv1.BridgePrefix, n.ID)] = "bridge"
	if vx := agentv1.DeviceName(agentv1.VXLANPrefix, n.ID); len(n.Peers) > 0 {
		f.kinds[vx] = "vxlan"
	} else {
		delete(f.kinds, vx)
	}
	return nil
}

func (f *fakeDP) ensurePort(_ context.Context, p agentv1.Port, _ *agentv1.Port) error {
	if err := f.do("ensure port " + p.PortID); err != nil {
		return err
	}
	f.kinds[agentv1.DeviceName(agentv1.TapPrefix, p.PortID)] = "veth"
	return nil
}

func (f *fakeDP) deleteLink(_ context.Context, name string) error {
	if _, ok := f.kinds[name]; !ok {
		return nil
	}
	delete(f.kinds, name)
	return f.do("delete " + name)
}

func (f *fakeDP) filterTag(context.Context) (string, error) { return f.tag, nil }

func (f *fakeDP) setFilter(_ context.Context, tag string, rules []portRules) error {
	var taps []string
	for _, r := range rules {
		taps = append(taps, r.Tap)
	}
	if err := f.do("filter [" + strings.Join(taps, " ") + "]"); err != nil {
		return err
	}
	f.tag = tag
	return nil
}

func (f *fakeDP) close() error { return nil }

func (f *fakeDP) releaseTap(_ context.Context, name string) error { return f.do("release " + name) }

func (f *fakeDP) flushFlows(_ context.Context, addrs []netip.Prefix) error {
	return f.do(fmt.Sprintf("flush flows %v", addrs))
}

func (f *fakeDP) take() []string {
	ops := f.ops
	f.ops = nil
	return ops
}

func testPort(id, network string, secure bool) agentv1.Port {
	return agentv1.Port{
		Interface: agentv1.Interface{PortID: id, NetworkID: network, MAC: "fa:16:3e:00:00:01",
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")}},
		AdminStateUp: true, PortSecurity: secure, Netns: "vm-" + id,
	}
}

func TestReconcileScript(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	l := newL2(slog.New(slog.NewTextHandler(io.Discard, nil)), f)
	peer := netip.MustParseAddr("192.0.2.2")
	n1 := agentv1.Network{ID: "n1", VNI: 1, MTU: 1450, Peers: []netip.Addr{peer}}
	n2 := agentv1.Network{ID: "n2", VNI: 2, MTU: 1450}
	step := func(name string, nets []agentv1.Network, ports []agentv1.Port, sweep bool, wantErr string, want ...string) {
		t.Helper()
		apply := l.Apply
		if sweep {
			apply = l.Sweep
		}
		err := apply(ctx, nets, ports)
		if (err == nil) != (wantErr == "") || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %v, want %q", name, err, wantErr)
		}
		if diff := cmp.Diff(want, f.take()); diff != "" {
			t.Errorf("%s: script (-want +got):\n%s", name, diff)
		}
	}

	step("create", []agentv1.Network{n1, n2}, []agentv1.Port{testPort("p1", "n1", true), testPort("p2", "n2", false)}, false, "",
		"ensure network n1", "ensure network n2", "filter [tapp1]", "ensure port p1", "ensure port p2")
	step("same again", []agentv1.Network{n2, n1}, []agentv1.Port{testPort("p2", "n2", false), testPort("p1", "n1", true)}, false, "")
	if !l.PortReady("p1") || !l.PortReady("p2") || l.PortReady("p3") {
		t.Errorf("ready: p1 %v p2 %v p3 %v", l.PortReady("p1"), l.PortReady("p2"), l.PortReady("p3"))
	}
	step("security only", []agentv1.Network{n1, n2}, []agentv1.Port{testPort("p1", "n1", false), testPort("p2", "n2", false)}, false, "",
		"filter []")
	// Adds come before deletes, and a leaving port keeps its rules until it is gone.
	step("move", []agentv1.Network{n1}, []agentv1.Port{testPort("p1", "n1", false), testPort("p3", "n1", true)}, false, "",
		"filter [tapp3]", "ensure port p3", "delete tapp2", "delete brqn2")
	step("leave secure", []agentv1.Network{n1}, []agentv1.Port{testPort("p1", "n1", false)}, false, "",
		"delete tapp3", "filter []")

	// A failure is reported, does not stop the others and is retried.
	f.fail["ensure port p4"] = errors.New("boom")
	ports := []agentv1.Port{testPort("p1", "n1", false), testPort("p4", "n1", false), testPort("p5", "nx", false)}
	step("fail", []agentv1.Network{n1}, ports, false, "port p4: boom", "ensure port p4")
	if l.PortReady("p4") {
		t.Error("p4 ready after failure")
	}
	delete(f.fail, "ensure port p4")
	step("retry", []agentv1.Network{n1}, ports, false, "network nx is not on this host", "ensure port p4")
	if !l.PortReady("p4") || l.PortReady("p5") {
		t.Error("want p4 ready after the retry, and p5, on a network not on the host, not ready")
	}

	// Ids whose device names would clash: the first one wins.
	clash := []agentv1.Port{ports[0], ports[1], testPort("p6-long-id-aaab", "n1", false), testPort("p6-long-id-aaaa", "n1", false)}
	step("clash", []agentv1.Network{n1}, clash, false, "p6-long-id-aaab is ignored: its device name tapp6-long-id- is p6-long-id-aaaa's",
		"ensure port p6-long-id-aaaa")
	if !l.PortReady("p6-long-id-aaaa") || l.PortReady("p6-long-id-aaab") {
		t.Error("clash: want the first id wired and the second not")
	}
	// A vanished link is noticed and made again, with the ports a vanished
	// bridge had.
	delete(f.kinds, "vxlan-n1")
	step("vanished", []agentv1.Network{n1}, ports[:2], false, "", "ensure network n1", "delete tapp6-long-id-")
	delete(f.kinds, "brqn1")
	step("bridge vanished", []agentv1.Network{n1}, ports[:2], false, "", "ensure network n1", "ensure port p1", "ensure port p4")

	// Sweep re-ensures (the dataplane adopts) and removes only owned kinds.
	f.kinds["brqstray"], f.kinds["tapstray"], f.kinds["vxlan-stray"] = "bridge", "veth", "vxlan"
	f.kinds["tapother"], f.kinds["eth0"] = "tun", "device"
	step("sweep", []agentv1.Network{n1}, ports[:2], true, "",
		"ensure network n1", "ensure port p1", "ensure port p4", "delete tapstray", "delete vxlan-stray", "delete brqstray")
	if _, ok := f.kinds["tapother"]; !ok {
		t.Error("sweep removed a tap that is not a veth")
	}
}

func TestFilterRules(t *testing.T) {
	p := testPort("p1", "n1", true)
	p.Addresses = append(p.Addresses, netip.MustParsePrefix("fd00::5/64"))
	p.AllowedPairs = []agentv1.AddressPair{
		{IP: netip.MustParsePrefix("10.0.0.200/25"), MAC: "FA:16:3E:00:00:99"},
		{IP: netip.MustParsePrefix("10.0.0.7/32")},
	}
	got := filterRules([]agentv1.Port{p, testPort("p2", "n1", false)})
	want := []portRules{{
		Tap:     "tapp1",
		Network: "n1",
		MACs:    []string{"fa:16:3e:00:00:01", "fa:16:3e:00:00:99"},
		IPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("10.0.0.7/32"),
			netip.MustParsePrefix("10.0.0.128/25"), netip.MustParsePrefix("fd00::5/128")},
	}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if rulesTag(nil) != "" || rulesTag(got) == "" {
		t.Error("tag: want empty for no rules only")
	}
}

func TestDefaultGateways(t *testing.T) {
	p := testPort("p1", "n1", false)
	p.Addresses = append(p.Addresses, netip.MustParsePrefix("fd00::5/64"))
	p.Gateways = []netip.Addr{netip.MustParseAddr("fd00::1"), netip.MustParseAddr("192.168.9.1"),
		netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	got := defaultGateways(p)
	want := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("gateways (-want +got):\n%s", diff)
	}
}
