package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sot-dev/sot/client"
)

// "sot login --oidc": the tokenless CI step. It finds the job's OIDC ID
// token where the CI system provides it, exchanges it for a short-lived
// organization token, and hands that to the following steps.

// oidcLoginFlags are the flags of "sot login" for the OIDC exchange.
type oidcLoginFlags struct {
	OIDC     bool   `name:"oidc" help:"In a CI job: exchange the job's OIDC ID token for a short-lived organization token (GitHub Actions, GitLab CI, Azure Pipelines). See docs/oidc.md."`
	Org      string `name:"org" placeholder:"ORG" help:"With --oidc: the organization whose trust policies decide."`
	Audience string `name:"audience" default:"sot" help:"With --oidc on GitHub Actions: the audience to request (the trust policy's audience)."`
	TokenEnv string `name:"token-env" default:"SOT_ID_TOKEN" placeholder:"VAR" help:"With --oidc: the environment variable that holds the ID token, if set (GitLab CI id_tokens, or any CI)."`
	// AzureServiceConnection is sent as serviceConnectionId to Azure
	// Pipelines' OIDC endpoint.
	AzureServiceConnection string `name:"azure-service-connection" env:"SOT_AZURE_SERVICE_CONNECTION_ID" placeholder:"ID" help:"With --oidc on Azure Pipelines: the service connection whose ID token to request."`
}

// maxIDTokenResponse bounds the CI system's answer to an ID token request.
const maxIDTokenResponse = 64 << 10

// ciIDToken finds the job's ID token and names its source: the variable
// named by TokenEnv, else GitHub Actions' or Azure Pipelines' token
// request endpoint.
func (f *oidcLoginFlags) ciIDToken(ctx context.Context, getenv func(string) string) (string, string, error) {
	if v := strings.TrimSpace(getenv(f.TokenEnv)); v != "" {
		return v, "$" + f.TokenEnv, nil
	}
	if reqURL, reqTok := getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"); reqURL != "" {
		if reqTok == "" {
			return "", "", errors.New("GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set: give the job `permissions: id-token: write`")
		}
		u, err := url.Parse(reqURL)
		if err != nil {
			return "", "", fmt.Errorf("GitHub Actions: invalid ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
		}
		q := u.Query()
		q.Set("audience", f.Audience)
		u.RawQuery = q.Encode()
		var out struct {
			Value string `json:"value"`
		}
		if err := requestIDToken(ctx, http.MethodGet, u, reqTok, &out); err != nil {
			return "", "", fmt.Errorf("GitHub Actions: %w", err)
		}
		return out.Value, "GitHub Actions", nil
	}
	if reqURL, reqTok := getenv("SYSTEM_OIDCREQUESTURI"), getenv("SYSTEM_ACCESSTOKEN"); reqURL != "" {
		if reqTok == "" {
			return "", "", errors.New("SYSTEM_ACCESSTOKEN is not set in this Azure Pipelines step: map it into the step's env (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken))")
		}
		u, err := url.Parse(reqURL)
		if err != nil {
			return "", "", fmt.Errorf("invalid SYSTEM_OIDCREQUESTURI of Azure Pipelines: %w", err)
		}
		q := u.Query()
		q.Set("api-version", "7.1")
		if f.AzureServiceConnection != "" {
			q.Set("serviceConnectionId", f.AzureServiceConnection)
		}
		u.RawQuery = q.Encode()
		var out struct {
			OIDCToken string `json:"oidcToken"`
		}
		if err := requestIDToken(ctx, http.MethodPost, u, reqTok, &out); err != nil {
			return "", "", fmt.Errorf("request the Azure Pipelines ID token: %w", err)
		}
		return out.OIDCToken, "Azure Pipelines", nil
	}
	if getenv("GITLAB_CI") != "" {
		return "", "", fmt.Errorf("GitLab CI: no ID token in $%s: declare one in .gitlab-ci.yml (id_tokens: %s: aud: sot)", f.TokenEnv, f.TokenEnv)
	}
	return "", "", fmt.Errorf("no CI identity found: not GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL), Azure Pipelines (SYSTEM_OIDCREQUESTURI), and $%s is empty", f.TokenEnv)
}

