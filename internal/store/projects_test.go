package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/sot-dev/sot"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func projectKeys(ps []*sot.Project) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Key)
	}
	return out
}

func TestProjects(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		p := &sot.Project{Org: "acme", Key: "web", Name: "Web Site"}
		must(t, db.CreateProject(ctx, p))
		if p.ID == 0 || p.CreatedAt.IsZero() {
			t.Fatalf("CreateProject: %+v", p)
		}
		err := db.CreateProject(ctx, &sot.Project{Org: "acme", Key: "web", Name: "again"})
		wantCode(t, err, sot.ECONFLICT)
		if sot.ErrorMessage(err) != `project "web" already exists` {
			t.Fatalf("message %q", sot.ErrorMessage(err))
		}
		wantCode(t, db.CreateProject(ctx, &sot.Project{Org: "nope", Key: "web"}), sot.ENOTFOUND)
		must(t, db.CreateProject(ctx, &sot.Project{Org: "other", Key: "web", Name: "Theirs"}))

		got, err := db.FindProject(ctx, "acme", "web")
		must(t, err)
		if *got != *p {
			t.Fatalf("FindProject = %+v, want %+v", got, p)
		}
		_, err = db.FindProject(ctx, "acme", "nope")
		wantCode(t, err, sot.ENOTFOUND)
		wantCode(t, db.DeleteProject(ctx, "nope", "web"), sot.ENOTFOUND)

		evs := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionProjectCreated})
		if len(evs) != 1 || evs[0].Target != "project:web" || evs[0].Details["name"] != "Web Site" {
			t.Fatalf("project.created events of acme: %+v", evs)
		}
	})
}

func TestListProjects(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		var keys []string
		for i := range 40 {
			keys = append(keys, fmt.Sprintf("svc-%02d", i))
		}
		mkProjects(t, db, "acme", keys...)
		mkProjects(t, db, "acme", "Frontend", "back_end", "100%")
		must(t, db.CreateProject(actorCtx(t), &sot.Project{Org: "acme", Key: "misc", Name: "The FRONT door"}))
		mkProjects(t, db, "other", "svc-99", "frontend")
		tok := mkToken(t, db, "acme", sot.Scope{Projects: []string{"svc-03", "svc-01", "misc"}})

		even := func(k string) bool { return strings.HasPrefix(k, "svc-") && (k[5]-'0')%2 == 0 }
		var evens []string
		for _, k := range keys {
			if even(k) {
				evens = append(evens, k)
			}
		}
		all := append(slices.Clone(keys), "Frontend", "back_end", "100%", "misc")
		slices.Sort(all)
		tests := []struct {
			name   string
			filter sot.ProjectFilter
			want   []string
		}{
			{"all", sot.ProjectFilter{}, all},
			{"query case-insensitive on key and name", sot.ProjectFilter{Query: "FRONT"}, []string{"Frontend", "misc"}},
			{"query underscore is literal", sot.ProjectFilter{Query: "k_e"}, []string{"back_end"}},
			{"query percent is literal", sot.ProjectFilter{Query: "0%"}, []string{"100%"}},
			{"query no match", sot.ProjectFilter{Query: "zzz"}, nil},
			{"token", sot.ProjectFilter{TokenID: tok.ID}, []string{"misc", "svc-01", "svc-03"}},
			{"token and query", sot.ProjectFilter{TokenID: tok.ID, Query: "svc"}, []string{"svc-01", "svc-03"}},
			{"match", sot.ProjectFilter{Match: even}, evens},
			{"match none", sot.ProjectFilter{Match: func(string) bool { return false }}, nil},
			{"match and query", sot.ProjectFilter{Match: even, Query: "svc-1"}, []string{"svc-10", "svc-12", "svc-14", "svc-16", "svc-18"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for _, size := range []int{1, 3, 7, 1000} {
					got := collect(t, size, func(p sot.Page) ([]*sot.Project, string, error) {
						return db.ListProjects(ctx, "acme", tt.filter, p)
					})
					if !slices.Equal(projectKeys(got), tt.want) {
						t.Fatalf("page size %d: %v, want %v", size, projectKeys(got), tt.want)
					}
					for _, p := range got {
						if p.Org != "acme" {
							t.Fatalf("project of org %q", p.Org)
						}
					}
				}
				n, err := db.CountProjects(ctx, "acme", tt.filter)
				must(t, err)
				if n != len(tt.want) {
					t.Fatalf("CountProjects = %d, want %d", n, len(tt.want))
				}
			})
		}
		_, _, err := db.ListProjects(ctx, "nope", sot.ProjectFilter{}, sot.Page{})
		wantCode(t, err, sot.ENOTFOUND)
		_, err = db.CountProjects(ctx, "nope", sot.ProjectFilter{})
		wantCode(t, err, sot.ENOTFOUND)
	})
}

