package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sot-dev/sot/client"
)

// globals are the flags every client command shares.
type globals struct {
	URL    string `name:"url" env:"SOT_URL" placeholder:"URL" help:"Server URL (default: the saved login's, else ${default_url})."`
	Token  string `name:"token" env:"SOT_TOKEN" placeholder:"SECRET" help:"Credential: an organization (sot_…) or personal (sotu_…) token (default: the saved login's)."`
	Output string `name:"output" short:"o" enum:"table,json" default:"table" help:"Output format: table or json (the API's objects)."`
}

// credentials is what "sot login" saves.
type credentials struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// credentialsPath returns where "sot login" saves the credentials:
// <user config dir>/sot/credentials.json.
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(dir, "sot", "credentials.json"), nil
}

// loadCredentials reads the saved credentials; none saved is not an error.
func loadCredentials() (credentials, error) {
	var c credentials
	path, err := credentialsPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("reading saved credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("reading saved credentials %s: %w", path, err)
	}
	return c, nil
}

// saveCredentials writes c readable by the user only, replacing the file
// atomically so that a crash never leaves half a token behind.
func saveCredentials(c credentials) (string, error) {
	path, err := credentialsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("saving credentials: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", fmt.Errorf("saving credentials: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.json")
	if err != nil {
		return "", fmt.Errorf("saving credentials: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("saving credentials: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return "", fmt.Errorf("saving credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("saving credentials: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("saving credentials: %w", err)
	}
	return path, nil
}

// endpoint returns the server URL and token to use: flags and environment
// first, then what "sot login" saved, then the default URL.
func (g *globals) endpoint() (url, token string, err error) {
	url, token = g.URL, g.Token
	if url == "" || token == "" {
		saved, err := loadCredentials()
		if err != nil {
			return "", "", err
		}
		// A saved token belongs to the saved server: never send it to
		// another one given by --url.
		if url == "" || strings.TrimSuffix(url, "/") == saved.URL {
			url = saved.URL
			if token == "" {
				token = saved.Token
			}
		}
	}
	if url == "" {
		url = client.DefaultURL
	}
	return url, token, nil
}

// client returns an API client for the resolved URL and token.
func (g *globals) client() (*client.Client, error) {
	url, token, err := g.endpoint()
	if err != nil {
		return nil, err
	}
	return newClient(url, token)
}

// newClient returns an API client for the CLI. A CI step must not hang on a
// server that accepted the connection and never answers, so the transport
// bounds the wait for response headers (counted after the upload is sent).
func newClient(url, token string) (*client.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 2 * time.Minute
	c, err := client.New(url, token,
		client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithUserAgent("sot-cli/"+version),
		client.WithPageSize(200))
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return c, nil
}

// json reports whether the output is JSON.
func (g *globals) json() bool { return g.Output == "json" }

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		// A tab or newline in a value (a project name) would break the
		// columns.
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return nil
}

// fields writes "name: value" lines, aligned, for one object.
func fields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], kv[i+1])
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// timeOr formats t in UTC, or def when t is nil.
func timeOr(t *time.Time, def string) string {
	if t == nil {
		return def
	}
	return t.UTC().Format(time.RFC3339)
}

// scopeSummary describes a token's scope in a few words.
func scopeSummary(t *client.Token) string {
	s := t.Scope
	if s == nil {
		return "-"
	}
	if s.AllProjects {
		return "all projects"
	}
	var parts []string
	// Lists leave the explicit keys out and give their count.
	if n := max(len(s.Projects), t.ProjectCount); n > 0 {
		parts = append(parts, plural(n, "project"))
	}
	if len(s.Patterns) > 0 {
		parts = append(parts, "patterns "+strings.Join(s.Patterns, " "))
	}
	if parts == nil {
		return "no projects"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
