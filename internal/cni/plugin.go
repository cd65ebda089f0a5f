package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"golang.org/x/sys/unix"
)

// Funcs are the plugin's CNI commands, for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus}
}

// VersionInfo lists the CNI spec versions the plugin speaks.
var VersionInfo = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// vmPort is what the plugin needs of the VM's port, cached by MAC.
type vmPort struct {
	ID, NetworkID, SubnetID, MAC, ProjectID string
}

// session is one command's configuration, API client and lock.
type session struct {
	conf   *NetConf
	api    *API
	ctx    context.Context
	cancel context.CancelFunc
	lock   *os.File
}

func open(args *skel.CmdArgs) (*session, error) {
	conf, err := LoadConf(args.StdinData)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "invalid network configuration", err.Error())
	}
	// Every API call of the command fits in a few request timeouts.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Duration(conf.TimeoutSeconds)*time.Second)
	s := &session{conf: conf, ctx: ctx, cancel: cancel}
	if err := os.MkdirAll(conf.StateDir, 0o700); err != nil {
		s.close()
		return nil, fmt.Errorf("state dir: %w", err)
	}
	// One command at a time per VM: the reservations, pairs and VLAN ids
	// of one VM change in order (the API's If-Match guards the rest).
	f, err := os.OpenFile(filepath.Join(conf.StateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("lock: %w", err)
	}
	s.lock = f
	if err := flock(ctx, f); err != nil {
		s.close()
		return nil, err
	}
	if s.api, err = Dial(ctx, conf); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// flock takes the lock on f, waiting at most until ctx ends: a plugin
// stuck elsewhere in this VM fails this command instead of hanging it.
func flock(ctx context.Context, f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: another neutrino-cni command of this VM holds it: %w", f.Name(), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *session) close() {
	if s.lock != nil {
		s.lock.Close() // releases the flock
	}
	s.cancel()
}

// vmPort finds the VM's port from the master's MAC, from the cache if
// it has it, else from the API: the port with that MAC (and, if several
// networks have one, an address of the master) that the caller owns.
func (s *session) vmPort(master string) (*vmPort, error) {
	l, err := masterLink(master)
	if err != nil {
		return nil, err
	}
	mac := l.Attrs().HardwareAddr.String()
	cache := filepath.Join(s.conf.StateDir, "vm-port-"+strings.ReplaceAll(mac, ":", "")+".json")
	if b, err := os.ReadFile(cache); err == nil {
		var v vmPort
		if json.Unmarshal(b, &v) == nil && v.ID != "" {
			return &v, nil
		}
	}
	ps, err := s.api.portsByMAC(s.ctx, mac)
	if err != nil {
		return nil, err
	}
	if len(ps) > 1 {
		addrs := masterAddrs(l)
		ps = slices.DeleteFunc(ps, func(p ports.Port) bool {
			return !slices.ContainsFunc(p.FixedIPs, func(ip ports.IP) bool { return slices.Contains(addrs, ip.IPAddress) })
		})
	}
	if s.conf.Auth.Type == AuthNoAuth {
		var others []string
		ps = slices.DeleteFunc(ps, func(p ports.Port) bool {
			if p.ProjectID != s.conf.Auth.ProjectID {
				others = append(others, fmt.Sprintf("%s (project %s)", p.ID, p.ProjectID))
				return true
			}
			return false
		})
		if len(ps) == 0 && len(others) > 0 {
			return nil, fmt.Errorf("the port of %s's MAC %s is not the caller's: %s, not project %s",
				l.Attrs().Name, mac, strings.Join(others, ", "), s.conf.Auth.ProjectID)
		}
	}
	switch len(ps) {
	case 0:
		return nil, fmt.Errorf("no Networking API port has %s's MAC %s (or the caller may not see it): is %s the VM's Neutrino NIC?",
			l.Attrs().Name, mac, l.Attrs().Name)
	case 1:
	default:
		return nil, fmt.Errorf("%d ports have %s's MAC %s; name the master or give it its port's address", len(ps), l.Attrs().Name, mac)
	}
	p := ps[0]
	v := &vmPort{ID: p.ID, NetworkID: p.NetworkID, MAC: p.MACAddress, ProjectID: p.ProjectID}
	for _, ip := range p.FixedIPs {
		if net.ParseIP(ip.IPAddress).To4() != nil {
			v.SubnetID = ip.SubnetID
			break
		}
	}
	if v.SubnetID == "" {
		return nil, fmt.Errorf("VM port %s has no IPv4 address to take the containers' subnet from", p.ID)
	}
	if b, err := json.Marshal(v); err == nil {
		_ = os.WriteFile(cache, b, 0o600)
	}
	return v, nil
}

// forget drops the cached VM port (it was deleted, or moved).
func (s *session) forget() {
	matches, _ := filepath.Glob(filepath.Join(s.conf.StateDir, "vm-port-*.json"))
	for _, m := range matches {
		os.Remove(m)
	}
}

func cmdAdd(args *skel.CmdArgs) error {
	s, err := open(args)
	if err != nil {
		return err
	}
	defer s.close()
	res, err := s.add(args)
	if err != nil {
		return err
	}
	return types.PrintResult(res, s.conf.CNIVersion)
}

func (s *session) add(args *skel.CmdArgs) (*current.Result, error) {
	conf := s.conf
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return nil, fmt.Errorf("container netns %s: %w", args.Netns, err)
	}
	defer netns.Close()
	master, err := masterLink(conf.Master)
	if err != nil {
		return nil, err
	}
	vm, err := s.vmPort(conf.Master)
	if err != nil {
		return nil, err
	}
	sn, err := subnets.Get(s.ctx, s.api.c, vm.SubnetID).Extract()
	if err != nil {
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			s.forget()
		}
		return nil, fmt.Errorf("subnet %s of VM port %s: %w", vm.SubnetID, vm.ID, err)
	}
	a := Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
	mark := marker(vm.ID, conf.Name)
	// A retried ADD finds its reservation again.
	have, err := s.api.reservations(s.ctx, mark, portName(conf.Name, a))
	if err != nil {
		return nil, err
	}
	var rp *ports.Port
	if len(have) > 0 {
		rp = &have[0]
	} else {
		opts := ports.CreateOpts{NetworkID: vm.NetworkID, Name: portName(conf.Name, a), Description: mark,
			FixedIPs: []ports.IP{{SubnetID: vm.SubnetID}}}
		if conf.Mode != ModeTrunk {
			opts.DeviceID, opts.DeviceOwner = args.ContainerID, DeviceOwner
		}
		if len(conf.SecurityGroups) > 0 {
			groups := slices.Clone(conf.SecurityGroups)
			opts.SecurityGroups = &groups
		}
		if rp, err = s.api.createPort(s.ctx, opts); err != nil {
			return nil, err
		}
	}
	created := len(have) == 0
	undo := func(cause error) error {
		if !created { // a retried ADD leaves the earlier one's reservation alone
			return cause
		}
		return errors.Join(cause, s.release(vm.ID, rp))
	}
	if len(rp.FixedIPs) == 0 {
		return nil, undo(fmt.Errorf("reservation port %s got no address", rp.ID))
	}
	addr := net.ParseIP(rp.FixedIPs[0].IPAddress)
	spec := linkSpec{mode: conf.Mode, ipvlanMode: conf.IPvlanMode, master: master, mtu: conf.MTU}
	switch conf.Mode {
	case ModeMacvlan, ModeIPvlan:
		pair := Pair{IP: addr.String(), MAC: vm.MAC}
		if conf.Mode == ModeMacvlan {
			pair.MAC = rp.MACAddress
		}
		if err := s.api.editPairs(s.ctx, vm.ID, func(ps []Pair) ([]Pair, bool) { return withPair(ps, pair) }); err != nil {
			if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				s.forget()
			}
			return nil, undo(err)
		}
		if conf.Mode == ModeMacvlan {
			spec.mac, _ = net.ParseMAC(rp.MACAddress)
		}
	case ModeTrunk:
		vid, err := s.subport(vm.ID, rp.ID)
		if err != nil {
			return nil, undo(err)
		}
		spec.vlan = vid
		spec.mac, _ = net.ParseMAC(rp.MACAddress)
	}
	_, cidr, err := net.ParseCIDR(sn.CIDR)
	if err != nil {
		return nil, undo(fmt.Errorf("subnet %s cidr %q: %w", sn.ID, sn.CIDR, err))
	}
	mac, err := makeLink(netns, args.IfName, spec)
	if err != nil {
		return nil, undo(err)
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: args.IfName, Mac: mac.String(), Sandbox: netns.Path()}}}
	ipc := &current.IPConfig{Interface: current.Int(0), Address: net.IPNet{IP: addr, Mask: cidr.Mask}}
	def := &types.Route{Dst: net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
	if gw := net.ParseIP(sn.GatewayIP); gw != nil && !(conf.Mode == ModeIPvlan && conf.IPvlanMode == "l3") {
		ipc.Gateway = gw
		def.GW = gw
	}
	res.IPs = []*current.IPConfig{ipc}
	if def.GW != nil || (conf.Mode == ModeIPvlan && conf.IPvlanMode == "l3") {
		res.Routes = []*types.Route{def}
	}
	if err := configure(netns, args.IfName, res); err != nil {
		return nil, undo(errors.Join(err, removeLink(args.Netns, args.IfName)))
	}
	return res, nil
}

