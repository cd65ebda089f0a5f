package strongswan

import (
	"fmt"
	"net"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Data planes: where ESP packets are encrypted.
const (
	// DataPlaneXFRM is the kernel's IPsec (XFRM states and policies with
	// the esp4/esp6 modules); charon only negotiates.
	DataPlaneXFRM = "xfrm"
	// DataPlaneLibipsec is charon's kernel-libipsec plugin: ESP in user
	// space, packets routed through the TUN device ipsec0 of the router's
	// namespace. It works on kernels without ESP, more slowly.
	DataPlaneLibipsec = "libipsec"
	// DataPlaneAuto detects the data plane at agent start.
	DataPlaneAuto = "auto"
)

// DetectDataPlane probes whether the kernel can install an ESP state: it
// adds one in a throw-away network namespace. It returns DataPlaneXFRM
// when that works, else DataPlaneLibipsec with the kernel's refusal as
// the reason.
func DetectDataPlane() (plane, reason string) {
	err := namespace.OnThread(func() error {
		ns, err := netns.New() // this throw-away thread is now in it
		if err != nil {
			return fmt.Errorf("new network namespace: %w", err)
		}
		defer ns.Close()
		st := &netlink.XfrmState{
			Src: net.ParseIP("192.0.2.1"), Dst: net.ParseIP("192.0.2.2"),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Spi: 0x100,
			Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: make([]byte, 32), TruncateLen: 128},
			Crypt: &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: make([]byte, 16)},
		}
		if err := netlink.XfrmStateAdd(st); err != nil {
			return fmt.Errorf("the kernel refuses an ESP state (no esp4/XFRM ESP support): %w", err)
		}
		return nil
	})
	if err != nil {
		return DataPlaneLibipsec, err.Error()
	}
	return DataPlaneXFRM, "the kernel installs ESP states"
}

// ResolveDataPlane turns a configured value (auto, xfrm, libipsec) into
// the data plane to use, with the reason for the choice.
func ResolveDataPlane(configured string) (plane, reason string, err error) {
	switch configured {
	case "", DataPlaneAuto:
		plane, reason = DetectDataPlane()
		return plane, reason, nil
	case DataPlaneXFRM, DataPlaneLibipsec:
		return configured, "set in the configuration", nil
	}
	return "", "", fmt.Errorf("ipsec data plane %q: want auto, xfrm or libipsec", configured)
}

// FlushXFRM removes every XFRM state and policy of the router namespace
// at netnsPath, which only the router's charon fills. Stopping charon
// removes its own SAs and policies but not the larval states the kernel
// made for packets that hit a trap policy (they would linger for 30 s),
// and a charon that died leaves everything behind. A namespace that is
// gone has nothing to flush.
func FlushXFRM(netnsPath string) error {
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_XFRM)
	if err != nil {
		return fmt.Errorf("xfrm in %s: %w", netnsPath, err)
	}
	defer h.Close()
	if err := h.XfrmPolicyFlush(); err != nil {
		return fmt.Errorf("flush xfrm policies in %s: %w", netnsPath, err)
	}
	if err := h.XfrmStateFlush(0); err != nil {
		return fmt.Errorf("flush xfrm states in %s: %w", netnsPath, err)
	}
	return nil
}