func TestAnalyses(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		mkProjects(t, db, "acme", "web")
		mkProjects(t, db, "other", "web")

		report := bytes.Repeat([]byte("x"), 1000)
		a := &sot.Analysis{Org: "acme", Project: "web", Branch: "main", Commit: "abc123"}
		must(t, db.CreateAnalysis(ctx, a, bytes.NewReader(report), 1000))
		sum := sha256.Sum256(report)
		if a.ID == 0 || a.Size != 1000 || a.SHA256 != hex.EncodeToString(sum[:]) || a.SubmittedBy.Name != "alice" {
			t.Fatalf("CreateAnalysis: %+v", a)
		}

		big := &sot.Analysis{Org: "acme", Project: "web", Branch: "main"}
		wantCode(t, db.CreateAnalysis(ctx, big, bytes.NewReader(report), 999), sot.ETOOLARGE)
		wantCode(t, db.CreateAnalysis(ctx, &sot.Analysis{Org: "acme", Project: "nope"}, stringsReader("r"), 10), sot.ENOTFOUND)
		wantCode(t, db.CreateAnalysis(ctx, &sot.Analysis{Org: "nope", Project: "web"}, stringsReader("r"), 10), sot.ENOTFOUND)

		got, err := db.FindAnalysis(ctx, "acme", "web", a.ID)
		must(t, err)
		if *got != *a {
			t.Fatalf("FindAnalysis = %+v, want %+v", got, a)
		}
		_, err = db.FindAnalysis(ctx, "other", "web", a.ID)
		wantCode(t, err, sot.ENOTFOUND)

		rc, err := db.OpenReport(ctx, "acme", "web", a.ID)
		must(t, err)
		body, err := io.ReadAll(rc)
		must(t, err)
		must(t, rc.Close())
		if !bytes.Equal(body, report) {
			t.Fatalf("report of %d bytes, want %d", len(body), len(report))
		}
		_, err = db.OpenReport(ctx, "other", "web", a.ID)
		wantCode(t, err, sot.ENOTFOUND)

		var ids []int64
		for i := range 6 {
			b := &sot.Analysis{Org: "acme", Project: "web", Branch: fmt.Sprint("b", i)}
			must(t, db.CreateAnalysis(ctx, b, stringsReader("r"), 10))
			ids = append(ids, b.ID)
		}
		slices.Reverse(ids)
		ids = append(ids, a.ID)
		list := collect(t, 4, func(p sot.Page) ([]*sot.Analysis, string, error) { return db.ListAnalyses(ctx, "acme", "web", p) })
		var got2 []int64
		for _, x := range list {
			got2 = append(got2, x.ID)
		}
		if !slices.Equal(got2, ids) {
			t.Fatalf("ListAnalyses = %v, want %v (newest first)", got2, ids)
		}
		other, _, err := db.ListAnalyses(ctx, "other", "web", sot.Page{})
		must(t, err)
		if len(other) != 0 {
			t.Fatalf("other org sees %d analyses", len(other))
		}
		_, _, err = db.ListAnalyses(ctx, "acme", "nope", sot.Page{})
		wantCode(t, err, sot.ENOTFOUND)
		if evs := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionAnalysisSubmitted}); len(evs) != 7 {
			t.Fatalf("%d analysis.submitted events, want 7", len(evs))
		}
	})
}

