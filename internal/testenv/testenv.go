// Package testenv decides what a test does when something it needs is
// missing: root, a kernel feature, a daemon, a database or a command.
//
// Under CI (CI=true, set by .ci/run and scripts/test.sh) a missing
// requirement fails the test with the reason, because CI installs
// everything and a skip there would hide a test that never ran. Elsewhere
// the test skips with the same reason, so a developer without root or
// PostgreSQL can still run the rest.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
)

// Environment variables naming the external services the tests use.
const (
	// EnvPostgres holds a PostgreSQL DSN (scripts/ci/postgres.sh prints it).
	EnvPostgres = "NEUTRINO_TEST_POSTGRES"
	// EnvKeystone holds a Keystone v3 URL (scripts/ci/keystone.sh prints it).
	EnvKeystone = "NEUTRINO_TEST_KEYSTONE"
)

// Charon is where Debian's strongswan-charon puts the IKE daemon.
const Charon = "/usr/lib/ipsec/charon"

// InCI reports whether missing requirements are failures: CI or
// NEUTRINO_REQUIRE_ALL is a true boolean.
func InCI() bool {
	for _, k := range []string{"CI", "NEUTRINO_REQUIRE_ALL"} {
		if v, err := strconv.ParseBool(os.Getenv(k)); err == nil && v {
			return true
		}
	}
	return false
}

// Missing ends the test because a requirement is missing: a failure under
// CI, a skip elsewhere, with the reason either way.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	why := fmt.Sprintf(format, args...)
	if InCI() {
		tb.Fatalf("requirement missing under CI=true (a skip would hide this test): %s", why)
		return
	}
	tb.Skip(why)
}

// RequireRoot ends the test unless it runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Missing(tb, "needs root (euid %d): it builds namespaces, links, nftables tables or runs daemons", os.Geteuid())
	}
}

// Feature is a kernel capability a test needs.
type Feature string

// Kernel features, each probed once per process in a throw-away network
// namespace.
const (
	Netns    Feature = "network namespaces"
	Bridge   Feature = "Linux bridges"
	Veth     Feature = "veth pairs"
	VXLAN    Feature = "VXLAN"
	Macvlan  Feature = "macvlan"
	IPVLAN   Feature = "ipvlan"
	VLAN     Feature = "802.1q VLAN"
	NFTNAT   Feature = "nftables NAT"
	ESP      Feature = "XFRM ESP states"
	Mounting Feature = "bind mounts of namespaces"
	// TCBPF is what the agent's eBPF trunk datapath needs: a clsact qdisc
	// and a direct-action cls_bpf program on it.
	TCBPF Feature = "eBPF tc programs (clsact, cls_bpf)"
)

var probes sync.Map // Feature -> *probe

type probe struct {
	once sync.Once
	err  error
}

// RequireKernel ends the test unless it runs as root on a kernel with
// every feature listed.
func RequireKernel(tb testing.TB, features ...Feature) {
	tb.Helper()
	RequireRoot(tb)
	for _, f := range append([]Feature{Netns}, features...) {
		if err := Probe(f); err != nil {
			Missing(tb, "the kernel lacks %s: %v", f, err)
		}
	}
}

// Probe reports whether the kernel has f (nil when it does). It needs root.
func Probe(f Feature) error {
	v, _ := probes.LoadOrStore(f, &probe{})
	p := v.(*probe)
	p.once.Do(func() { p.err = probeFeature(f) })
	return p.err
}

func probeFeature(f Feature) error {
	if f == Mounting {
		return probeMount()
	}
	ns, err := namespace.New()
	if err != nil {
		return fmt.Errorf("new network namespace: %w", err)
	}
	defer ns.Close()
	if f == Netns {
		return nil
	}
	if f == NFTNAT {
		return probeNAT(ns)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle: %w", err)
	}
	defer h.Close()
	attrs := func(name string) netlink.LinkAttrs {
		a := netlink.NewLinkAttrs()
		a.Name = name
		return a
	}
	// A veth end is the parent of the probed sub-interfaces: this
	// machine's kernel has no dummy links.
	parentLink := func() (netlink.Link, error) {
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs("probe0"), PeerName: "probe0p"}); err != nil {
			return nil, fmt.Errorf("veth parent: %w", err)
		}
		return h.LinkByName("probe0")
	}
	switch f {
	case Bridge:
		return h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs("br0")})
	case Veth:
		return h.LinkAdd(&netlink.Veth{LinkAttrs: attrs("v0"), PeerName: "v1"})
	case VXLAN:
		return h.LinkAdd(&netlink.Vxlan{LinkAttrs: attrs("vx0"), VxlanId: 42, Port: 4789})
	case TCBPF:
		parent, err := parentLink()
		if err != nil {
			return err
		}
		return probeTCBPF(h, parent)
	case Macvlan, IPVLAN, VLAN:
		parent, err := parentLink()
		if err != nil {
			return err
		}
		a := attrs("probe1")
		a.ParentIndex = parent.Attrs().Index
		switch f {
		case Macvlan:
			return h.LinkAdd(&netlink.Macvlan{LinkAttrs: a, Mode: netlink.MACVLAN_MODE_BRIDGE})
		case IPVLAN:
			return h.LinkAdd(&netlink.IPVlan{LinkAttrs: a, Mode: netlink.IPVLAN_MODE_L2})
		default:
			return h.LinkAdd(&netlink.Vlan{LinkAttrs: a, VlanId: 42})
		}
	case ESP:
		return h.XfrmStateAdd(&netlink.XfrmState{
			Src: net.ParseIP("192.0.2.1"), Dst: net.ParseIP("192.0.2.2"),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Spi: 0x100,
			Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: make([]byte, 32), TruncateLen: 128},
			Crypt: &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: make([]byte, 16)},
		})
	}
	return fmt.Errorf("testenv: unknown feature %q", f)
}

