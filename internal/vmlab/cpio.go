package vmlab

import (
	"fmt"
	"io"
	"strings"
)

// cpioWriter writes a cpio archive in the "newc" format, the one the
// kernel unpacks as an initramfs.
type cpioWriter struct {
	w   io.Writer
	ino int
	n   int64 // bytes written, for the 4-byte padding
	err error
}

func (c *cpioWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	var n int
	n, c.err = c.w.Write(p)
	c.n += int64(n)
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// entry writes one member: mode holds the file type bits (0o100000 file,
// 0o040000 directory, 0o120000 symlink) and the permissions.
func (c *cpioWriter) entry(name string, mode uint32, data []byte) {
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	name = strings.TrimPrefix(name, "/")
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad()
	c.write(data)
	c.pad()
}

// Dir, File and Symlink add members; Close ends the archive.
func (c *cpioWriter) Dir(name string) { c.entry(name, 0o040755, nil) }

func (c *cpioWriter) File(name string, perm uint32, data []byte) {
	c.entry(name, 0o100000|perm&0o7777, data)
}

func (c *cpioWriter) Symlink(name, target string) { c.entry(name, 0o120777, []byte(target)) }

func (c *cpioWriter) Close() error {
	c.ino = 0
	c.entry("TRAILER!!!", 0, nil)
	return c.err
}
