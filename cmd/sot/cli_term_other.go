//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

import "os"

// isTerminal reports whether f is a character device, the best guess
// without terminal ioctls.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// readSecretLine reads one line; this platform offers no way here to turn
// echo off, so prefer SOT_TOKEN or --token-stdin.
func readSecretLine(f *os.File) (string, error) { return readLine(f) }
