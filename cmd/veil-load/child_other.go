//go:build !linux

package main

import "os/exec"

// dieWithParent has no portable equivalent outside Linux: there a killed
// load generator may leave its children running.
func dieWithParent(*exec.Cmd) {}
