package sot

import "testing"

func TestValidText(t *testing.T) {
	for s, want := range map[string]bool{"web": true, "": true, "héllo": true, "a\x00b": false, "\xff": false, "ok\xc3": false} {
		if got := ValidText(s); got != want {
			t.Errorf("ValidText(%q) = %v, want %v", s, got, want)
		}
	}
}
