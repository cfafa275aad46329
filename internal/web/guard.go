package web

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/sot-dev/sot"
)

// uiFormLimit is how much of a form body textGuard checks: the UI's own
// form limit (larger forms are refused with 413).
const uiFormLimit = 1 << 20

// textGuard refuses, with 400, a request to the UI whose path, query or
// form holds invalid UTF-8 or a NUL character: no key, name or value of sot
// may hold one, and PostgreSQL refuses them in text, which would surface
// as a 5xx. (The API makes the same check in httpapi.)
func textGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sot.ValidText(r.URL.Path) || !cleanQuery(r.URL.RawQuery) {
			http.Error(w, "Bad request: the address holds invalid characters.", http.StatusBadRequest)
			return
		}
		if r.Body != nil && r.Body != http.NoBody && isForm(r.Header.Get("Content-Type")) {
			b, err := io.ReadAll(io.LimitReader(r.Body, uiFormLimit+1))
			if err != nil {
				http.Error(w, "Bad request: the form could not be read.", http.StatusBadRequest)
				return
			}
			if len(b) <= uiFormLimit && !cleanQuery(string(b)) {
				http.Error(w, "Bad request: the form holds invalid characters.", http.StatusBadRequest)
				return
			}
			// The UI reads the form again, with its own limit.
			r.Body = readCloser{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		}
		next.ServeHTTP(w, r)
	})
}

type readCloser struct {
	io.Reader
	io.Closer
}

func isForm(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// cleanQuery reports whether every key and value of a URL-encoded query
// decodes to clean text. Malformed encodings are left to the handler.
func cleanQuery(raw string) bool {
	if raw == "" {
		return true
	}
	q, _ := url.ParseQuery(raw)
	for k, vs := range q {
		if !sot.ValidText(k) {
			return false
		}
		for _, v := range vs {
			if !sot.ValidText(v) {
				return false
			}
		}
	}
	return true
}
