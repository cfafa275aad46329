package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot/client"
)

func TestNewRejectsBadURLs(t *testing.T) {
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"http", "http://127.0.0.1:8080", true},
		{"https with path", "https://sot.example.com/prefix/", true},
		{"no scheme", "sot.example.com", false},
		{"ftp", "ftp://sot.example.com", false},
		{"no host", "http://", false},
		{"garbage", "http://[::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.New(tt.url, "")
			if (err == nil) != tt.ok {
				t.Fatalf("New(%q) error = %v, want ok=%v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	s := startServer(t)
	admin := fixture(t, s, "web")
	ctx := context.Background()

	tests := []struct {
		name   string
		call   func() error
		status int
		code   string
		is     func(error) bool
		field  string // a field error that must be listed
	}{
		{
			name: "unknown credential",
			call: func() error {
				_, err := newClient(t, s, "sot_notarealtokennotarealtokennotare000000").Me(ctx)
				return err
			},
			status: 401, code: client.ProblemUnauthenticated, is: client.IsUnauthenticated,
		},
		{
			name:   "no credential",
			call:   func() error { _, err := newClient(t, s, "").Me(ctx); return err },
			status: 401, code: client.ProblemUnauthenticated, is: client.IsUnauthenticated,
		},
		{
			name:   "unknown organization",
			call:   func() error { _, err := admin.Org(ctx, "nope"); return err },
			status: 404, code: client.ProblemNotFound, is: client.IsNotFound,
		},
		{
			name: "duplicate organization",
			call: func() error {
				_, err := admin.CreateOrg(ctx, client.CreateOrgRequest{Key: "acme", Name: "Again", Plan: client.PlanTeam})
				return err
			},
			status: 409, code: client.ProblemConflict, is: client.IsConflict,
		},
		{
			name: "invalid pattern",
			call: func() error {
				_, err := admin.CreateToken(ctx, "acme", client.CreateTokenRequest{
					Name: "bad", Scope: client.Scope{Patterns: []string{"web-(.*"}},
					Permissions: []string{client.PermissionScan}, Expiry: client.Expiry{In: "30d"},
				})
				return err
			},
			status: 400, code: client.ProblemValidation, is: client.IsInvalid, field: "scope.patterns[0]",
		},
		{
			name: "beyond the policy",
			call: func() error {
				_, err := admin.CreateToken(ctx, "acme", client.CreateTokenRequest{
					Name: "long", Scope: client.Scope{AllProjects: true},
					Permissions: []string{client.PermissionScan}, Expiry: client.Expiry{In: "2y"},
				})
				return err
			},
			status: 400, code: client.ProblemPolicyViolation, is: client.IsInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error = %v (%T), want *client.Error", err, err)
			}
			if e.Status != tt.status || e.Code() != tt.code || !tt.is(err) {
				t.Fatalf("error = %+v, want status %d code %q", e, tt.status, tt.code)
			}
			if client.StatusCode(err) != tt.status {
				t.Fatalf("StatusCode = %d, want %d", client.StatusCode(err), tt.status)
			}
			if e.Detail == "" || !strings.Contains(e.Error(), e.Detail) {
				t.Fatalf("Error() = %q, want the detail %q", e.Error(), e.Detail)
			}
			if tt.field != "" && !slices.ContainsFunc(e.Errors, func(f client.FieldError) bool { return f.Field == tt.field }) {
				t.Fatalf("field errors %+v, want one for %s", e.Errors, tt.field)
			}
		})
	}
}

