package l3

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
)

// routerSysctls are set inside every router namespace, before its
// interfaces are created: forwarding, and no IPv6 duplicate address
// detection on the router's interfaces (IPAM keeps addresses unique), so a
// new interface forwards at once instead of waiting for its link-local
// address, the source of its neighbour solicitations.
var routerSysctls = []struct{ key, value string }{
	{"net/ipv4/ip_forward", "1"},
	{"net/ipv6/conf/all/forwarding", "1"},
	{"net/ipv6/conf/default/accept_dad", "0"},
}

// openNS opens the namespace bind-mounted at path. A missing file, or a
// leftover file that is not a namespace, is fs.ErrNotExist (the leftover is
// removed).
func openNS(path string) (netns.NsHandle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return netns.None(), fs.ErrNotExist
		}
		return netns.None(), fmt.Errorf("open namespace %s: %w", path, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(ns), &st); err != nil {
		ns.Close()
		return netns.None(), fmt.Errorf("stat namespace %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		ns.Close()
		if err := namespace.RemoveNamed(path); err != nil {
			return netns.None(), fmt.Errorf("remove stale namespace file: %w", err)
		}
		return netns.None(), fs.ErrNotExist
	}
	return ns, nil
}

// sameNS reports whether the open ns is still the one mounted at path.
func sameNS(ns netns.NsHandle, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(ns), &a) == nil && unix.Stat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// ensureSysctls sets routerSysctls inside ns, writing only those that
// differ; write wraps (and counts) each write.
func ensureSysctls(ns netns.NsHandle, write func(op string, fn func() error) error) error {
	return namespace.Do(ns, func() error {
		var errs []error
		for _, s := range routerSysctls {
			file := "/proc/sys/" + s.key
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("read sysctl: %w", err))
				continue
			}
			if strings.TrimSpace(string(b)) == s.value {
				continue
			}
			errs = append(errs, write("sysctl "+strings.ReplaceAll(s.key, "/", ".")+"="+s.value, func() error {
				return os.WriteFile(file, []byte(s.value+"\n"), 0o644)
			}))
		}
		return errors.Join(errs...)
	})
}
