package pgtest

import "syscall"

// dieWithParent has the kernel send the server SIGQUIT (immediate
// shutdown) when the test binary dies, even without running stop.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