// probeTCBPF attaches a program that passes everything to l's ingress.
func probeTCBPF(h *netlink.Handle, l netlink.Link) error {
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if err := h.QdiscAdd(q); err != nil {
		return fmt.Errorf("clsact qdisc: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		return fmt.Errorf("load a tc program: %w", err)
	}
	defer prog.Close()
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
		Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL}, Fd: prog.FD(), Name: "probe", DirectAction: true}
	if err := h.FilterAdd(f); err != nil {
		return fmt.Errorf("cls_bpf filter: %w", err)
	}
	return nil
}

// probeNAT builds and drops an inet NAT chain in ns.
func probeNAT(ns netns.NsHandle) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "probe"})
	ch := c.AddChain(&nftables.Chain{
		Name: "post", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{&expr.Masq{}}})
	return c.Flush()
}

// probeMount checks that a namespace can be bind-mounted on a file, as
// named namespaces are.
func probeMount() error {
	dir, err := os.MkdirTemp("", "testenv-mount-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := dir + "/ns"
	if err := namespace.CreateNamed(path); err != nil {
		return err
	}
	return namespace.RemoveNamed(path)
}

// RequireCharon ends the test unless it runs as root with strongSwan's
// charon installed, and returns the daemon's path.
func RequireCharon(tb testing.TB) string {
	tb.Helper()
	RequireRoot(tb)
	if _, err := os.Stat(Charon); err != nil {
		Missing(tb, "strongSwan's charon is not installed (apt-get install strongswan-charon "+
			"libcharon-extra-plugins libstrongswan-standard-plugins strongswan-swanctl): %v", err)
	}
	return Charon
}

// RequirePostgres returns the PostgreSQL DSN of EnvPostgres, or ends the
// test when it is unset.
func RequirePostgres(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		Missing(tb, "no PostgreSQL: set %s to a DSN (scripts/ci/postgres.sh starts one and prints it)", EnvPostgres)
	}
	return dsn
}

// RequireKeystone returns the Keystone URL of EnvKeystone, or ends the
// test when it is unset.
func RequireKeystone(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvKeystone)
	if u == "" {
		Missing(tb, "no Keystone: set %s to its v3 URL (scripts/ci/keystone.sh starts one and prints it)", EnvKeystone)
	}
	return u
}

// RequireCommand returns the path of an executable on PATH, or ends the
// test; install says which Debian packages provide it.
func RequireCommand(tb testing.TB, name, install string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, "%s is not on PATH (apt-get install %s): %v", name, install, err)
	}
	return p
}

// RequireLibreswan ends the test unless it runs as root with Libreswan's
// pluto, whack and addconn and NSS's certutil available, and returns the
// root of the Libreswan tree: $NEUTRINO_LIBRESWAN_DIR (an unpacked
// package, as scripts/ci/libreswan.sh prints it; Debian's libreswan
// conflicts with strongSwan) or "/" for an installed one.
func RequireLibreswan(tb testing.TB) string {
	tb.Helper()
	RequireRoot(tb)
	root := os.Getenv("NEUTRINO_LIBRESWAN_DIR")
	if root == "" {
		root = "/"
	}
	for _, p := range []string{"usr/libexec/ipsec/pluto", "usr/libexec/ipsec/whack", "usr/libexec/ipsec/addconn"} {
		if _, err := os.Stat(root + "/" + p); err != nil {
			Missing(tb, "no Libreswan under %q: run sudo bash scripts/ci/libreswan.sh and export the "+
				"NEUTRINO_LIBRESWAN_DIR it prints: %v", root, err)
		}
	}
	RequireCommand(tb, "certutil", "libnss3-tools")
	return root
}
