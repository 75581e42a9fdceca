package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to send cmd SIGTERM when the load
// generator dies, so a load generator killed mid-phase (timeout, kill)
// leaves no veil serve, sink or baseline running beside the next
// measurement. (A veil serve shuts down cleanly on SIGTERM.)
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
