// Package namespace runs code in Linux network namespaces safely and
// manages named ones: every namespace change happens on a locked OS thread
// that is thrown away afterwards, so it never leaks to other goroutines.
package namespace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// OnThread runs fn on a locked OS thread that is thrown away afterwards, so
// a namespace change made by fn never leaks to other goroutines.
func OnThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		errc <- fn()
	}()
	return <-errc
}

// Do runs fn on a throw-away thread inside namespace ns.
func Do(ns netns.NsHandle, fn func() error) error {
	return OnThread(func() error {
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return fn()
	})
}

// New returns a new, unnamed network namespace.
func New() (netns.NsHandle, error) {
	ns := netns.None()
	err := OnThread(func() error {
		var err error
		ns, err = netns.New()
		return err
	})
	return ns, err
}

// CreateNamed creates a network namespace and bind-mounts it at path.
func CreateNamed(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	err = OnThread(func() error {
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

// RemoveNamed unmounts and removes a namespace file; the namespace itself goes
// when nothing holds it any more. A file can carry several stacked mounts:
// `ip netns add` turns the directory into a shared bind mount of itself,
// which duplicates mounts made before it, so unmount until none is left.
func RemoveNamed(path string) error {
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

// PrepareDir makes dir a shared bind mount of itself, as iproute2's
// `ip netns add` does, so that namespace mounts made in it propagate and
// can be removed by anyone. Without it, an `ip netns add` run after the
// agent made router namespaces stacks a new bind mount over the directory
// and those namespaces can no longer be unmounted or deleted (EBUSY).
// The agent calls it once at start; it is idempotent.
func PrepareDir(dir string) error {
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
