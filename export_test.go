package sot

import "regexp"

// compileAnchored compiles one pattern anchored on its own, the reference
// the fuzz target compares the joined matcher against.
func compileAnchored(p string) (*regexp.Regexp, error) { return regexp.Compile(`^(?:` + p + `)$`) }
