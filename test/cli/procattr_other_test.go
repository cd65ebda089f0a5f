//go:build !linux

package cli_test

import "os/exec"

// setProcAttr does nothing outside Linux (no parent-death signal there).
func setProcAttr(*exec.Cmd) {}
