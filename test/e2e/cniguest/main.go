// Command cniguest is a container runtime's smallest part, for the lab's
// guests (TestLabGuestCNI): it creates container namespaces and runs
// neutrino-cni in them through libcni, as a runtime would, and probes
// from them. It is built statically on the host and run from the host's
// root shared into the guest. One operation per run:
//
//	cniguest add CONF ID          new namespace, CNI ADD; prints "NS=... IP=... MAC=..."
//	cniguest check CONF ID NS     CNI CHECK against the cached ADD result
//	cniguest del CONF ID NS       CNI DEL, then the namespace goes
//	cniguest ping NS SRC DST      exit 0 when DST answers SRC's ping from NS
//	cniguest addr NS DEV PREFIX   adds an address (a spoof) in NS
//
// CNI_PATH names the plugins' directory; the cache is under /tmp.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cniguest:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: cniguest add|check|del|ping|addr ...")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cni := libcni.NewCNIConfigWithCacheDir([]string{os.Getenv("CNI_PATH")}, "/tmp/cnicache", nil)
	switch {
	case args[0] == "add" && len(args) == 3:
		list, err := libcni.ConfListFromFile(args[1])
		if err != nil {
			return err
		}
		netns, err := testutils.NewNS()
		if err != nil {
			return err
		}
		out, err := cni.AddNetworkList(ctx, list, &libcni.RuntimeConf{ContainerID: args[2], NetNS: netns.Path(), IfName: "eth0"})
		if err != nil {
			return fmt.Errorf("ADD: %w", err)
		}
		res, err := current.NewResultFromResult(out)
		if err != nil {
			return err
		}
		if len(res.IPs) != 1 || len(res.Interfaces) != 1 {
			return fmt.Errorf("ADD: result %v", res)
		}
		fmt.Printf("NS=%s IP=%s MAC=%s\n", netns.Path(), res.IPs[0].Address.IP, res.Interfaces[0].Mac)
		return nil
	case args[0] == "check" && len(args) == 4:
		list, err := libcni.ConfListFromFile(args[1])
		if err != nil {
			return err
		}
		if err := cni.CheckNetworkList(ctx, list, &libcni.RuntimeConf{ContainerID: args[2], NetNS: args[3], IfName: "eth0"}); err != nil {
			return fmt.Errorf("CHECK: %w", err)
		}
		return nil
	case args[0] == "del" && len(args) == 4:
		list, err := libcni.ConfListFromFile(args[1])
		if err != nil {
			return err
		}
		if err := cni.DelNetworkList(ctx, list, &libcni.RuntimeConf{ContainerID: args[2], NetNS: args[3], IfName: "eth0"}); err != nil {
			return fmt.Errorf("DEL: %w", err)
		}
		// The namespace's bind mount goes (detached: libcni's plugin may
		// still be letting go of it), then its file.
		if err := unix.Unmount(args[3], unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", args[3], err)
		}
		return os.Remove(args[3])
	case args[0] == "ping" && len(args) == 4:
		return ns.WithNetNSPath(args[1], func(ns.NetNS) error { return testutils.Ping(args[2], args[3], 2) })
	case args[0] == "addr" && len(args) == 4:
		return ns.WithNetNSPath(args[1], func(ns.NetNS) error {
			l, err := netlink.LinkByName(args[2])
			if err != nil {
				return err
			}
			ip, ipn, err := net.ParseCIDR(args[3])
			if err != nil {
				return err
			}
			ipn.IP = ip
			return netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn})
		})
	}
	return fmt.Errorf("unknown or incomplete command %q", args)
}