// requestIDToken asks the CI system's token endpoint u for the job's ID
// token, with the job's request token as the bearer credential, and
// decodes the JSON answer into out. The request token is sent only over
// https, or to the machine itself.
func requestIDToken(ctx context.Context, method string, u *url.URL, bearer string, out any) error {
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return fmt.Errorf("refusing to send the job's request token to %s: https only", u.Redacted())
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("requesting the ID token: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIDTokenResponse))
	if err != nil {
		return fmt.Errorf("requesting the ID token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("requesting the ID token: HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("requesting the ID token: unexpected answer: %w", err)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loginOIDC runs "sot login --oidc": it prints the token for the
// following steps instead of saving it, since a CI job's home is thrown
// away with it.
func (c *loginCmd) loginOIDC(ctx context.Context, g *globals, std *stdio) error {
	if c.Org == "" {
		return usageErrorf("--oidc needs --org ORG")
	}
	baseURL := g.URL
	if baseURL == "" {
		saved, err := loadCredentials()
		if err != nil {
			return err
		}
		baseURL = saved.URL
		if baseURL == "" {
			baseURL = client.DefaultURL
		}
	}
	idToken, source, err := c.ciIDToken(ctx, os.Getenv)
	if err != nil {
		return err
	}
	if idToken == "" {
		return fmt.Errorf("%s gave an empty ID token", source)
	}
	api, err := newClient(baseURL, "")
	if err != nil {
		return err
	}
	ex, err := api.ExchangeIDToken(ctx, c.Org, idToken)
	if err != nil {
		return err
	}
	baseURL = api.BaseURL()
	if g.json() {
		return writeJSON(std.out, ex)
	}
	expires := ex.ExpiresAt.UTC().Format(time.RFC3339)
	if envFile := os.Getenv("GITHUB_ENV"); envFile != "" {
		// Masked first, so the runner hides it in every later log line.
		fmt.Fprintf(std.out, "::add-mask::%s\n", ex.Secret)
		f, err := os.OpenFile(envFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("writing GITHUB_ENV: %w", err)
		}
		_, werr := fmt.Fprintf(f, "SOT_TOKEN=%s\nSOT_URL=%s\n", ex.Secret, baseURL)
		if err := errors.Join(werr, f.Close()); err != nil {
			return fmt.Errorf("writing GITHUB_ENV: %w", err)
		}
		fmt.Fprintf(std.err, "exchanged the %s ID token for organization token %d of %s (trust policy %s); SOT_TOKEN is set for the following steps until %s\n",
			source, ex.Token.ID, c.Org, policyName(&ex.Token), expires)
		return nil
	}
	fmt.Fprintf(std.err, "exchanged the %s ID token for organization token %d of %s (trust policy %s), valid until %s\n",
		source, ex.Token.ID, c.Org, policyName(&ex.Token), expires)
	fmt.Fprintf(std.out, "export SOT_TOKEN=%s\nexport SOT_URL=%s\n", ex.Secret, shellQuote(baseURL))
	return nil
}

func policyName(t *client.Token) string {
	if t.OIDC == nil {
		return "?"
	}
	return fmt.Sprintf("%q", t.OIDC.PolicyName)
}

// tokenSource describes where a token came from: "api", or for a token an
// OIDC exchange minted, its trust policy and the CI job.
func tokenSource(t *client.Token) string {
	if t.OIDC == nil {
		return t.Source
	}
	parts := []string{"oidc, trust policy " + policyName(t)}
	for _, p := range []string{t.OIDC.Repository, t.OIDC.Ref} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if t.OIDC.RunID != "" {
		parts = append(parts, "run "+t.OIDC.RunID)
	}
	return strings.Join(parts, ", ")
}
