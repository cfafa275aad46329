package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/sot-dev/sot/internal/httpapi"
)

// certReloader serves the certificate of a key pair on disk and reloads it
// on demand (SIGHUP), so that a renewed certificate is picked up without a
// restart. Handshakes read the current pair without a lock.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// newCertReloader loads the pair once; an unusable pair is an error at
// start rather than at the first handshake.
func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads the pair again. On failure the previous pair stays in use:
// a half-written renewal must not take the server down.
func (r *certReloader) reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert.Store(&c)
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 at least, Go's
// default cipher suites (all AEAD with forward secrecy).
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}

// hstsValue asks browsers to use HTTPS only, for a year. Not for
// subdomains: sot does not own its parent domain's other hosts.
const hstsValue = "max-age=31536000"

// apiCSP forbids an API response from loading or framing anything, should
// a browser ever render one.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries, API and UI
// alike (the UI sets its own Content-Security-Policy and Referrer-Policy
// over these). API responses are never cached: several carry secrets,
// and none is worth a stale copy.
func securityHeaders(next http.Handler, tls bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if tls {
			h.Set("Strict-Transport-Security", hstsValue)
		}
		if httpapi.Owns(r.URL.Path) {
			h.Set("Content-Security-Policy", apiCSP)
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}