func TestOrgTokenLifecycle(t *testing.T) {
	s := startServer(t)
	admin := fixture(t, s, "web", "api", "team-a-ui")
	ctx := context.Background()

	nt, tok := orgToken(t, s, admin, client.Scope{Patterns: []string{"team-a-.*"}, Projects: []string{"web"}},
		client.PermissionScan, client.PermissionBrowse)
	if !strings.HasPrefix(nt.Secret, "sot_") || nt.Token.Kind != client.KindOrg || nt.Token.Org != "acme" {
		t.Fatalf("created token = %+v", nt)
	}
	if nt.Token.State != client.StateActive || nt.Token.ExpiresAt == nil {
		t.Fatalf("created token state %q expires %v, want active with an expiry", nt.Token.State, nt.Token.ExpiresAt)
	}

	me, err := tok.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.Type != "org_token" || me.Token == nil || me.Token.ID != nt.Token.ID || me.Org == nil || me.Org.Key != "acme" {
		t.Fatalf("Me = %+v", me)
	}

	// The scope covers a project created after the token, through its pattern.
	if _, err := admin.CreateProject(ctx, "acme", client.CreateProjectRequest{Key: "team-a-api"}); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		project, permission string
		want                bool
	}{
		{"web", client.PermissionScan, true},
		{"team-a-ui", client.PermissionBrowse, true},
		{"team-a-api", client.PermissionScan, true},
		{"api", client.PermissionScan, false},
		{"web", client.PermissionProvision, false},
	}
	for _, c := range checks {
		got, err := tok.Check(ctx, "acme", c.project, c.permission)
		if err != nil || got != c.want {
			t.Errorf("Check(%s, %s) = %v, %v; want %v", c.project, c.permission, got, err, c.want)
		}
	}

	// Authorize gives the reason for a refusal.
	if err := tok.Authorize(ctx, "acme", "api", client.PermissionScan); !client.IsForbidden(err) || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("Authorize outside the scope = %v, want a 403 naming the scope", err)
	}
	if err := tok.Authorize(ctx, "acme", "web", client.PermissionProvision); !client.IsForbidden(err) || !strings.Contains(err.Error(), "provision") {
		t.Fatalf("Authorize without the permission = %v, want a 403 naming provision", err)
	}
	if err := tok.Authorize(ctx, "acme", "web", ""); err != nil {
		t.Fatalf("Authorize(scan by default) = %v", err)
	}

	var keys []string
	for p, err := range tok.Projects(ctx, "acme", "") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, p.Key)
	}
	slices.Sort(keys)
	if want := []string{"team-a-api", "team-a-ui", "web"}; !slices.Equal(keys, want) {
		t.Fatalf("token sees projects %v, want %v", keys, want)
	}

	report := bytes.Repeat([]byte("analysis report line\n"), 50_000)
	sum := sha256.Sum256(report)
	a, err := tok.Upload(ctx, "acme", "web", io.MultiReader(bytes.NewReader(report)), client.UploadOptions{Branch: "main", Commit: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != int64(len(report)) || a.SHA256 != hex.EncodeToString(sum[:]) || a.Branch != "main" || a.Commit != "abc123" || a.Project != "web" {
		t.Fatalf("analysis = %+v", a)
	}
	rc, err := tok.AnalysisReport(ctx, "acme", "web", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, report) {
		t.Fatalf("downloaded report: %d bytes, err %v; want the %d bytes uploaded", len(got), err, len(report))
	}
	if _, err := tok.Upload(ctx, "acme", "api", strings.NewReader("x"), client.UploadOptions{}); !client.IsForbidden(err) {
		t.Fatalf("upload outside the scope: %v, want 403", err)
	}

	listed, err := client.Collect(admin.Tokens(ctx, "acme", ""))
	if err != nil || len(listed) != 1 || listed[0].ID != nt.Token.ID {
		t.Fatalf("Tokens = %+v, %v", listed, err)
	}

	if err := admin.RevokeToken(ctx, "acme", nt.Token.ID); err != nil {
		t.Fatal(err)
	}
	allowed, err := tok.Check(ctx, "acme", "web", client.PermissionScan)
	if allowed || !client.IsUnauthenticated(err) {
		t.Fatalf("Check with a revoked token = %v, %v; want a 401", allowed, err)
	}
	revoked, err := client.Collect(admin.Tokens(ctx, "acme", client.StateRevoked))
	if err != nil || len(revoked) != 1 || revoked[0].RevokedAt == nil || revoked[0].State != client.StateRevoked {
		t.Fatalf("revoked tokens = %+v, %v", revoked, err)
	}
}

func TestPagination(t *testing.T) {
	s := startServer(t)
	want := []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7"}
	fixture(t, s, want...)
	ctx := context.Background()
	small := newClient(t, s, s.AdminToken, client.WithPageSize(2))

	got, err := client.Collect(small.Projects(ctx, "acme", ""))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range got {
		keys = append(keys, p.Key)
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("projects over pages of 2 = %v, want %v", keys, want)
	}

	// Breaking out of the loop stops it.
	n := 0
	for _, err := range small.Projects(ctx, "acme", "") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("loop ran %d times, want 3", n)
	}

	// An error is yielded once, then the iterator stops.
	errs := 0
	for _, err := range small.Projects(ctx, "nope", "") {
		if !client.IsNotFound(err) {
			t.Fatalf("listing an unknown org: %v, want 404", err)
		}
		errs++
	}
	if errs != 1 {
		t.Fatalf("got %d errors, want 1", errs)
	}

	q, err := client.Collect(small.Projects(ctx, "acme", "p3"))
	if err != nil || len(q) != 1 || q[0].Key != "p3" {
		t.Fatalf("query p3 = %+v, %v", q, err)
	}
}

