package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

// Limits of the leak endpoints.
const (
	// DefaultRevokeLimit is how many public revoke calls a client address
	// may make per minute.
	DefaultRevokeLimit = 10
	// maxScanReports bounds the reports of one secret-scanning call.
	maxScanReports = 1000
)

// ParseGitHubKeys parses the public keys GitHub signs secret-scanning
// alerts with, keyed by key identifier: either GitHub's key list
// ({"public_keys": [{"key_identifier", "key", "is_current"}]}, as served
// by https://api.github.com/meta/public_keys/secret_scanning), or PEM
// "PUBLIC KEY" blocks, each with a "Key-Identifier" header (without one,
// the identifier is the hex SHA-256 of the key's DER encoding). Only ECDSA
// P-256 keys are accepted.
func ParseGitHubKeys(data []byte) (map[string]*ecdsa.PublicKey, error) {
	keys := map[string]*ecdsa.PublicKey{}
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "{") {
		var list struct {
			PublicKeys []struct {
				KeyIdentifier string `json:"key_identifier"`
				Key           string `json:"key"`
			} `json:"public_keys"`
		}
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("parse key list: %w", err)
		}
		for i, k := range list.PublicKeys {
			block, _ := pem.Decode([]byte(k.Key))
			if block == nil || k.KeyIdentifier == "" {
				return nil, fmt.Errorf("key %d: want key_identifier and a PEM key", i)
			}
			pub, err := parseP256(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", k.KeyIdentifier, err)
			}
			keys[k.KeyIdentifier] = pub
		}
	} else {
		rest := data
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			pub, err := parseP256(block.Bytes)
			if err != nil {
				return nil, err
			}
			id := block.Headers["Key-Identifier"]
			if id == "" {
				sum := sha256.Sum256(block.Bytes)
				id = hex.EncodeToString(sum[:])
			}
			keys[id] = pub
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no public keys found")
	}
	return keys, nil
}

func parseP256(der []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params().Name != "P-256" {
		return nil, errors.New("not an ECDSA P-256 public key")
	}
	return pub, nil
}

type githubScanInput struct {
	KeyID     string `header:"Github-Public-Key-Identifier" doc:"Identifier of the key that signed the body."`
	Signature string `header:"Github-Public-Key-Signature" doc:"Base64 ASN.1 ECDSA P-256 SHA-256 signature of the raw body."`
	RawBody   []byte `contentType:"application/json"`
}

type githubReport struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

type githubLabel struct {
	TokenRaw  string `json:"token_raw"`
	TokenType string `json:"token_type"`
	Label     string `json:"label" enum:"true_positive,false_positive"`
}

type revokeInput struct {
	Body struct {
		Secrets []string `json:"secrets" minItems:"1" maxItems:"100" doc:"Leaked secrets (sot_… or sotu_…), at most 100."`
	}
}

type revokeOutput struct {
	Revoked int `json:"revoked" doc:"How many live tokens were revoked."`
}

var errBadScanSignature = &sot.Error{Code: sot.EUNAUTHENTICATED, Message: "invalid secret-scanning signature"}

// verifyGitHub checks the signature of a GitHub secret-scanning alert.
func (a *API) verifyGitHub(in *githubScanInput) error {
	pub, ok := a.cfg.GitHubKeys[in.KeyID]
	if !ok || in.KeyID == "" {
		return errBadScanSignature
	}
	sig, err := base64.StdEncoding.DecodeString(in.Signature)
	if err != nil {
		return errBadScanSignature
	}
	sum := sha256.Sum256(in.RawBody)
	if !ecdsa.VerifyASN1(pub, sum[:], sig) {
		return errBadScanSignature
	}
	return nil
}

func (a *API) registerLeaks() {
	gh := optionalAuth(operation(http.MethodPost, "/api/v1/secret-scanning/github", "github-secret-scanning", "Leaks",
		"GitHub secret-scanning partner alerts: revoke the reported tokens", http.StatusOK))
	gh.Security = []map[string][]string{}
	// The signature covers the raw bytes: they are read as they came and
	// parsed only once verified.
	gh.SkipValidateBody = true
	gh.Description = "GitHub's secret-scanning partner format, signed with ECDSA P-256 by a key the operator configured " +
		"(--github-secret-scanning-keys). Found tokens are revoked and audited as token.leaked."
	huma.Register(a.huma, gh, func(ctx context.Context, in *githubScanInput) (*bodyOutput[[]githubLabel], error) {
		if err := a.verifyGitHub(in); err != nil {
			return nil, err
		}
		var reports []githubReport
		if err := json.Unmarshal(in.RawBody, &reports); err != nil {
			return nil, sot.Invalid("invalid body: want a JSON array of {token, type, url, source}")
		}
		if len(reports) > maxScanReports {
			return nil, sot.Errorf(sot.ETOOLARGE, "at most %d reports per call", maxScanReports)
		}
		ctx = sot.WithActor(ctx, sot.Actor{Type: sot.ActorAnonymous, Name: "github-secret-scanning", IP: info(ctx).ip.String()})
		out := make([]githubLabel, len(reports))
		for i, r := range reports {
			out[i] = githubLabel{TokenRaw: r.Token, TokenType: r.Type, Label: "false_positive"}
			if _, err := sot.ParseSecret(r.Token); err != nil {
				continue
			}
			res, err := a.cfg.Lifecycle.RevokeLeaked(ctx, []sot.SecretHash{sot.HashSecret(r.Token)},
				sot.LeakReport{Source: "github:" + r.Source, URL: r.URL, Kind: r.Type}, a.now())
			if err != nil {
				return nil, err
			}
			if res[0].Found {
				out[i].Label = "true_positive"
			}
		}
		return &bodyOutput[[]githubLabel]{Body: out}, nil
	})

	rv := optionalAuth(operation(http.MethodPost, "/api/v1/tokens/revoke", "revoke-leaked-secrets", "Leaks",
		"Revoke leaked secrets; holding a secret is the proof, no other credential is needed", http.StatusOK))
	rv.Security = []map[string][]string{}
	rv.Errors = append(rv.Errors, http.StatusTooManyRequests)
	huma.Register(a.huma, rv, func(ctx context.Context, in *revokeInput) (*bodyOutput[revokeOutput], error) {
		ip := info(ctx).ip
		now := a.now()
		if d := a.revokeLimiter.wait(ip, now); d > 0 {
			ra := fmt.Sprint(int(d.Seconds()) + 1)
			p := problemFor(sot.Errorf(sot.ERATELIMITED, "too many revoke calls from this address; retry later"))
			p.retryAfter = ra
			return nil, huma.ErrorWithHeaders(p, http.Header{"Retry-After": {ra}})
		}
		a.revokeLimiter.fail(ip, now)
		var hashes []sot.SecretHash
		for _, s := range in.Body.Secrets {
			if _, err := sot.ParseSecret(s); err == nil {
				hashes = append(hashes, sot.HashSecret(s))
			}
		}
		ctx = sot.WithActor(ctx, sot.Actor{Type: sot.ActorAnonymous, IP: ip.String()})
		n := 0
		if len(hashes) > 0 {
			res, err := a.cfg.Lifecycle.RevokeLeaked(ctx, hashes, sot.LeakReport{Source: "public"}, now)
			if err != nil {
				return nil, err
			}
			for _, r := range res {
				if r.Revoked {
					n++
				}
			}
		}
		return &bodyOutput[revokeOutput]{Body: revokeOutput{Revoked: n}}, nil
	})
}
