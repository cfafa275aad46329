// Package client is the Go client of the sot HTTP API (v1): scoped
// organization tokens for CI pipelines.
//
// A Client holds a base URL and a credential, an organization token
// ("sot_…") or a personal token ("sotu_…"), and sends it as a Bearer
// token on every request:
//
//	c, err := client.New("https://sot.example.com", os.Getenv("SOT_TOKEN"))
//	if err != nil { … }
//	me, err := c.Me(ctx)
//
// Every API error is returned as an *Error, decoded from the server's RFC
// 9457 problem details, so callers can branch on the status or the problem
// type with IsNotFound, IsUnauthenticated, IsForbidden and friends. Lists are
// returned as iterators that fetch the next page only when the loop needs
// it:
//
//	for p, err := range c.Projects(ctx, "acme", "") {
//		if err != nil { … }
//		fmt.Println(p.Key)
//	}
//
// The package depends on the standard library only, so that programs using
// it do not pull in the server.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultURL is where a server started with no flags listens.
const DefaultURL = "http://127.0.0.1:8080"

// Client calls one sot server with one credential. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL
	token     string
	hc        *http.Client
	userAgent string
	pageSize  int
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc instead of
// http.DefaultClient: for timeouts, proxies, TLS settings or tests.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithPageSize sets how many items the list iterators ask for per page
// (1 to 1000; the server's default is 50).
func WithPageSize(n int) Option { return func(c *Client) { c.pageSize = n } }

// New returns a client of the server at baseURL (for example
// "https://sot.example.com", optionally with a path prefix) that
// authenticates with token. An empty token sends no credential, which is
// enough for the health endpoints and the anonymous ones.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: invalid base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: invalid base URL %q: want http:// or https:// and a host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, token: token, hc: http.DefaultClient, userAgent: "sot-go-client"}
	for _, o := range opts {
		o(c)
	}
	if c.pageSize < 0 || c.pageSize > 1000 {
		return nil, fmt.Errorf("client: page size %d out of range 1..1000", c.pageSize)
	}
	return c, nil
}

// BaseURL returns the server's base URL as given to New, without a
// trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// url builds the URL of an API path (already escaped) with query q.
func (c *Client) url(path string, q url.Values) string {
	s := c.base.String() + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// seg escapes one path segment (an organization or project key, a login).
func seg(s string) string { return url.PathEscape(s) }

// newRequest builds a request with the credential and the usual headers.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// do sends a request with an optional JSON body and decodes a JSON response
// into out (when out is non-nil). A status outside 2xx is an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

// send sends req and decodes the response into out.
func (c *Client) send(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		// Drain so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: decoding %s %s response: %w", req.Method, req.URL.Path, err)
	}
	return nil
}
