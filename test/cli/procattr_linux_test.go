package cli_test

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill cmd when the test process dies, so a
// test binary killed by `go test -timeout` leaves no server behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
