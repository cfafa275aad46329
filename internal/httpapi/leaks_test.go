package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
)

func TestParseGitHubKeys(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	plain := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	withID := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Key-Identifier": "gh-1"}, Bytes: der}))
	list, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{{"key_identifier": "90a4", "key": plain, "is_current": true}}})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	derRSA, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	sum := sha256.Sum256(der)
	for _, tc := range []struct {
		name   string
		data   string
		wantID string // "" when an error is expected
	}{
		{"GitHub key list", string(list), "90a4"},
		{"PEM with Key-Identifier", withID, "gh-1"},
		{"PEM without identifier", plain, hex.EncodeToString(sum[:])},
		{"P-384 key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der384})), ""},
		{"RSA key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: derRSA})), ""},
		{"empty", "", ""},
		{"key list without keys", `{"public_keys": []}`, ""},
		{"key list with a bad key", `{"public_keys": [{"key_identifier": "x", "key": "nope"}]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseGitHubKeys([]byte(tc.data))
			if tc.wantID == "" {
				if err == nil {
					t.Fatalf("no error; keys %v", keys)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k := keys[tc.wantID]; k == nil || !k.Equal(&key.PublicKey) {
				t.Fatalf("keys = %v, want the key under %q", keys, tc.wantID)
			}
		})
	}
}

// FuzzParseGitHubKeys checks that no key file makes the parser panic, and
// that every key it returns is a P-256 key.
func FuzzParseGitHubKeys(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	plain := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Key-Identifier": "k"}, Bytes: der})
	f.Add(plain)
	f.Add([]byte(`{"public_keys": [{"key_identifier": "k", "key": "` + string(plain) + `"}]}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseGitHubKeys(data)
		if err != nil {
			return
		}
		for id, k := range keys {
			if k.Curve != elliptic.P256() {
				t.Fatalf("key %q is not P-256", id)
			}
		}
	})
}
