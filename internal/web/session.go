package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cookie names.
const (
	sessionCookie = "sot_session"
	secretCookie  = "sot_secret"
)

// sessionTTL is how long a login lasts. Sessions are not renewed: a
// working day, then the user logs in again.
const sessionTTL = 12 * time.Hour

// flashTTL bounds how long a freshly created secret waits, encrypted in a
// cookie, for the page that shows it.
const flashTTL = 2 * time.Minute

// keys are the secrets of the UI, each derived from Config.SessionKey for
// one purpose so that a value made for one use never verifies for another.
type keys struct {
	session []byte // HMAC of session cookies
	csrf    []byte // HMAC of CSRF tokens
	flash   cipher.AEAD
}

func deriveKeys(master []byte) (*keys, error) {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte("sot web " + label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("flash"))
	if err != nil {
		return nil, fmt.Errorf("flash cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("flash cipher: %w", err)
	}
	return &keys{session: derive("session"), csrf: derive("csrf"), flash: aead}, nil
}

// session is a verified session cookie.
type session struct {
	userID  int64
	expires time.Time
	value   string // the cookie value, which CSRF tokens are bound to
}

var b64 = base64.RawURLEncoding

// newSession returns the cookie value of a session of userID that expires
// at expires: "v1.<userID>.<expiry unix>.<HMAC-SHA256>". It holds no
// server-side state, so any replica that shares the key accepts it.
func (k *keys) newSession(userID int64, expires time.Time) string {
	payload := "v1." + strconv.FormatInt(userID, 10) + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + b64.EncodeToString(k.mac(k.session, payload))
}

var errBadSession = errors.New("invalid session cookie")

// parseSession verifies a session cookie value at now.
func (k *keys) parseSession(value string, now time.Time) (*session, error) {
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return nil, errBadSession
	}
	payload, sig := value[:i], value[i+1:]
	mac, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, k.mac(k.session, payload)) {
		return nil, errBadSession
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, errBadSession
	}
	uid, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || uid <= 0 {
		return nil, errBadSession
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return nil, errBadSession
	}
	expires := time.Unix(exp, 0)
	if !now.Before(expires) {
		return nil, errBadSession
	}
	return &session{userID: uid, expires: expires, value: value}, nil
}

// csrfToken returns the CSRF token of a session: an HMAC of its cookie, so
// it is per session, needs no storage, and dies with the session.
func (k *keys) csrfToken(s *session) string {
	return b64.EncodeToString(k.mac(k.csrf, s.value))
}

// checkCSRF reports whether token is the CSRF token of s.
func (k *keys) checkCSRF(s *session, token string) bool {
	got, err := b64.DecodeString(token)
	return err == nil && hmac.Equal(got, k.mac(k.csrf, s.value))
}

func (k *keys) mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// flash is a token secret on its way from the create request to the page
// that shows it once (POST-redirect-GET). It travels encrypted in a cookie
// scoped to that page, so any replica can show it and a reload cannot.
type flash struct {
	UserID  int64  `json:"u"`
	TokenID int64  `json:"t"`
	Secret  string `json:"s"`
	Expires int64  `json:"e"`
	Rotated bool   `json:"r,omitempty"` // a rotation's new secret, not a new token's
}

// sealFlash encrypts f, bound to the cookie path so that it cannot be
// replayed on another page.
func (k *keys) sealFlash(f flash, path string) (string, error) {
	plain, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("encode flash: %w", err)
	}
	nonce := make([]byte, k.flash.NonceSize())
	rand.Read(nonce)
	return b64.EncodeToString(k.flash.Seal(nonce, nonce, plain, []byte(path))), nil
}

var errBadFlash = errors.New("invalid flash cookie")

// openFlash decrypts and checks a flash cookie for userID and tokenID on
// path at now.
func (k *keys) openFlash(value, path string, userID, tokenID int64, now time.Time) (*flash, error) {
	raw, err := b64.DecodeString(value)
	ns := k.flash.NonceSize()
	if err != nil || len(raw) < ns {
		return nil, errBadFlash
	}
	plain, err := k.flash.Open(nil, raw[:ns], raw[ns:], []byte(path))
	if err != nil {
		return nil, errBadFlash
	}
	var f flash
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, errBadFlash
	}
	if f.UserID != userID || f.TokenID != tokenID || now.Unix() >= f.Expires {
		return nil, errBadFlash
	}
	return &f, nil
}
