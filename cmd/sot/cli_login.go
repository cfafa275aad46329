package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/sot-dev/sot/client"
)

type loginCmd struct {
	TokenStdin bool `help:"Read the token from standard input (for scripts), instead of asking."`
	oidcLoginFlags
}

func (c *loginCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	if c.OIDC {
		return c.loginOIDC(ctx, g, std)
	}
	saved, err := loadCredentials()
	if err != nil {
		return err
	}
	in, _ := std.in.(*os.File)
	interactive := in != nil && isTerminal(in) && !c.TokenStdin
	url := g.URL
	if url == "" {
		url = saved.URL
		if url == "" {
			url = client.DefaultURL
		}
		if interactive {
			fmt.Fprintf(std.err, "Server URL [%s]: ", url)
			line, err := readLine(in)
			if err != nil {
				return err
			}
			if line = strings.TrimSpace(line); line != "" {
				url = line
			}
		}
	}
	token := g.Token
	if token == "" {
		if interactive {
			fmt.Fprint(std.err, "Token (input hidden): ")
			token, err = readSecretLine(in)
			fmt.Fprintln(std.err)
		} else {
			token, err = readLine(std.in)
		}
		if err != nil {
			return err
		}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return usageErrorf("no token given: use --token, SOT_TOKEN or --token-stdin")
	}
	api, err := newClient(url, token)
	if err != nil {
		return err
	}
	me, err := api.Me(ctx)
	if err != nil {
		return err
	}
	url = api.BaseURL()
	path, err := saveCredentials(credentials{URL: url, Token: token})
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, me)
	}
	fmt.Fprintf(std.out, "logged in to %s as %s\nsaved in %s\n", url, describeMe(me), path)
	return nil
}

// readLine reads up to a newline one byte at a time, so that nothing after
// the line is consumed from a shared standard input.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	var buf [1]byte
	for {
		n, err := r.Read(buf[:])
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b.WriteByte(buf[0])
			if b.Len() > 64<<10 {
				return "", errors.New("input line too long")
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading input: %w", err)
		}
	}
	return strings.TrimSuffix(b.String(), "\r"), nil
}

type logoutCmd struct{}

func (c *logoutCmd) Run(g *globals, std *stdio) error {
	path, err := credentialsPath()
	if err != nil {
		return err
	}
	err = os.Remove(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintln(std.err, "not logged in")
		return nil
	case err != nil:
		return fmt.Errorf("removing saved credentials: %w", err)
	}
	fmt.Fprintf(std.err, "removed %s\n", path)
	return nil
}

type whoamiCmd struct{}

func (c *whoamiCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	me, err := api.Me(ctx)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, me)
	}
	fmt.Fprintln(std.out, describeMe(me))
	switch {
	case me.Type == "user" && len(me.Memberships) > 0:
		t := newTable(std.out, "ORG", "ROLE")
		for _, m := range me.Memberships {
			t.row(m.Org, m.Role)
		}
		return t.flush()
	case me.Type == "org_token" && me.Token != nil:
		t := me.Token
		return fields(std.out,
			"scope", scopeSummary(t),
			"permissions", strings.Join(t.Permissions, ","),
			"expires", timeOr(t.ExpiresAt, "never"))
	}
	return nil
}

// describeMe names the caller in a few words.
func describeMe(me *client.Me) string {
	switch {
	case me.User != nil:
		s := "user " + me.User.Login
		if me.User.Admin {
			s += " (instance admin)"
		}
		return s
	case me.Token != nil:
		org := me.Token.Org
		if me.Org != nil {
			org = me.Org.Key
		}
		return fmt.Sprintf("organization token %d %q of %s", me.Token.ID, me.Token.Name, org)
	}
	return me.Type
}

type versionCmd struct{}

func (c *versionCmd) Run(g *globals, std *stdio) error {
	if g.json() {
		return writeJSON(std.out, map[string]string{"version": version})
	}
	fmt.Fprintln(std.out, "sot", version)
	return nil
}
