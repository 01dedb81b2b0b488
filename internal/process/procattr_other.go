//go:build !linux

package process

import "syscall"

// procAttr puts a child in its own process group, so a terminal's Ctrl-C
// reaches the suite, which stops its children in order.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
