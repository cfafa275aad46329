package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

type auditBody struct {
	ID    int64 `json:"id"`
	Actor struct {
		Type string `json:"type"`
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"actor"`
	Action  string         `json:"action"`
	Target  string         `json:"target"`
	IP      string         `json:"ip"`
	Details map[string]any `json:"details"`
}

// The audit log lists events newest first, filters by action and pages
// with a keyset cursor, and holds no secret.
func TestAPIAuditListing(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		var secrets []string
		for i := range 7 {
			tok := s.createOrgToken(t, "acme", map[string]any{"name": fmt.Sprintf("t%d", i), "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
			secrets = append(secrets, tok.Secret)
		}
		s.createProjects(t, "acme", "web")

		var seen []auditBody
		next := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			var l listBody[auditBody]
			r := s.admin(t).do("GET", "/api/v1/orgs/acme/audit?action=token.created&page_size=3&page_token="+url.QueryEscape(next), nil).want(t, http.StatusOK)
			r.decode(t, &l)
			for _, sec := range secrets {
				if strings.Contains(string(r.Body), sec) || strings.Contains(string(r.Body), sec[len(sec)-12:]) {
					t.Fatalf("the audit log holds a secret: %s", r.Body)
				}
			}
			if len(l.Items) > 3 {
				t.Fatalf("page of %d items, want at most 3", len(l.Items))
			}
			seen = append(seen, l.Items...)
			if next = l.NextPageToken; next == "" {
				break
			}
		}
		if len(seen) != 7 {
			t.Fatalf("%d token.created events, want 7", len(seen))
		}
		for i, ev := range seen {
			if ev.Action != "token.created" || ev.Actor.Type != "personal_token" || ev.Actor.Name != "admin" || ev.IP != "127.0.0.1" {
				t.Fatalf("event %d = %+v", i, ev)
			}
			if i > 0 && ev.ID >= seen[i-1].ID {
				t.Fatalf("events not newest first: %d after %d", ev.ID, seen[i-1].ID)
			}
		}
		var l listBody[auditBody]
		s.admin(t).do("GET", "/api/v1/orgs/acme/audit?action=project.created", nil).want(t, http.StatusOK).decode(t, &l)
		if len(l.Items) != 1 || l.Items[0].Action != "project.created" {
			t.Fatalf("project.created events = %+v", l.Items)
		}
	})
}
