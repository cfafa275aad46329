package sot

import (
	"fmt"
	"net/netip"
	"testing"
)

func orgTokenPrincipal(t testing.TB, org string, plan Plan, scope Scope, perms ...Permission) *Principal {
	m, err := scope.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return &Principal{
		Kind:    PrincipalOrgToken,
		Token:   &Token{ID: 1, Kind: TokenKindOrg, Org: org, Scope: scope, Permissions: NewPermissionSet(perms...)},
		OrgPlan: plan,
		Scope:   m,
	}
}

func TestAuthorize(t *testing.T) {
	scanAll := orgTokenPrincipal(t, "acme", PlanTeam, Scope{AllProjects: true}, PermissionScan)
	browseTeamA := orgTokenPrincipal(t, "acme", PlanTeam, Scope{Patterns: []string{"team-a-.*"}}, PermissionBrowse, PermissionProvision)
	suspended := orgTokenPrincipal(t, "acme", PlanFree, Scope{AllProjects: true}, PermissionScan)
	member := &Principal{Kind: PrincipalPersonalToken, User: &User{ID: 2, Login: "bob"}, Memberships: map[string]Role{"acme": RoleMember}}
	admin := &Principal{Kind: PrincipalUser, User: &User{ID: 3, Login: "alice"}, Memberships: map[string]Role{"acme": RoleAdmin}}
	root := &Principal{Kind: PrincipalPersonalToken, User: &User{ID: 1, Login: "admin", Admin: true}}
	var nobody *Principal

	tests := []struct {
		name    string
		p       *Principal
		perm    Permission
		org     string
		project string
		want    string // error code, "" for allowed
	}{
		{"token scans any project", scanAll, PermissionScan, "acme", "created-tomorrow", ""},
		{"token lacks browse", scanAll, PermissionBrowse, "acme", "web", EFORBIDDEN},
		{"token reads its org", scanAll, PermissionOrgRead, "acme", "", ""},
		{"token cannot administer", scanAll, PermissionOrgAdmin, "acme", "", EFORBIDDEN},
		{"token of another org", scanAll, PermissionScan, "globex", "web", ENOTFOUND},
		{"pattern in scope", browseTeamA, PermissionBrowse, "acme", "team-a-web", ""},
		{"pattern out of scope", browseTeamA, PermissionBrowse, "acme", "team-b-web", EFORBIDDEN},
		{"provision in scope", browseTeamA, PermissionProvision, "acme", "team-a-new", ""},
		{"provision out of scope", browseTeamA, PermissionProvision, "acme", "other", EFORBIDDEN},
		{"free plan suspends", suspended, PermissionScan, "acme", "web", EPLAN},
		{"member scans", member, PermissionScan, "acme", "web", ""},
		{"member browses", member, PermissionBrowse, "acme", "web", ""},
		{"member cannot provision", member, PermissionProvision, "acme", "web", EFORBIDDEN},
		{"member cannot administer", member, PermissionOrgAdmin, "acme", "", EFORBIDDEN},
		{"non-member", member, PermissionBrowse, "globex", "", ENOTFOUND},
		{"org admin administers", admin, PermissionOrgAdmin, "acme", "", ""},
		{"org admin provisions", admin, PermissionProvision, "acme", "x", ""},
		{"instance admin anywhere", root, PermissionOrgAdmin, "globex", "", ""},
		{"nil principal", nobody, PermissionOrgRead, "acme", "", EUNAUTHENTICATED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Authorize(tt.perm, tt.org, tt.project)
			if got := ErrorCode(err); got != tt.want {
				t.Fatalf("Authorize(%s, %q, %q) = %v, want code %q", tt.perm, tt.org, tt.project, err, tt.want)
			}
		})
	}
}

func TestAuthorizeNamesMissingPermission(t *testing.T) {
	p := orgTokenPrincipal(t, "acme", PlanTeam, Scope{AllProjects: true}, PermissionScan)
	if got := ErrorMessage(p.Authorize(PermissionBrowse, "acme", "web")); got != "the token lacks the browse permission" {
		t.Fatalf("message = %q", got)
	}
	p = orgTokenPrincipal(t, "acme", PlanTeam, Scope{Projects: []string{"web"}}, PermissionScan)
	if got := ErrorMessage(p.Authorize(PermissionScan, "acme", "api")); got != "the project is outside the token's scope" {
		t.Fatalf("message = %q", got)
	}
}

func TestCheckIP(t *testing.T) {
	cidrs, err := ParseCIDRs("allowed_cidrs", []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Principal{Kind: PrincipalOrgToken, Token: &Token{AllowedCIDRs: cidrs}}
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true}, {"::ffff:10.1.2.3", true}, {"2001:db8::1", true}, {"192.0.2.7", true},
		{"192.0.2.8", false}, {"11.0.0.1", false}, {"2001:db9::1", false},
	}
	for _, tt := range tests {
		if got := p.CheckIP(netip.MustParseAddr(tt.ip)) == nil; got != tt.want {
			t.Errorf("CheckIP(%s) allowed = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if _, err := ParseCIDRs("allowed_cidrs", []string{"10.0.0.0/33"}); ErrorFields(err)[0].Field != "allowed_cidrs[0]" {
		t.Fatalf("invalid CIDR error = %v", err)
	}
}

func FuzzParseCIDRs(f *testing.F) {
	f.Add("10.0.0.0/8")
	f.Add("::1")
	f.Add("300.0.0.1/8")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseCIDRs("c", []string{s})
		if err == nil && (len(got) != 1 || !got[0].IsValid()) {
			t.Fatalf("ParseCIDRs(%q) = %v", s, got)
		}
	})
}

func BenchmarkAuthorize(b *testing.B) {
	patterns := make([]string, 50)
	for i := range patterns {
		patterns[i] = fmt.Sprintf("team-%d-.*", i)
	}
	projects := make([]string, 100_000)
	for i := range projects {
		projects[i] = fmt.Sprintf("project-%06d", i)
	}
	cases := []struct {
		name    string
		p       *Principal
		project string
	}{
		{"all", orgTokenPrincipal(b, "acme", PlanTeam, Scope{AllProjects: true}, PermissionScan), "web"},
		{"explicit-1", orgTokenPrincipal(b, "acme", PlanTeam, Scope{Projects: projects[54321:54322]}, PermissionScan), "project-054321"},
		{"explicit-100000", orgTokenPrincipal(b, "acme", PlanTeam, Scope{Projects: projects}, PermissionScan), "project-054321"},
		{"patterns-1", orgTokenPrincipal(b, "acme", PlanTeam, Scope{Patterns: patterns[49:]}, PermissionScan), "team-49-web"},
		{"patterns-50", orgTokenPrincipal(b, "acme", PlanTeam, Scope{Patterns: patterns}, PermissionScan), "team-49-web"},
		{"mixed", orgTokenPrincipal(b, "acme", PlanTeam, Scope{Projects: projects[:10], Patterns: patterns}, PermissionScan), "team-49-web"},
		{"member", &Principal{Kind: PrincipalPersonalToken, User: &User{ID: 2}, Memberships: map[string]Role{"acme": RoleMember}}, "web"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.p.Authorize(PermissionScan, "acme", c.project); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
