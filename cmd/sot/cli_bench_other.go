//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

import "time"

// processCPU reports that the CPU time of this process is not known here.
func processCPU() (time.Duration, bool) { return 0, false }
