package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/sot-dev/sot/client"
)

// nginxConf is the forward-auth configuration of docs/recipes/nginx.md,
// with the test's ports and paths: every request to the protected service
// is first checked against sot with the caller's Authorization header. The
// first server checks a fixed project; the second takes the organization and
// project from the request path (sot serve --check-path-template).
var nginxConf = template.Must(template.New("nginx.conf").Parse(`daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log info;
events { worker_connections 64; }
http {
    access_log {{.Dir}}/access.log;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    server {
        listen {{.Listen}};

        location / {
            auth_request /_sot_check;
            # Pass sot's challenge on to the client with the 401.
            auth_request_set $sot_www_authenticate $upstream_http_www_authenticate;
            add_header WWW-Authenticate $sot_www_authenticate always;
            # The protected service has no use for the sot token: keep it there.
            proxy_set_header Authorization "";
            proxy_pass http://{{.Upstream}};
        }

        location = /_sot_check {
            internal;
            proxy_pass http://{{.Sot}}/api/v1/check?org=acme&project=web&permission=browse;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }
    }

    server {
        listen {{.ListenByPath}};

        location / {
            auth_request /_sot_check;
            auth_request_set $sot_www_authenticate $upstream_http_www_authenticate;
            add_header WWW-Authenticate $sot_www_authenticate always;
            proxy_pass http://{{.Upstream}};
        }

        location = /_sot_check {
            internal;
            proxy_pass http://{{.Sot}}/api/v1/check?permission=browse;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Uri $request_uri;
        }
    }
}
`))

// nginxPath returns the nginx binary, or skips the test when there is none
// (unless SOT_TEST_REQUIRE_NGINX=1, as in CI, where that is a failure).
func nginxPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("SOT_TEST_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx not found and SOT_TEST_REQUIRE_NGINX=1")
	}
	t.Skip("nginx not installed (set SOT_TEST_REQUIRE_NGINX=1 to fail instead)")
	return ""
}

// startNginx runs nginx with conf in the foreground as a child process,
// waits until it accepts connections on listen, and stops it when the
// test ends.
func startNginx(t *testing.T, bin, dir, listen string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", stderr.String(), log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s", err, stderr.String(), log)
		default:
		}
		if c, err := net.Dial("tcp", listen); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not listen within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNginxForwardAuth(t *testing.T) {
	nginx := nginxPath(t)
	srv := startServer(t, serverOpts{CheckPathTemplate: "/{org}/{project}/..."})
	ctx := context.Background()

	// The upstream answers "hello" and counts the requests that reach it with
	// a credential: the first server block strips it.
	var leaked atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		io.WriteString(w, "hello")
	}))
	t.Cleanup(upstream.Close)

	admin, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateOrg(ctx, client.CreateOrgRequest{Key: "acme", Plan: client.PlanTeam}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"web", "team-a-api"} {
		if _, err := admin.CreateProject(ctx, "acme", client.CreateProjectRequest{Key: p}); err != nil {
			t.Fatal(err)
		}
	}
	token := func(name string, scope client.Scope, perms ...string) *client.NewToken {
		t.Helper()
		nt, err := admin.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: name, Scope: scope, Permissions: perms, Expiry: client.Expiry{In: "30d"}})
		if err != nil {
			t.Fatal(err)
		}
		return nt
	}
	inScope := token("dashboards", client.Scope{Projects: []string{"web"}}, client.PermissionBrowse)
	outOfScope := token("team-a", client.Scope{Patterns: []string{"team-a-.*"}}, client.PermissionBrowse)
	scanOnly := token("ci", client.Scope{AllProjects: true}, client.PermissionScan)
	revoked := token("old", client.Scope{AllProjects: true}, client.PermissionBrowse)

	dir := t.TempDir()
	listen, listenByPath := freeLocalAddr(t), freeLocalAddr(t)
	var conf bytes.Buffer
	err = nginxConf.Execute(&conf, map[string]string{
		"Dir":          dir,
		"Listen":       listen,
		"ListenByPath": listenByPath,
		"Upstream":     strings.TrimPrefix(upstream.URL, "http://"),
		"Sot":          strings.TrimPrefix(srv.URL, "http://"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	startNginx(t, nginx, dir, listen)

	get := func(t *testing.T, authorization string) (int, string, http.Header) {
		return getThrough(t, "http://"+listen+"/reports/latest", authorization)
	}

	if err := admin.RevokeToken(ctx, "acme", revoked.Token.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		authorization string
		status        int
	}{
		{"in-scope token", "Bearer " + inScope.Secret, http.StatusOK},
		{"in-scope token as Basic user name", "Basic " + basic(inScope.Secret), http.StatusOK},
		{"no credential", "", http.StatusUnauthorized},
		{"unknown token", "Bearer sot_notarealtokennotarealtokennotare000000", http.StatusUnauthorized},
		{"out-of-scope token", "Bearer " + outOfScope.Secret, http.StatusForbidden},
		{"token without browse", "Bearer " + scanOnly.Secret, http.StatusForbidden},
		{"revoked token", "Bearer " + revoked.Secret, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, h := get(t, tt.authorization)
			if status != tt.status {
				t.Fatalf("status %d (%q), want %d", status, body, tt.status)
			}
			if (status == http.StatusOK) != (body == "hello") {
				t.Fatalf("body %q with status %d: the upstream must answer exactly the allowed requests", body, status)
			}
			if status == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without sot's challenge: WWW-Authenticate %q", h.Get("WWW-Authenticate"))
			}
		})
	}

	if n := leaked.Load(); n != 0 {
		t.Fatalf("the upstream received the caller's Authorization header %d times", n)
	}

	// Revoking the in-scope token closes the door at once.
	if err := admin.RevokeToken(ctx, "acme", inScope.Token.ID); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := get(t, "Bearer "+inScope.Secret); status != http.StatusUnauthorized {
		t.Fatalf("after revocation: status %d (%q), want 401", status, body)
	}

	// The organization and project from the request path.
	byPath := []struct {
		name, path string
		status     int
	}{
		{"project in scope", "/acme/team-a-api/reports/latest", http.StatusOK},
		{"project outside the scope", "/acme/web/reports/latest", http.StatusForbidden},
		{"another organization", "/other/team-a-api/", http.StatusForbidden},
		{"path without a project", "/acme", http.StatusBadRequest},
	}
	for _, tt := range byPath {
		t.Run("by path/"+tt.name, func(t *testing.T) {
			status, body, _ := getThrough(t, "http://"+listenByPath+tt.path, "Bearer "+outOfScope.Secret)
			// nginx answers 500 for any answer of the check other than
			// 2xx, 401 and 403: a path that names no project is refused.
			want := tt.status
			if want == http.StatusBadRequest {
				want = http.StatusInternalServerError
			}
			if status != want || (status == http.StatusOK) != (body == "hello") {
				t.Fatalf("GET %s: status %d (%q), want %d", tt.path, status, body, want)
			}
		})
	}
}

// getThrough sends GET url with an Authorization header (none if empty).
func getThrough(t *testing.T, url, authorization string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// freeLocalAddr returns a free TCP address on 127.0.0.1.
func freeLocalAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// basic returns HTTP Basic credentials with the secret as user name and an
// empty password, as Jenkins and SonarQube scanners send them.
func basic(secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(secret + ":"))
}