func TestAuditEvents(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		ev := &sot.AuditEvent{Org: "acme", Actor: sot.Actor{Type: sot.ActorAnonymous, IP: "198.51.100.7"},
			Action: sot.ActionAuthFailed, Target: "token", Details: map[string]any{"reason": "unknown token"}}
		must(t, db.RecordEvent(ctx, ev))
		if ev.ID == 0 || ev.At.IsZero() {
			t.Fatalf("RecordEvent: %+v", ev)
		}
		// A zero actor is the one of the context.
		must(t, db.RecordEvent(actorCtx(t), &sot.AuditEvent{Org: "acme", Action: "x.y", Target: "t:1"}))
		for i := range 9 {
			must(t, db.RecordEvent(ctx, &sot.AuditEvent{Org: "acme", Action: "bulk", Target: fmt.Sprint("t:", i%3)}))
		}
		must(t, db.RecordEvent(ctx, &sot.AuditEvent{Org: "", Action: "bulk", Target: "t:0"}))

		all := events(t, db, "acme", sot.AuditFilter{})
		if len(all) != 11 {
			t.Fatalf("%d events, want 11", len(all))
		}
		first := all[0]
		if first.ID != ev.ID || !first.At.Equal(ev.At) || first.Actor != ev.Actor || first.Details["reason"] != "unknown token" {
			t.Fatalf("first event %+v, want %+v", first, ev)
		}
		if all[1].Actor.Name != "alice" || all[1].Actor.Type != sot.ActorUser {
			t.Fatalf("actor from context: %+v", all[1].Actor)
		}
		tests := []struct {
			name   string
			org    string
			filter sot.AuditFilter
			want   int
		}{
			{"action", "acme", sot.AuditFilter{Action: "bulk"}, 9},
			{"target", "acme", sot.AuditFilter{Target: "t:1"}, 4},
			{"both", "acme", sot.AuditFilter{Action: "bulk", Target: "t:1"}, 3},
			{"instance", "", sot.AuditFilter{Action: "bulk"}, 1},
			{"unknown org", "nope", sot.AuditFilter{}, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := collect(t, 2, func(p sot.Page) ([]*sot.AuditEvent, string, error) { return db.ListEvents(ctx, tt.org, tt.filter, p) })
				if len(got) != tt.want {
					t.Fatalf("%d events, want %d", len(got), tt.want)
				}
				for i := 1; i < len(got); i++ {
					if got[i].ID >= got[i-1].ID {
						t.Fatal("events not newest first")
					}
				}
			})
		}
	})
}

// TestListProjectsByTokenPlans lists the projects of tokens on both sides
// of smallScope, which changes how the query is driven.
func TestListProjectsByTokenPlans(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		benchDB(t, db)
		keys := seedProjects(t, db, "acme", smallScope+200)
		for _, n := range []int{smallScope, smallScope + 1} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				want := keys[100 : 100+n]
				tok := newScopedToken(want)
				must(t, db.CreateToken(ctx, tok, sot.HashSecret(sot.NewSecret(sot.TokenKindOrg))))
				filter := sot.ProjectFilter{TokenID: tok.ID, Query: "P0"}
				got := collect(t, 300, func(p sot.Page) ([]*sot.Project, string, error) { return db.ListProjects(ctx, "acme", filter, p) })
				if !slices.Equal(projectKeys(got), want) {
					t.Fatalf("listed %d keys, want %d (first %v)", len(got), len(want), projectKeys(got[:min(3, len(got))]))
				}
				count, err := db.CountProjects(ctx, "acme", filter)
				must(t, err)
				if count != n {
					t.Fatalf("CountProjects = %d, want %d", count, n)
				}
			})
		}
	})
}
