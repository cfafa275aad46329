//go:build !linux

package pgtest

import "syscall"

// dieWithParent does nothing where the kernel cannot signal a child on
// its parent's death: stop, run by Main, is then the only cleanup.
func dieWithParent(*syscall.SysProcAttr) {}
