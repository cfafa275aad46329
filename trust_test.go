package sot_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sot-dev/sot"
)

func TestMatchClaim(t *testing.T) {
	tests := []struct {
		name, pattern, value string
		want                 bool
	}{
		{"exact", "acme/web", "acme/web", true},
		{"exact differs", "acme/web", "acme/web2", false},
		{"exact is case-sensitive", "acme/web", "Acme/web", false},
		{"star within a segment", "acme/*", "acme/web", true},
		{"star does not cross a slash", "refs/heads/*", "refs/heads/feature/x", false},
		{"double star crosses slashes", "refs/heads/**", "refs/heads/feature/x", true},
		{"star matches empty", "acme/*", "acme/", true},
		{"star needs the prefix", "acme/*", "evil-acme/web", false},
		{"question is one character", "v?", "v1", true},
		{"question is not two", "v?", "v12", false},
		{"question is not a slash", "a?b", "a/b", false},
		{"escaped star is literal", `a\*`, "a*", true},
		{"escaped star is not a wildcard", `a\*`, "ab", false},
		{"regexp metacharacters are literal", "a.b+(c)", "a.b+(c)", true},
		{"dot is not any character", "a.b", "axb", false},
		{"brackets are literal", "[ab]", "a", false},
		{"whole value only", "main", "refs/heads/main", false},
		{"github subject", "repo:acme/*:ref:refs/heads/main", "repo:acme/web:ref:refs/heads/main", true},
		{"github subject other branch", "repo:acme/*:ref:refs/heads/main", "repo:acme/web:ref:refs/heads/dev", false},
		{"newline in value", "a*", "a\nb", true},
		{"invalid pattern matches nothing", `x\`, `x\`, false},
		{"question is one character, not one byte", "caf?", "café", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sot.MatchClaim(tt.pattern, tt.value); got != tt.want {
				t.Errorf("MatchClaim(%q, %q) = %v, want %v", tt.pattern, tt.value, got, tt.want)
			}
		})
	}
}

// refMatch is a direct, slow reading of the ClaimPattern rules, to hold
// the compiled form to.
func refMatch(ps, vs string) (bool, bool) {
	if !utf8.ValidString(ps) {
		return false, false
	}
	p, v := []rune(ps), []rune(vs)
	type tok struct {
		kind byte // 'l' literal, '*', 'S' (**), '?'
		c    rune
	}
	var toks []tok
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				for i+1 < len(p) && p[i+1] == '*' {
					i++
				}
				toks = append(toks, tok{kind: 'S'})
			} else {
				toks = append(toks, tok{kind: '*'})
			}
		case '?':
			toks = append(toks, tok{kind: '?'})
		case '\\':
			if i+1 == len(p) {
				return false, false
			}
			i++
			toks = append(toks, tok{kind: 'l', c: p[i]})
		default:
			toks = append(toks, tok{kind: 'l', c: p[i]})
		}
	}
	// ok[j] says whether toks[:i] matches v[:j].
	ok := make([]bool, len(v)+1)
	ok[0] = true
	for _, tk := range toks {
		next := make([]bool, len(v)+1)
		for j := 0; j <= len(v); j++ {
			switch tk.kind {
			case 'l':
				next[j] = j > 0 && ok[j-1] && v[j-1] == tk.c
			case '?':
				next[j] = j > 0 && ok[j-1] && v[j-1] != '/'
			case '*':
				next[j] = ok[j] || (j > 0 && next[j-1] && v[j-1] != '/')
			case 'S':
				next[j] = ok[j] || (j > 0 && next[j-1])
			}
		}
		ok = next
	}
	return ok[len(v)], true
}

func FuzzClaimPattern(f *testing.F) {
	f.Add("acme/*", "acme/web")
	f.Add("refs/heads/**", "refs/heads/a/b")
	f.Fuzz(func(t *testing.T, pattern, value string) {
		if len(pattern) > 200 || len(value) > 200 {
			return
		}
		c, err := sot.CompileClaimPattern(pattern)
		want, valid := refMatch(pattern, value)
		if (err == nil) != valid {
			t.Fatalf("CompileClaimPattern(%q) error %v, reference says valid=%v", pattern, err, valid)
		}
		if err != nil {
			return
		}
		if got := c.Match(value); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference %v", pattern, value, got, want)
		}
		if !strings.ContainsAny(pattern, `*?\`) && c.Match(value) != (pattern == value) {
			t.Fatalf("pattern %q without wildcards is not an exact comparison with %q", pattern, value)
		}
	})
}

func TestTrustPolicyCheck(t *testing.T) {
	tok := &sot.IDToken{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:acme/web:ref:refs/heads/main",
		Claims: map[string]any{
			"repository":          "acme/web",
			"repository_owner_id": json.Number("4242"),
			"ref":                 "refs/heads/main",
			"run_id":              "77",
			"environment":         "prod",
			"pull_request":        false,
			"groups":              []any{"a"},
		}}
	tests := []struct {
		name       string
		conditions map[string]string
		failed     []string
	}{
		{"all hold", map[string]string{"repository": "acme/*", "ref": "refs/heads/main", "repository_owner_id": "4242"}, nil},
		{"boolean claim", map[string]string{"pull_request": "false"}, nil},
		{"one fails", map[string]string{"repository": "acme/*", "ref": "refs/heads/release-*"}, []string{"ref"}},
		{"missing claim fails", map[string]string{"job_workflow_ref": "**"}, []string{"job_workflow_ref"}},
		{"array claim fails", map[string]string{"groups": "a"}, []string{"groups"}},
		{"several fail, by name", map[string]string{"repository_owner_id": "1", "environment": "staging"}, []string{"environment", "repository_owner_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &sot.TrustPolicy{Conditions: tt.conditions}
			var got []string
			for _, f := range p.Check(tok) {
				got = append(got, f.Claim)
				if f.Expected != tt.conditions[f.Claim] {
					t.Errorf("failed condition %s expects %q, want %q", f.Claim, f.Expected, tt.conditions[f.Claim])
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.failed, ",") {
				t.Errorf("failed conditions %v, want %v", got, tt.failed)
			}
		})
	}
}

func TestValidateTrustPolicy(t *testing.T) {
	team := &sot.Org{Key: "acme", Plan: sot.PlanTeam}
	const issuer = "https://token.actions.githubusercontent.com"
	trusted := func(iss string) bool { return iss == issuer || iss == "http://127.0.0.1:9999" }
	valid := func() sot.TrustPolicy {
		return sot.TrustPolicy{Name: "deploy", Issuer: issuer, Audience: "sot",
			Conditions: map[string]string{"repository_owner_id": "4242"}, Scope: sot.Scope{AllProjects: true},
			Permissions: sot.NewPermissionSet(sot.PermissionScan), TTL: sot.DefaultTrustTTL}
	}
	tests := []struct {
		name   string
		org    *sot.Org
		change func(p *sot.TrustPolicy)
		code   string
		field  string
	}{
		{"valid", team, func(*sot.TrustPolicy) {}, "", ""},
		{"loopback http issuer", team, func(p *sot.TrustPolicy) { p.Issuer = "http://127.0.0.1:9999" }, "", ""},
		{"free plan", &sot.Org{Key: "acme", Plan: sot.PlanFree}, func(*sot.TrustPolicy) {}, sot.EPLAN, ""},
		{"no name", team, func(p *sot.TrustPolicy) { p.Name = "" }, sot.EINVALID, "name"},
		{"http issuer", team, func(p *sot.TrustPolicy) { p.Issuer = "http://issuer.example.com" }, sot.EINVALID, "issuer"},
		{"issuer not allowed", team, func(p *sot.TrustPolicy) { p.Issuer = "https://gitlab.com" }, sot.EINVALID, "issuer"},
		{"no audience", team, func(p *sot.TrustPolicy) { p.Audience = "" }, sot.EINVALID, "audience"},
		{"no conditions", team, func(p *sot.TrustPolicy) { p.Conditions = nil }, sot.EINVALID, "conditions"},
		{"bad claim name", team, func(p *sot.TrustPolicy) { p.Conditions = map[string]string{"a b": "x"} }, sot.EINVALID, "conditions.a b"},
		{"empty value", team, func(p *sot.TrustPolicy) { p.Conditions = map[string]string{"ref": ""} }, sot.EINVALID, "conditions.ref"},
		{"bad pattern", team, func(p *sot.TrustPolicy) { p.Conditions = map[string]string{"ref": `main\`} }, sot.EINVALID, "conditions.ref"},
		{"bad scope", team, func(p *sot.TrustPolicy) { p.Scope = sot.Scope{Patterns: []string{"("}} }, sot.EINVALID, "scope.patterns[0]"},
		{"empty scope", team, func(p *sot.TrustPolicy) { p.Scope = sot.Scope{} }, sot.EINVALID, "scope"},
		{"no permissions", team, func(p *sot.TrustPolicy) { p.Permissions = 0 }, sot.EINVALID, "permissions"},
		{"self_rotate", team, func(p *sot.TrustPolicy) {
			p.Permissions = sot.NewPermissionSet(sot.PermissionScan, sot.PermissionSelfRotate)
		}, sot.EINVALID, "permissions"},
		{"ttl too long", team, func(p *sot.TrustPolicy) { p.TTL = 2 * time.Hour }, sot.EINVALID, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.change(&p)
			err := sot.ValidateTrustPolicy(tt.org, &p, trusted)
			if got := sot.ErrorCode(err); got != tt.code {
				t.Fatalf("code %q (%v), want %q", got, err, tt.code)
			}
			if tt.field == "" {
				return
			}
			fields := sot.ErrorFields(err)
			if len(fields) == 0 || fields[0].Field != tt.field {
				t.Errorf("fields %+v, want %s first", fields, tt.field)
			}
		})
	}
}

func TestParseTrustTTL(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 15 * time.Minute, true},
		{"15m", 15 * time.Minute, true},
		{"1h", time.Hour, true},
		{"1h1s", 0, false},
		{"30s", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := sot.ParseTrustTTL("ttl", tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseTrustTTL(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestPrepareOIDCToken(t *testing.T) {
	org := &sot.Org{Key: "acme", Plan: sot.PlanTeam}
	p := &sot.TrustPolicy{ID: 7, Name: "deploy", Scope: sot.Scope{Patterns: []string{"web-.*"}},
		Permissions: sot.NewPermissionSet(sot.PermissionScan, sot.PermissionSelfRotate), TTL: 10 * time.Minute}
	tok := &sot.IDToken{Issuer: "https://gitlab.com", Subject: "project_path:acme/web:ref_type:branch:ref:main",
		Claims: map[string]any{"project_path": "acme/web", "ref": "main", "pipeline_id": "99"}}
	now := time.Date(2027, 1, 2, 3, 4, 5, 600, time.UTC)
	id := sot.IdentityOf(tok, p)
	if id.Repository != "acme/web" || id.Ref != "main" || id.RunID != "99" || id.PolicyName != "deploy" {
		t.Fatalf("identity %+v", id)
	}
	got, secret, err := sot.PrepareOIDCToken(org, p, id, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, sot.OrgTokenPrefix) {
		t.Errorf("secret %q is not an organization token", secret[:4])
	}
	if got.Source != sot.TokenSourceOIDC || got.TrustPolicyID != 7 || got.OIDC == nil {
		t.Errorf("token source %q policy %d identity %v", got.Source, got.TrustPolicyID, got.OIDC)
	}
	if got.Permissions.Has(sot.PermissionSelfRotate) || !got.Permissions.Has(sot.PermissionScan) {
		t.Errorf("permissions %v, want scan without self_rotate", got.Permissions)
	}
	if want := now.Truncate(time.Second).Add(10 * time.Minute); got.ExpiresAt == nil || !got.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v", got.ExpiresAt, want)
	}
	if _, _, err := sot.PrepareOIDCToken(&sot.Org{Key: "acme", Plan: sot.PlanFree}, p, id, now); sot.ErrorCode(err) != sot.EPLAN {
		t.Errorf("free plan: %v, want EPLAN", err)
	}
}

func TestPrepareOIDCTokenNamesStayUTF8(t *testing.T) {
	org := &sot.Org{Key: "acme", Plan: sot.PlanTeam}
	p := &sot.TrustPolicy{ID: 1, Name: "a" + strings.Repeat("é", 100), Scope: sot.Scope{AllProjects: true},
		Permissions: sot.NewPermissionSet(sot.PermissionScan), TTL: time.Minute}
	tok := &sot.IDToken{Subject: "a" + strings.Repeat("ü", 400), Claims: map[string]any{"repository": "a" + strings.Repeat("ß", 400)}}
	id := sot.IdentityOf(tok, p)
	got, _, err := sot.PrepareOIDCToken(org, p, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"name": got.Name, "subject": id.Subject, "repository": id.Repository} {
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8: %q", name, s)
		}
	}
	if err := sot.ValidateTokenName("name", got.Name); err != nil {
		t.Errorf("minted token name: %v", err)
	}
}
