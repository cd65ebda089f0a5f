package l2

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// Uplinks: a flat network's bridge enslaves the host interface mapped to
// its physical network; a VLAN network's bridge enslaves the sub-interface
// <interface>.<vlan>, which Neutrino creates and deletes. A mapped
// interface is the operator's: Neutrino only enslaves it (never one that
// has addresses or another master), brings it up, and when no network
// uses it any more takes it out of the bridge and, if it was down before,
// down again. That it was down is remembered in uplinksFile in the
// agent's state dir, so a restarted agent still puts it back.

const uplinksFile = "uplinks.json"

// ErrVLANUnavailable is the kernel refusing 802.1q links.
var ErrVLANUnavailable = errors.New("VLAN (802.1q) is unavailable in this kernel")

// vlanName is the sub-interface of iface for vid.
func vlanName(iface string, vid int) string { return iface + "." + strconv.Itoa(vid) }

// ensureUplink connects the network's bridge to its physical network.
func (k *linux) ensureUplink(br netlink.Link, n agentv1.Network) error {
	iface, ok := k.mappings[n.PhysicalNetwork]
	if !ok {
		return fmt.Errorf("physical network %q is not mapped on this host (physical_interface_mappings)", n.PhysicalNetwork)
	}
	phys, err := linkByName(k.h, iface)
	if err != nil {
		return err
	}
	if phys == nil {
		return fmt.Errorf("interface %s of physical network %s not found", iface, n.PhysicalNetwork)
	}
	switch n.Type {
	case "flat":
		if m := phys.Attrs().MasterIndex; m != 0 && m != br.Attrs().Index {
			return fmt.Errorf("interface %s already has a master (index %d); a mapped interface must be dedicated", iface, m)
		}
		if err := k.dedicated(phys); err != nil {
			return err
		}
		if err := k.raise(phys); err != nil {
			return err
		}
		return k.converge(k.h, "", phys, 0, br.Attrs().Index, true)
	case "vlan":
		if n.VLAN < 1 || n.VLAN > 4094 {
			return fmt.Errorf("VLAN id %d out of range", n.VLAN)
		}
		name := vlanName(iface, n.VLAN)
		if len(name) > unix.IFNAMSIZ-1 {
			return fmt.Errorf("sub-interface name %s is longer than %d characters", name, unix.IFNAMSIZ-1)
		}
		if err := k.raise(phys); err != nil {
			return err
		}
		a := linkAttrs(name, n.MTU, br.Attrs().Index, true)
		a.ParentIndex = phys.Attrs().Index
		vl, err := k.ensureLink(k.h, "", &netlink.Vlan{LinkAttrs: a, VlanId: n.VLAN}, func(l netlink.Link) bool {
			v, ok := l.(*netlink.Vlan)
			return ok && v.VlanId == n.VLAN && v.ParentIndex == phys.Attrs().Index
		})
		if err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) && !vlanModule() {
				return fmt.Errorf("%w: %w", ErrVLANUnavailable, err)
			}
			return err
		}
		return k.converge(k.h, "", vl, n.MTU, br.Attrs().Index, true)
	}
	return nil
}

// vlanModule reports whether the kernel knows 802.1q (built in or loaded).
func vlanModule() bool {
	_, err := os.Stat("/proc/net/vlan")
	return err == nil
}

// dedicated refuses an interface with global addresses: enslaving it
// would cut the host off from them.
func (k *linux) dedicated(l netlink.Link) error {
	addrs, err := k.h.AddrList(l, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	for _, a := range addrs {
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			return fmt.Errorf("interface %s has address %s; a mapped interface must be dedicated to its physical network",
				l.Attrs().Name, a.IPNet)
		}
	}
	return nil
}

// raise brings a mapped interface up, remembering it was down.
func (k *linux) raise(l netlink.Link) error {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	name := l.Attrs().Name
	down := k.loadDown()
	if !down[name] {
		down[name] = true
		if err := k.saveDown(down); err != nil {
			return err
		}
	}
	return k.write("link set "+name+" up", func() error { return k.h.LinkSetUp(l) })
}

// releaseUplinks disconnects what connects the bridge brName to a
// physical network: mapped interfaces leave it (down again if they were),
// sub-interfaces are deleted. Mapped interfaces no bridge uses any more
// are put back down if they were down.
func (k *linux) releaseUplinks(brName string) error {
	br, err := linkByName(k.h, brName)
	if err != nil || br == nil {
		return err
	}
	ls, err := dump(k.h.LinkList)
	if err != nil {
		return err
	}
	byIndex := map[int]netlink.Link{}
	for _, l := range ls {
		byIndex[l.Attrs().Index] = l
	}
	mapped := map[int]bool{}
	for _, iface := range k.mappings {
		for _, l := range ls {
			if l.Attrs().Name == iface {
				mapped[l.Attrs().Index] = true
			}
		}
	}
	var errs []error
	for _, l := range ls {
		a := l.Attrs()
		if a.MasterIndex != br.Attrs().Index {
			continue
		}
		switch {
		case mapped[a.Index]:
			errs = append(errs, k.write("link set "+a.Name+" nomaster", func() error { return k.h.LinkSetNoMaster(l) }))
		case l.Type() == "vlan" && mapped[a.ParentIndex] && strings.HasPrefix(a.Name, byIndex[a.ParentIndex].Attrs().Name+"."):
			errs = append(errs, k.write("link del "+a.Name, func() error { return k.h.LinkDel(l) }))
		}
	}
	errs = append(errs, k.lowerIdle())
	return errors.Join(errs...)
}

// lowerIdle puts back down the mapped interfaces that were down before
// Neutrino raised them and that no bridge or sub-interface uses now.
func (k *linux) lowerIdle() error {
	down := k.loadDown()
	if len(down) == 0 {
		return nil
	}
	ls, err := dump(k.h.LinkList)
	if err != nil {
		return err
	}
	used := map[int]bool{}
	for _, l := range ls {
		if l.Attrs().MasterIndex != 0 {
			used[l.Attrs().Index] = true
		}
		if l.Type() == "vlan" {
			used[l.Attrs().ParentIndex] = true
		}
	}
	var errs []error
	changed := false
	for _, l := range ls {
		name := l.Attrs().Name
		if !down[name] || used[l.Attrs().Index] || !slices.Contains(slices.Collect(maps.Values(k.mappings)), name) {
			continue
		}
		if l.Attrs().Flags&net.FlagUp != 0 {
			if err := k.write("link set "+name+" down", func() error { return k.h.LinkSetDown(l) }); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		delete(down, name)
		changed = true
	}
	if changed {
		errs = append(errs, k.saveDown(down))
	}
	return errors.Join(errs...)
}

// loadDown reads which mapped interfaces were down before Neutrino
// raised them (memory only without a state dir).
func (k *linux) loadDown() map[string]bool {
	if k.stateDir == "" {
		if k.down == nil {
			k.down = map[string]bool{}
		}
		return k.down
	}
	down := map[string]bool{}
	if data, err := os.ReadFile(filepath.Join(k.stateDir, uplinksFile)); err == nil {
		_ = json.Unmarshal(data, &down)
	}
	return down
}

func (k *linux) saveDown(down map[string]bool) error {
	if k.stateDir == "" {
		k.down = down
		return nil
	}
	data, _ := json.Marshal(down)
	if err := os.MkdirAll(k.stateDir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(k.stateDir, uplinksFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(k.stateDir, uplinksFile))
}
