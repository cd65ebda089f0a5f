package l3

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
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

// onThread runs fn on a locked OS thread that is thrown away afterwards, so
// a namespace change made by fn never leaks to other goroutines.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		errc <- fn()
	}()
	return <-errc
}

// inNS runs fn on a throw-away thread inside namespace ns.
func inNS(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return fn()
	})
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
		if err := removeNS(path); err != nil {
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

// createNS creates a network namespace and bind-mounts it at path.
func createNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount: %w", err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
	}
	return err
}

// removeNS unmounts and removes a namespace file; the namespace itself goes
// when nothing holds it any more. A file can carry several stacked mounts:
// `ip netns add` turns the directory into a shared bind mount of itself,
// which duplicates mounts made before it, so unmount until none is left.
func removeNS(path string) error {
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount: %w", err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ensureSysctls sets routerSysctls inside ns, writing only those that
// differ; write wraps (and counts) each write.
func ensureSysctls(ns netns.NsHandle, write func(op string, fn func() error) error) error {
	return inNS(ns, func() error {
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

// PrepareNetnsDir makes dir a shared bind mount of itself, as iproute2's
// `ip netns add` does, so that namespace mounts made in it propagate and
// can be removed by anyone. Without it, an `ip netns add` run after the
// agent made router namespaces stacks a new bind mount over the directory
// and those namespaces can no longer be unmounted or deleted (EBUSY).
// The agent calls it once at start; it is idempotent.
func PrepareNetnsDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s on itself: %w", dir, err)
		}
		err = unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	return nil
}