// subport makes port a subport of the VM port's trunk on the lowest free
// VLAN id, and returns that id.
func (s *session) subport(vmPortID, portID string) (int, error) {
	for attempt := 0; attempt < 5; attempt++ {
		t, err := s.api.trunkOf(s.ctx, vmPortID)
		if err != nil {
			return 0, err
		}
		var used []int
		for _, sp := range t.Subports {
			if sp.PortID == portID {
				return sp.SegmentationID, nil
			}
			used = append(used, sp.SegmentationID)
		}
		vid := freeVLAN(used)
		if vid == 0 {
			return 0, fmt.Errorf("trunk %s has no free VLAN id left", t.ID)
		}
		err = s.api.addSubport(s.ctx, t.ID, trunks.Subport{PortID: portID, SegmentationType: "vlan", SegmentationID: vid})
		if err == nil {
			return vid, nil
		}
		if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			return 0, fmt.Errorf("add subport %s to trunk %s: %w", portID, t.ID, err)
		}
		// Another writer took the id: look again.
	}
	return 0, fmt.Errorf("add subport %s: the VLAN ids of trunk of port %s kept changing", portID, vmPortID)
}

// release undoes a reservation: its pair or its subport, then the port.
// Each step tolerates what is already gone.
func (s *session) release(vmPortID string, rp *ports.Port) error {
	var errs []error
	if vmPortID != "" {
		switch s.conf.Mode {
		case ModeMacvlan, ModeIPvlan:
			for _, ip := range rp.FixedIPs {
				err := s.api.editPairs(s.ctx, vmPortID, func(ps []Pair) ([]Pair, bool) { return withoutPair(ps, ip.IPAddress) })
				if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
					errs = append(errs, err)
				}
			}
		case ModeTrunk:
			if rp.DeviceOwner == "trunk:subport" && rp.DeviceID != "" {
				errs = append(errs, s.api.removeSubport(s.ctx, rp.DeviceID, rp.ID))
			}
		}
	}
	errs = append(errs, s.api.deletePort(s.ctx, rp.ID))
	return errors.Join(errs...)
}

