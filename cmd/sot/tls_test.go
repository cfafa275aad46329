//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// testCert returns a self-signed certificate for 127.0.0.1 with the given
// serial number, PEM-encoded, and the parsed certificate.
func testCert(t *testing.T, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "sot test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

// writePair replaces the key pair files the way a renewal tool does: a
// new file renamed over the old one.
func writePair(t *testing.T, certFile, keyFile string, certPEM, keyPEM []byte) {
	t.Helper()
	for path, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// HTTPS with a certificate reloaded on SIGHUP; a broken renewal keeps the
// previous certificate; HSTS on every response.
func TestServeTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1, cert1 := testCert(t, 1)
	c2, k2, cert2 := testCert(t, 2)
	writePair(t, certFile, keyFile, c1, k1)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, serveConfig{
		Addr: ln.Addr().String(), DB: "sqlite:" + filepath.Join(dir, "sot.db"),
		AdminPassword: "admin-password-for-tests", LifecycleInterval: -1,
		TLSCertFile: certFile, TLSKeyFile: keyFile,
	}, &stdout)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	if !bytes.Contains(stdout.Bytes(), []byte("https://"+ln.Addr().String()+"/")) {
		t.Errorf("first-start instructions do not give the https URL:\n%s", stdout.String())
	}

	pool := x509.NewCertPool()
	pool.AddCert(cert1)
	pool.AddCert(cert2)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	url := "https://" + ln.Addr().String()
	// get returns the serial of the certificate served and checks the
	// response's security headers.
	get := func(path string) int64 {
		t.Helper()
		resp, err := hc.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); got != hstsValue {
			t.Errorf("GET %s: Strict-Transport-Security %q, want %q", path, got, hstsValue)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	for _, path := range []string{"/healthz", "/api/v1/me", "/"} {
		if got := get(path); got != 1 {
			t.Fatalf("served certificate %d, want 1", got)
		}
	}
	// Plain HTTP on the TLS port gets nothing useful.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %d, want 400", resp.StatusCode)
		}
	}

	reloadTo := func(want int64) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for get("/healthz") != want {
			if time.Now().After(deadline) {
				t.Fatalf("certificate %d not served within 5 s of SIGHUP", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	writePair(t, certFile, keyFile, c2, k2)
	reloadTo(2)
	// A renewal that went wrong: the previous certificate stays.
	writePair(t, certFile, keyFile, []byte("not a certificate"), k2)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := get("/healthz"); got != 2 {
		t.Fatalf("after a broken renewal: certificate %d, want 2 (kept)", got)
	}
	writePair(t, certFile, keyFile, c1, k1)
	reloadTo(1)
}

// A key pair that cannot be loaded stops the start.
func TestServeTLSBadPair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, _, _ := testCert(t, 1)
	_, k2, _ := testCert(t, 2)
	writePair(t, certFile, keyFile, c1, k2) // mismatched
	_, err := newServer(context.Background(), serveConfig{
		DB: "sqlite:" + filepath.Join(dir, "sot.db"), LifecycleInterval: -1,
		TLSCertFile: certFile, TLSKeyFile: keyFile,
	}, io.Discard)
	if err == nil {
		t.Fatal("newServer accepted a certificate with another key")
	}
}

// Every response, API or UI, success or error, carries the security
// headers; API responses are never cached; no HSTS without TLS.
func TestSecurityHeaders(t *testing.T) {
	s := startServer(t, serverOpts{TrustedProxies: []netip.Prefix{}})
	tok := s.createUser(t, "alice")
	for _, tc := range []struct {
		name, method, path, token string
		api                       bool
	}{
		{"API success", "GET", "/api/v1/me", tok, true},
		{"API secret", "POST", "/api/v1/user/tokens", tok, true},
		{"API 401", "GET", "/api/v1/me", "", true},
		{"API 404", "GET", "/api/v1/nope", tok, true},
		{"check", "GET", "/api/v1/check?org=x&project=y", tok, true},
		{"healthz", "GET", "/healthz", "", true},
		{"metrics", "GET", "/metrics", "", true},
		{"openapi", "GET", "/api/v1/openapi.json", "", true},
		{"UI", "GET", "/", "", false},
		{"UI 404", "GET", "/no/such/page", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.method == "POST" {
				body = map[string]any{"name": "x", "expires_in": "1d"}
			}
			r := s.as(t, tc.token).do(tc.method, tc.path, body)
			want := map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
			}
			if tc.api {
				want["Cache-Control"] = "no-store"
				want["Content-Security-Policy"] = apiCSP
				want["Referrer-Policy"] = "no-referrer"
			}
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if r.Header.Get("Referrer-Policy") == "" {
				t.Error("no Referrer-Policy")
			}
			if got := r.Header.Get("Strict-Transport-Security"); got != "" {
				t.Errorf("HSTS %q without TLS", got)
			}
		})
	}
}
