package lifecycle

import (
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

func TestSignAndVerify(t *testing.T) {
	body := []byte(`{"event":"token.rotated"}`)
	sig := Sign("s3cret", 1700000000, body)
	// Computed independently: printf '1700000000.{"event":"token.rotated"}' | openssl dgst -sha256 -hmac s3cret
	const want = "sha256=3d468a6a97a7bd0775ec0802e99bc71b2c711a4b850b7fb513f7495532faccde"
	if sig != want {
		t.Fatalf("Sign = %q, want %q", sig, want)
	}
	for _, tc := range []struct {
		name            string
		secret, ts, sig string
		body            []byte
		ok              bool
	}{
		{"valid", "s3cret", "1700000000", sig, body, true},
		{"other secret", "other", "1700000000", sig, body, false},
		{"other timestamp", "s3cret", "1700000001", sig, body, false},
		{"tampered body", "s3cret", "1700000000", sig, []byte(`{"event":"token.revoked"}`), false},
		{"timestamp not a number", "s3cret", "soon", sig, body, false},
		{"no signature", "s3cret", "1700000000", "", body, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.secret, tc.ts, tc.sig, tc.body); got != tc.ok {
				t.Fatalf("Verify = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestRetryBackoff(t *testing.T) {
	created := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		attempts int           // before the failed one
		at       time.Duration // after created
		want     time.Duration // delay; -1 for given up
	}{
		{"first failure", 0, 0, 30 * time.Second},
		{"second", 1, time.Minute, time.Minute},
		{"third", 2, 3 * time.Minute, 2 * time.Minute},
		{"capped at an hour", 20, 2 * time.Hour, time.Hour},
		{"last try within a day", 30, 22 * time.Hour, time.Hour},
		{"given up after a day", 30, 23*time.Hour + time.Minute, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &sot.OutboundDelivery{Attempts: tc.attempts, CreatedAt: created}
			at := created.Add(tc.at)
			next := retryAt(d, at)
			switch {
			case tc.want < 0 && next != nil:
				t.Fatalf("retry at %v, want given up", next)
			case tc.want >= 0 && (next == nil || next.Sub(at) != tc.want):
				t.Fatalf("retry at %v, want %v after the attempt", next, tc.want)
			}
		})
	}
}