// vmPortOf reads the VM port's id back from a reservation's description.
func vmPortOf(description string) string {
	for _, f := range strings.Fields(description) {
		if v, ok := strings.CutPrefix(f, "vm-port="); ok {
			return v
		}
	}
	return ""
}

func cmdDel(args *skel.CmdArgs) error {
	s, err := open(args)
	if err != nil {
		return err
	}
	defer s.close()
	// The reservation is found by name alone: DEL works even when the
	// master or the VM port is gone.
	a := Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
	have, err := s.api.reservations(s.ctx, "", portName(s.conf.Name, a))
	if err != nil {
		return err
	}
	errs := []error{removeLink(args.Netns, args.IfName)}
	for i := range have {
		if !strings.HasPrefix(have[i].Description, "neutrino-cni ") {
			continue
		}
		errs = append(errs, s.release(vmPortOf(have[i].Description), &have[i]))
	}
	return errors.Join(errs...)
}

func cmdCheck(args *skel.CmdArgs) error {
	s, err := open(args)
	if err != nil {
		return err
	}
	defer s.close()
	conf := s.conf
	if conf.RawPrevResult == nil {
		return errors.New("CHECK needs the previous result")
	}
	if err := version.ParsePrevResult(&conf.NetConf); err != nil {
		return err
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return err
	}
	vm, err := s.vmPort(conf.Master)
	if err != nil {
		return err
	}
	a := Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
	have, err := s.api.reservations(s.ctx, marker(vm.ID, conf.Name), portName(conf.Name, a))
	if err != nil {
		return err
	}
	if len(have) == 0 {
		return fmt.Errorf("no reservation for container %s interface %s on VM port %s", a.ContainerID, a.IfName, vm.ID)
	}
	rp := have[0]
	if len(rp.FixedIPs) == 0 || len(prev.IPs) == 0 || !prev.IPs[0].Address.IP.Equal(net.ParseIP(rp.FixedIPs[0].IPAddress)) {
		return fmt.Errorf("reservation %s holds %v, the container was given %v", rp.ID, rp.FixedIPs, prev.IPs)
	}
	ip := rp.FixedIPs[0].IPAddress
	wantMAC := ""
	switch conf.Mode {
	case ModeMacvlan, ModeIPvlan:
		want := Pair{IP: ip, MAC: vm.MAC}
		if conf.Mode == ModeMacvlan {
			want.MAC, wantMAC = rp.MACAddress, rp.MACAddress
		}
		p, err := s.api.port(s.ctx, vm.ID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(p.AllowedAddressPairs, func(ap ports.AddressPair) bool {
			return sameIP(ap.IPAddress, want.IP) && strings.EqualFold(ap.MACAddress, want.MAC)
		}) {
			return fmt.Errorf("VM port %s has no allowed address pair %s %s", vm.ID, want.IP, want.MAC)
		}
	case ModeTrunk:
		wantMAC = rp.MACAddress
		t, err := s.api.trunkOf(s.ctx, vm.ID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(t.Subports, func(sp trunks.Subport) bool { return sp.PortID == rp.ID }) {
			return fmt.Errorf("port %s is not a subport of trunk %s", rp.ID, t.ID)
		}
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("container netns %s: %w", args.Netns, err)
	}
	defer netns.Close()
	return checkLink(netns, args.IfName, wantMAC, prev)
}

func cmdGC(args *skel.CmdArgs) error {
	s, err := open(args)
	if err != nil {
		return err
	}
	defer s.close()
	vm, err := s.vmPort(s.conf.Master)
	if err != nil {
		return err
	}
	have, err := s.api.reservations(s.ctx, marker(vm.ID, s.conf.Name), "")
	if err != nil {
		return err
	}
	names := make(map[string]string, len(have))
	byID := make(map[string]*ports.Port, len(have))
	for i := range have {
		names[have[i].ID], byID[have[i].ID] = have[i].Name, &have[i]
	}
	var valid []Attachment
	for _, v := range s.conf.ValidAttachments {
		valid = append(valid, Attachment{ContainerID: v.ContainerID, IfName: v.IfName})
	}
	var errs []error
	for _, id := range orphans(s.conf.Name, names, valid) {
		errs = append(errs, s.release(vm.ID, byID[id]))
	}
	return errors.Join(errs...)
}

func cmdStatus(args *skel.CmdArgs) error {
	s, err := open(args)
	if err != nil {
		return err
	}
	defer s.close()
	vm, err := s.vmPort(s.conf.Master)
	if err == nil {
		_, err = s.api.port(s.ctx, vm.ID)
	}
	if err != nil {
		s.forget()
		return types.NewError(types.ErrPluginNotAvailable, "the Networking API or the VM's port is not available", err.Error())
	}
	return nil
}
