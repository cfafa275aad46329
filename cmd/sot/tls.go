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
		// The values are shared, read-only slices: Header.Set would
		// allocate one per header per request, five on every token check.
		// Keys are in canonical form.
		h := w.Header()
		h["X-Content-Type-Options"] = nosniffHeader
		h["X-Frame-Options"] = denyHeader
		h["Referrer-Policy"] = noReferrerHeader
		if tls {
			h["Strict-Transport-Security"] = hstsHeader
		}
		if httpapi.Owns(r.URL.Path) {
			h["Content-Security-Policy"] = apiCSPHeader
			h["Cache-Control"] = noStoreHeader
		}
		next.ServeHTTP(w, r)
	})
}

// Header values of securityHeaders. Nothing may modify them: a handler
// that changes one of these headers replaces the slice (Header.Set) or
// appends to it (Header.Add), which copies, since each has no spare capacity.
var (
	nosniffHeader    = []string{"nosniff"}
	denyHeader       = []string{"DENY"}
	noReferrerHeader = []string{"no-referrer"}
	hstsHeader       = []string{hstsValue}
	apiCSPHeader     = []string{apiCSP}
	noStoreHeader    = []string{"no-store"}
)