func TestAdministration(t *testing.T) {
	s := startServer(t)
	admin := fixture(t, s, "web")
	ctx := context.Background()

	u, err := admin.CreateUser(ctx, client.CreateUserRequest{Login: "alice", Name: "Alice", Password: "long enough password"})
	if err != nil || u.Login != "alice" || u.Admin {
		t.Fatalf("CreateUser = %+v, %v", u, err)
	}
	m, err := admin.SetMember(ctx, "acme", "alice", client.RoleMember)
	if err != nil || m.Role != client.RoleMember {
		t.Fatalf("SetMember = %+v, %v", m, err)
	}
	members, err := client.Collect(admin.Members(ctx, "acme"))
	if err != nil || !slices.ContainsFunc(members, func(m client.Membership) bool { return m.Login == "alice" && m.Role == client.RoleMember }) {
		t.Fatalf("Members = %+v, %v", members, err)
	}

	pt, err := admin.CreateUserToken(ctx, "alice", client.CreatePersonalTokenRequest{Name: "laptop", Expiry: client.Expiry{In: "7d"}})
	if err != nil || !strings.HasPrefix(pt.Secret, "sotu_") || pt.Token.Kind != client.KindPersonal {
		t.Fatalf("CreateUserToken = %+v, %v", pt, err)
	}
	alice := newClient(t, s, pt.Secret)
	me, err := alice.Me(ctx)
	if err != nil || me.Type != "user" || me.User.Login != "alice" || len(me.Memberships) != 1 || me.Memberships[0].Org != "acme" {
		t.Fatalf("alice Me = %+v, %v", me, err)
	}
	// A member is no admin.
	if _, err := alice.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "x", Scope: client.Scope{AllProjects: true},
		Permissions: []string{client.PermissionScan}, Expiry: client.Expiry{In: "7d"}}); !client.IsForbidden(err) {
		t.Fatalf("member creating a token: %v, want 403", err)
	}
	own, err := alice.CreatePersonalToken(ctx, client.CreatePersonalTokenRequest{Name: "second", Expiry: client.Expiry{At: time.Now().Add(48 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := client.Collect(alice.PersonalTokens(ctx))
	if err != nil || len(mine) != 2 {
		t.Fatalf("PersonalTokens = %+v, %v", mine, err)
	}
	if err := alice.DeletePersonalToken(ctx, own.Token.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, s, own.Secret).Me(ctx); !client.IsUnauthenticated(err) {
		t.Fatalf("deleted personal token: %v, want 401", err)
	}

	// Removing alice takes acme away from her personal token at once.
	if err := admin.RemoveMember(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Org(ctx, "acme"); !client.IsNotFound(err) {
		t.Fatalf("removed member reading the org: %v, want 404", err)
	}

	name := "Acme Inc."
	policy := client.TokenPolicy{MaxLifetimeDays: 90, AllowNonExpiring: true}
	o, err := admin.UpdateOrg(ctx, "acme", client.OrgUpdate{Name: &name, TokenPolicy: &policy})
	if err != nil || o.Name != name || o.TokenPolicy.MaxLifetimeDays != 90 || !o.TokenPolicy.AllowNonExpiring {
		t.Fatalf("UpdateOrg = %+v, %v", o, err)
	}
	nt, err := admin.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "forever", Scope: client.Scope{AllProjects: true},
		Permissions: []string{client.PermissionBrowse}, Expiry: client.Expiry{Never: true}})
	if err != nil || nt.Token.ExpiresAt != nil {
		t.Fatalf("non-expiring token = %+v, %v", nt, err)
	}

	preview, err := admin.PreviewScope(ctx, "acme", client.Scope{Patterns: []string{"w.*"}})
	if err != nil || preview.Count != 1 || len(preview.Items) != 1 || preview.Items[0].Key != "web" {
		t.Fatalf("PreviewScope = %+v, %v", preview, err)
	}
	covered, err := client.Collect(admin.TokenProjects(ctx, "acme", nt.Token.ID))
	if err != nil || len(covered) != 1 {
		t.Fatalf("TokenProjects = %+v, %v", covered, err)
	}

	events, err := client.Collect(admin.Audit(ctx, "acme", "token.created"))
	if err != nil || len(events) != 1 || events[0].Action != "token.created" {
		t.Fatalf("Audit(token.created) = %+v, %v", events, err)
	}

	if err := admin.DeleteProject(ctx, "acme", "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Project(ctx, "acme", "web"); !client.IsNotFound(err) {
		t.Fatalf("deleted project: %v, want 404", err)
	}
}

func TestSonarCompatibility(t *testing.T) {
	s := startServer(t)
	admin := fixture(t, s, "web")
	if _, err := admin.CreateOrg(context.Background(), client.CreateOrgRequest{Key: "other", Plan: client.PlanTeam}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, tok := orgToken(t, s, admin, client.Scope{AllProjects: true}, client.PermissionScan)

	for name, c := range map[string]*client.Client{"org token": tok, "admin": admin} {
		valid, err := c.ValidateAuthentication(ctx)
		if err != nil || !valid {
			t.Fatalf("%s: ValidateAuthentication = %v, %v", name, valid, err)
		}
	}
	valid, err := newClient(t, s, "sot_notarealtokennotarealtokennotare000000").ValidateAuthentication(ctx)
	if err != nil || valid {
		t.Fatalf("bad token: ValidateAuthentication = %v, %v; want false, nil", valid, err)
	}

	res, err := tok.SearchOrganizations(ctx, client.SonarOrgSearch{Member: true})
	if err != nil || res.Paging.Total != 1 || len(res.Organizations) != 1 || res.Organizations[0].Key != "acme" {
		t.Fatalf("org token SearchOrganizations(member) = %+v, %v", res, err)
	}
	res, err = admin.SearchOrganizations(ctx, client.SonarOrgSearch{Member: true, PageSize: 1})
	if err != nil || res.Paging.Total != 2 || len(res.Organizations) != 1 || res.Paging.PageSize != 1 {
		t.Fatalf("admin SearchOrganizations(member, ps=1) = %+v, %v", res, err)
	}

	v, err := tok.ServerVersion(ctx)
	if err != nil || v == "" {
		t.Fatalf("ServerVersion = %q, %v", v, err)
	}
	if err := newClient(t, s, "").Ready(ctx); err != nil {
		t.Fatalf("Ready = %v", err)
	}
}

// The client is for programs that talk to sot, not for the server: it must
// not pull in the server's packages or any module beyond the standard
// library.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if deps := strings.Fields(string(out)); !slices.Equal(deps, []string{"github.com/sot-dev/sot/client"}) {
		t.Fatalf("non-standard dependencies: %v", deps)
	}
}
