package process

import "syscall"

// procAttr puts a child in its own process group (a terminal's Ctrl-C
// reaches the suite, which stops its children in order) and kills it if the
// suite itself dies, so no broker or scorer outlives a crashed run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
