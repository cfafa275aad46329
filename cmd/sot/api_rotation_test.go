package main

// Token lifecycle stories (issue 6): rotation with a grace period,
// self-rotation, scheduled rotation delivered by a signed webhook, the
// webhook outbox and its retries, expiry and idle warnings. The server's
// clock is a test clock and its lifecycle work runs when the test calls
// sweep, so nothing here sleeps for a schedule.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot/internal/lifecycle"
	"github.com/sot-dev/sot/internal/pgtest"
)

// rotatedBody is the token object with the rotation fields.
type rotatedBody struct {
	ID                      int64      `json:"id"`
	CreatedAt               time.Time  `json:"created_at"`
	ExpiresAt               *time.Time `json:"expires_at"`
	RotatedAt               *time.Time `json:"rotated_at"`
	NextRotationAt          *time.Time `json:"next_rotation_at"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	Rotation                *struct {
		Every       string `json:"every"`
		GracePeriod string `json:"grace_period"`
	} `json:"rotation"`
	Hint string `json:"hint"`
}

type rotateResult struct {
	Token  rotatedBody `json:"token"`
	Secret string      `json:"secret"`
}

// sweep runs the server's scheduled lifecycle work once, now.
func (s *testServer) sweep(t testing.TB) {
	t.Helper()
	if err := s.srv.lifecycle.Sweep(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
}

// wantDetail checks a 401's problem detail.
func wantDetail(t *testing.T, r *apiResponse, status int, detail string) {
	t.Helper()
	if p := r.want(t, status).problem(t); p.Detail != detail {
		t.Fatalf("%s: detail %q, want %q", r.req, p.Detail, detail)
	}
}

// During the grace period both secrets work; after it the old one is
// refused as "token rotated", told apart from an unknown secret. The new
// expiry is now plus the token's original lifetime, and the token shows
// when the previous secret stops.
func TestAPIRotationGracePeriod(t *testing.T) {
	clock := &testClock{}
	forEachDB(t, serverOpts{Clock: clock}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		a := s.admin(t)
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "expires_in": "30d"})
		check := "/api/v1/check?org=acme&project=web"
		clock.Advance(10 * 24 * time.Hour)

		var rot rotateResult
		a.do("POST", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d/rotate", tok.Token.ID), map[string]any{"grace_period": "24h"}).
			want(t, http.StatusOK).decode(t, &rot)
		if rot.Secret == tok.Secret || !strings.HasPrefix(rot.Secret, "sot_") {
			t.Fatalf("rotation secret %q", rot.Secret[:4])
		}
		if got := rot.Token.ExpiresAt.Sub(clock.Now()); got < 30*24*time.Hour-time.Minute || got > 30*24*time.Hour {
			t.Fatalf("new expiry in %v, want the original 30 days from now", got)
		}
		if p := rot.Token.PreviousSecretExpiresAt; p == nil || p.Sub(clock.Now()) < 23*time.Hour {
			t.Fatalf("previous_secret_expires_at = %v, want in 24h", p)
		}
		s.as(t, tok.Secret).do("GET", check, nil).want(t, http.StatusNoContent)
		s.as(t, rot.Secret).do("GET", check, nil).want(t, http.StatusNoContent)

		clock.Advance(24*time.Hour + time.Second)
		wantDetail(t, s.as(t, tok.Secret).do("GET", "/api/v1/orgs/acme/projects", nil), http.StatusUnauthorized, "token rotated")
		s.as(t, tok.Secret).do("GET", check, nil).want(t, http.StatusUnauthorized)
		s.as(t, rot.Secret).do("GET", check, nil).want(t, http.StatusNoContent)
		var got rotatedBody
		a.do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.PreviousSecretExpiresAt != nil || got.RotatedAt == nil || got.Hint != rot.Token.Hint {
			t.Fatalf("after the grace period: %+v", got)
		}

		// Without a grace period the old secret stops at once.
		var rot2 rotateResult
		a.do("POST", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d/rotate", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &rot2)
		wantDetail(t, s.as(t, rot.Secret).do("GET", "/api/v1/me", nil), http.StatusUnauthorized, "token rotated")
		s.as(t, rot2.Secret).do("GET", check, nil).want(t, http.StatusNoContent)

		for _, tc := range []struct{ name, grace string }{{"not a duration", "tomorrow"}, {"negative", "-1h"}, {"beyond 30 days", "800h"}} {
			t.Run(tc.name, func(t *testing.T) {
				p := a.do("POST", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d/rotate", tok.Token.ID), map[string]any{"grace_period": tc.grace}).
					want(t, http.StatusBadRequest).problem(t)
				if len(p.Errors) == 0 || p.Errors[0].Field != "grace_period" {
					t.Fatalf("problem = %+v", p)
				}
			})
		}
		// A member who is not an admin cannot rotate; a revoked token cannot be rotated.
		bob := s.createUser(t, "bob")
		a.do("PUT", "/api/v1/orgs/acme/members/bob", map[string]any{"role": "member"}).want(t, http.StatusCreated)
		s.as(t, bob).do("POST", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d/rotate", tok.Token.ID), nil).want(t, http.StatusForbidden)
		a.do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusNoContent)
		a.do("POST", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d/rotate", tok.Token.ID), nil).want(t, http.StatusBadRequest)

		var audit listBody[struct {
			Action  string         `json:"action"`
			Details map[string]any `json:"details"`
		}]
		a.do("GET", "/api/v1/orgs/acme/audit?action=token.rotated", nil).want(t, http.StatusOK).decode(t, &audit)
		if len(audit.Items) != 2 || strings.Contains(fmt.Sprint(audit.Items), "sot_") {
			t.Fatalf("token.rotated events = %+v", audit.Items)
		}
	})
}

// A user rotates their own personal token, and nobody else's.
func TestAPIPersonalTokenRotation(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		bob := s.createUser(t, "bob")
		var me struct {
			Token struct {
				ID int64 `json:"id"`
			} `json:"token"`
		}
		s.as(t, bob).do("GET", "/api/v1/me", nil).want(t, http.StatusOK).decode(t, &me)
		s.admin(t).do("POST", fmt.Sprintf("/api/v1/user/tokens/%d/rotate", me.Token.ID), nil).want(t, http.StatusNotFound)
		var rot rotateResult
		s.as(t, bob).do("POST", fmt.Sprintf("/api/v1/user/tokens/%d/rotate", me.Token.ID), map[string]any{"grace_period": "1h"}).
			want(t, http.StatusOK).decode(t, &rot)
		if !strings.HasPrefix(rot.Secret, "sotu_") {
			t.Fatalf("personal rotation secret has prefix %q", rot.Secret[:5])
		}
		s.as(t, rot.Secret).do("GET", "/api/v1/me", nil).want(t, http.StatusOK)
		s.as(t, bob).do("GET", "/api/v1/me", nil).want(t, http.StatusOK) // within the hour of grace
	})
}

// Self-rotation needs the self_rotate permission and an organization token.
func TestAPISelfRotation(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		scope := map[string]any{"all_projects": true}
		plain := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan"}})
		p := s.as(t, plain.Secret).do("POST", "/api/v1/tokens/self/rotate", nil).want(t, http.StatusForbidden).problem(t)
		if !strings.Contains(p.Detail, "self_rotate") {
			t.Fatalf("detail %q does not name self_rotate", p.Detail)
		}
		s.admin(t).do("POST", "/api/v1/tokens/self/rotate", nil).want(t, http.StatusForbidden)
		s.as(t, "").do("POST", "/api/v1/tokens/self/rotate", nil).want(t, http.StatusUnauthorized)

		self := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan", "self_rotate"}})
		var rot rotateResult
		s.as(t, self.Secret).do("POST", "/api/v1/tokens/self/rotate", map[string]any{"grace_period": "10m"}).
			want(t, http.StatusOK).decode(t, &rot)
		if rot.Token.ID != self.Token.ID || rot.Secret == self.Secret {
			t.Fatalf("self-rotation = %+v", rot.Token)
		}
		s.as(t, rot.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
		s.as(t, self.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
	})
}

// delivery is what the test receiver got.
type delivery struct {
	Event, ID, Timestamp string
	Body                 map[string]any
}

// receiver is a webhook endpoint on 127.0.0.1 that verifies signatures.
// It answers 500 to the first failFirst requests.
type receiver struct {
	URL       string
	secret    string
	mu        sync.Mutex
	failFirst int
	requests  int
	got       []delivery
	badSig    int
}

func newReceiver(t *testing.T, secret string, failFirst int) *receiver {
	rc := &receiver{secret: secret, failFirst: failFirst}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.requests++
		if !lifecycle.Verify(rc.secret, r.Header.Get("X-Sot-Timestamp"), r.Header.Get("X-Sot-Signature"), body) {
			rc.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if rc.requests <= rc.failFirst {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		rc.got = append(rc.got, delivery{Event: r.Header.Get("X-Sot-Event"), ID: r.Header.Get("X-Sot-Delivery"),
			Timestamp: r.Header.Get("X-Sot-Timestamp"), Body: m})
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

// events returns the events received, in order.
func (rc *receiver) events() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.badSig > 0 {
		panic(fmt.Sprintf("receiver saw %d bad signatures", rc.badSig))
	}
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) count(event string) int {
	n := 0
	for _, d := range rc.events() {
		if d.Event == event {
			n++
		}
	}
	return n
}

// createWebhook registers rc for events in org and returns the webhook ID.
func (s *testServer) createWebhook(t *testing.T, org string, rc *receiver, events ...string) int64 {
	t.Helper()
	var w struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	s.admin(t).do("POST", "/api/v1/orgs/"+org+"/webhooks", map[string]any{"url": rc.URL, "events": events, "secret": rc.secret}).
		want(t, http.StatusCreated).decode(t, &w)
	if w.Secret != rc.secret {
		t.Fatalf("create response secret %q, want the one given", w.Secret)
	}
	return w.ID
}

// A token with a rotation schedule is rotated by the server when due,
// once, also when the server restarted in between; the new secret comes
// in a signed token.rotated delivery and works, the old one keeps working
// for the grace period.
func TestAPIScheduledRotation(t *testing.T) {
	clock := &testClock{}
	forEachDB(t, serverOpts{Clock: clock}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		rc := newReceiver(t, "receiver-secret-0123456789", 0)
		hook := s.createWebhook(t, "acme", rc, "token.rotated", "token.created")
		a := s.admin(t)
		for _, tc := range []struct {
			name     string
			rotation map[string]any
			field    string
		}{
			{"every beyond policy", map[string]any{"every": "400d"}, ""},
			{"every not days", map[string]any{"every": "12h"}, "rotation.every"},
			{"grace not shorter", map[string]any{"every": "1d", "grace_period": "24h"}, "rotation.grace_period"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := map[string]any{"name": "x", "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"},
					"expires_in": "90d", "rotation": tc.rotation}
				p := a.do("POST", "/api/v1/orgs/acme/tokens", body).want(t, http.StatusBadRequest).problem(t)
				if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
					t.Fatalf("problem = %+v, want field %s", p, tc.field)
				}
			})
		}
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"},
			"expires_in": "90d", "rotation": map[string]any{"every": "30d", "grace_period": "24h"}})
		var got rotatedBody
		a.do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.Rotation == nil || got.Rotation.Every != "30d" || got.Rotation.GracePeriod != "24h0m0s" || got.NextRotationAt == nil {
			t.Fatalf("token rotation = %+v next %v", got.Rotation, got.NextRotationAt)
		}
		s.sweep(t)
		if rc.count("token.rotated") != 0 || rc.count("token.created") != 1 {
			t.Fatalf("before the schedule: %+v", rc.events())
		}
		created := rc.events()[0]
		if _, ok := created.Body["secret"]; ok {
			t.Fatal("token.created carries a secret")
		}

		clock.Advance(30*24*time.Hour + time.Minute)
		if s.DSN[:7] == "sqlite:" {
			s = s.Restart(t) // due while no server ran: done after the restart
			a = s.admin(t)
		}
		s.sweep(t)
		s.sweep(t)
		if n := rc.count("token.rotated"); n != 1 {
			t.Fatalf("%d token.rotated deliveries after two sweeps, want 1", n)
		}
		var ev delivery
		for _, d := range rc.events() {
			if d.Event == "token.rotated" {
				ev = d
			}
		}
		secret, _ := ev.Body["secret"].(string)
		if !strings.HasPrefix(secret, "sot_") || ev.ID == "" || ev.Timestamp == "" {
			t.Fatalf("token.rotated delivery = %+v", ev)
		}
		check := "/api/v1/check?org=acme&project=web"
		s.as(t, secret).do("GET", check, nil).want(t, http.StatusNoContent)
		s.as(t, tok.Secret).do("GET", check, nil).want(t, http.StatusNoContent)
		clock.Advance(25 * time.Hour)
		wantDetail(t, s.as(t, tok.Secret).do("GET", "/api/v1/me", nil), http.StatusUnauthorized, "token rotated")
		s.as(t, secret).do("GET", check, nil).want(t, http.StatusNoContent)

		a.do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.NextRotationAt == nil || got.NextRotationAt.Sub(clock.Now()) < 28*24*time.Hour {
			t.Fatalf("next rotation %v, want about 30 days after the last", got.NextRotationAt)
		}
		// PATCH removes the schedule.
		a.do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), map[string]any{"rotation": map[string]any{"every": ""}}).
			want(t, http.StatusOK).decode(t, &got)
		if got.Rotation != nil || got.NextRotationAt != nil {
			t.Fatalf("after removing the schedule: %+v", got)
		}
		// The delivered body no longer holds the secret.
		var ds listBody[map[string]any]
		a.do("GET", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d/deliveries", hook), nil).want(t, http.StatusOK).decode(t, &ds)
		if raw, _ := json.Marshal(ds); strings.Contains(string(raw), secret) {
			t.Fatal("the delivery log shows the rotated secret")
		}
	})
}

// Webhook CRUD: the secret is shown once (generated when not given), bad
// input is 400, only org admins manage webhooks; a delivery that the
// receiver answered 500 twice is retried with backoff and succeeds, and
// the delivery log shows the three attempts.
func TestAPIWebhookDeliveryRetries(t *testing.T) {
	clock := &testClock{}
	forEachDB(t, serverOpts{Clock: clock}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		a := s.admin(t)
		var gen struct {
			ID     int64    `json:"id"`
			Secret string   `json:"secret"`
			Events []string `json:"events"`
		}
		a.do("POST", "/api/v1/orgs/acme/webhooks", map[string]any{"url": "http://hooks.internal:8080/sot", "events": []string{"token.revoked"}}).
			want(t, http.StatusCreated).decode(t, &gen)
		if !strings.HasPrefix(gen.Secret, "whsec_") {
			t.Fatalf("generated secret %q", gen.Secret)
		}
		r := a.do("GET", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d", gen.ID), nil).want(t, http.StatusOK)
		if strings.Contains(string(r.Body), gen.Secret) || strings.Contains(string(r.Body), `"secret"`) {
			t.Fatalf("GET shows the secret: %s", r.Body)
		}
		if r := a.do("GET", "/api/v1/orgs/acme/webhooks", nil).want(t, http.StatusOK); strings.Contains(string(r.Body), gen.Secret) {
			t.Fatal("the list shows the secret")
		}
		for _, tc := range []struct {
			name string
			body map[string]any
		}{
			{"ftp url", map[string]any{"url": "ftp://example.com/x", "events": []string{"token.revoked"}}},
			{"relative url", map[string]any{"url": "/hook", "events": []string{"token.revoked"}}},
			{"unknown event", map[string]any{"url": "https://example.com/x", "events": []string{"token.exploded"}}},
			{"no events", map[string]any{"url": "https://example.com/x", "events": []string{}}},
			{"short secret", map[string]any{"url": "https://example.com/x", "events": []string{"token.revoked"}, "secret": "short"}},
			{"unknown field", map[string]any{"url": "https://example.com/x", "events": []string{"token.revoked"}, "color": "red"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a.do("POST", "/api/v1/orgs/acme/webhooks", tc.body).want(t, http.StatusBadRequest)
			})
		}
		dave := s.createUser(t, "dave")
		a.do("PUT", "/api/v1/orgs/acme/members/dave", map[string]any{"role": "member"}).want(t, http.StatusCreated)
		s.as(t, dave).do("GET", "/api/v1/orgs/acme/webhooks", nil).want(t, http.StatusForbidden)
		a.do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d", gen.ID), map[string]any{"events": []string{"token.created", "token.revoked"}}).
			want(t, http.StatusOK)
		a.do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d", gen.ID), nil).want(t, http.StatusNoContent)
		a.do("GET", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d", gen.ID), nil).want(t, http.StatusNotFound)

		rc := newReceiver(t, "receiver-secret-0123456789", 2)
		id := s.createWebhook(t, "acme", rc, "token.revoked")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		a.do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusNoContent)

		s.sweep(t) // 500
		s.sweep(t) // not due yet: backoff
		clock.Advance(31 * time.Second)
		s.sweep(t) // 500
		clock.Advance(31 * time.Second)
		s.sweep(t) // not due yet: the backoff doubled
		if len(rc.events()) != 0 {
			t.Fatal("delivered too early")
		}
		clock.Advance(31 * time.Second)
		s.sweep(t) // 200
		s.sweep(t)
		evs := rc.events()
		if len(evs) != 1 || evs[0].Event != "token.revoked" || evs[0].Body["token"].(map[string]any)["id"].(float64) != float64(tok.Token.ID) {
			t.Fatalf("received %+v", evs)
		}
		var ds listBody[struct {
			ID       int64  `json:"id"`
			Event    string `json:"event"`
			State    string `json:"state"`
			Attempts []struct {
				StatusCode int    `json:"status_code"`
				Error      string `json:"error"`
			} `json:"attempts"`
		}]
		a.do("GET", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d/deliveries", id), nil).want(t, http.StatusOK).decode(t, &ds)
		if len(ds.Items) != 1 {
			t.Fatalf("deliveries = %+v", ds.Items)
		}
		d := ds.Items[0]
		if d.State != "delivered" || len(d.Attempts) != 3 || d.Attempts[0].StatusCode != 500 || d.Attempts[1].StatusCode != 500 ||
			d.Attempts[2].StatusCode != 200 || !strings.Contains(d.Attempts[0].Error, "try again") || fmt.Sprint(d.ID) != evs[0].ID {
			t.Fatalf("delivery = %+v", d)
		}
	})
}

// token.expiring goes out at 30, 7 and 1 days before expiry, each once,
// then token.expired once. The list filter and the gauge show what is
// about to expire.
func TestAPIExpiryWarnings(t *testing.T) {
	clock := &testClock{}
	forEachDB(t, serverOpts{Clock: clock}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		rc := newReceiver(t, "receiver-secret-0123456789", 0)
		s.createWebhook(t, "acme", rc, "token.expiring", "token.expired")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "expires_in": "40d"})
		s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "expires_in": "90d"})
		a := s.admin(t)
		listIDs := func(query string) []int64 {
			var l listBody[tokenBody]
			a.do("GET", "/api/v1/orgs/acme/tokens"+query, nil).want(t, http.StatusOK).decode(t, &l)
			var ids []int64
			for _, it := range l.Items {
				ids = append(ids, it.ID)
			}
			return ids
		}
		step := func(advance time.Duration, wantDays []float64, wantExpired int) {
			t.Helper()
			clock.Advance(advance)
			s.sweep(t)
			s.sweep(t)
			var days []float64
			for _, d := range rc.events() {
				if d.Event == "token.expiring" {
					days = append(days, d.Body["details"].(map[string]any)["days"].(float64))
				}
			}
			if fmt.Sprint(days) != fmt.Sprint(wantDays) || rc.count("token.expired") != wantExpired {
				t.Fatalf("after %v: expiring warnings %v, want %v; expired %d, want %d", advance, days, wantDays, rc.count("token.expired"), wantExpired)
			}
		}
		step(0, nil, 0)
		if ids := listIDs("?state=expiring"); len(ids) != 0 {
			t.Fatalf("expiring at 40 days: %v", ids)
		}
		step(10*24*time.Hour+time.Minute, []float64{30}, 0)
		if ids := listIDs("?state=expiring"); fmt.Sprint(ids) != fmt.Sprint([]int64{tok.Token.ID}) {
			t.Fatalf("state=expiring = %v", ids)
		}
		if ids := listIDs("?state=expiring&within=7d"); len(ids) != 0 {
			t.Fatalf("state=expiring&within=7d at 30 days = %v", ids)
		}
		step(5*24*time.Hour, []float64{30}, 0)
		step(18*24*time.Hour, []float64{30, 7}, 0)
		if ids := listIDs("?state=expiring&within=7d"); len(ids) != 1 {
			t.Fatalf("state=expiring&within=7d at 7 days = %v", ids)
		}
		m := s.as(t, "").do("GET", "/metrics", nil).want(t, http.StatusOK)
		if !strings.Contains(string(m.Body), `sot_tokens_expiring_7d{org="acme"} 1`) {
			t.Fatalf("metrics lack the expiring gauge:\n%s", grepLines(string(m.Body), "sot_tokens_expiring"))
		}
		step(6*24*time.Hour, []float64{30, 7, 1}, 0)
		step(24*time.Hour, []float64{30, 7, 1}, 1)
		step(24*time.Hour, []float64{30, 7, 1}, 1)
		a.do("GET", "/api/v1/orgs/acme/tokens?state=expiring&within=1x", nil).want(t, http.StatusBadRequest)
		for _, d := range rc.events() {
			if _, ok := d.Body["secret"]; ok {
				t.Fatalf("%s carries a secret", d.Event)
			}
		}
	})
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// With the organization's idle_warning_days set, token.idle goes out once
// per idle period: again only after the token was used and then idle
// again. The token is never deleted.
func TestAPIIdleWarning(t *testing.T) {
	clock := &testClock{}
	forEachDB(t, serverOpts{Clock: clock}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		a := s.admin(t)
		var org struct {
			TokenPolicy struct {
				IdleWarningDays int `json:"idle_warning_days"`
			} `json:"token_policy"`
		}
		a.do("PATCH", "/api/v1/orgs/acme", map[string]any{"token_policy": map[string]any{"idle_warning_days": 10}}).want(t, http.StatusOK).decode(t, &org)
		if org.TokenPolicy.IdleWarningDays != 10 {
			t.Fatalf("idle_warning_days = %d", org.TokenPolicy.IdleWarningDays)
		}
		rc := newReceiver(t, "receiver-secret-0123456789", 0)
		s.createWebhook(t, "acme", rc, "token.idle")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "expires_in": "90d"})
		clock.Advance(9 * 24 * time.Hour)
		s.sweep(t)
		if n := rc.count("token.idle"); n != 0 {
			t.Fatalf("%d idle warnings after 9 days", n)
		}
		clock.Advance(2 * 24 * time.Hour)
		s.sweep(t)
		s.sweep(t)
		if n := rc.count("token.idle"); n != 1 {
			t.Fatalf("%d idle warnings after 11 days, want 1", n)
		}
		s.as(t, tok.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
		if err := s.srv.auth.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(5 * 24 * time.Hour)
		s.sweep(t)
		if n := rc.count("token.idle"); n != 1 {
			t.Fatalf("%d idle warnings 5 days after a use, want still 1", n)
		}
		clock.Advance(6 * 24 * time.Hour)
		s.sweep(t)
		s.sweep(t)
		if n := rc.count("token.idle"); n != 2 {
			t.Fatalf("%d idle warnings after a second idle period, want 2", n)
		}
		s.as(t, tok.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
	})
}

// Two replicas on one PostgreSQL sweep the same due tokens at the same
// time, twice each: every token is rotated exactly once, and every
// token.rotated delivery reaches the receiver exactly once.
func TestReplicasScheduledRotationExactlyOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	clock := &testClock{}
	a := startServer(t, serverOpts{DSN: dsn, Clock: clock})
	b := startServer(t, serverOpts{DSN: dsn, Clock: clock})
	b.AdminToken = a.AdminToken
	a.createOrg(t, "acme", "team")
	rc := newReceiver(t, "receiver-secret-0123456789", 0)
	a.createWebhook(t, "acme", rc, "token.rotated")
	const n = 20
	ids := map[float64]bool{}
	for range n {
		tok := a.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"},
			"expires_in": "90d", "rotation": map[string]any{"every": "7d", "grace_period": "1h"}})
		ids[float64(tok.Token.ID)] = true
	}
	clock.Advance(7*24*time.Hour + time.Minute)
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range []*testServer{a, b, a, b} {
		wg.Go(func() { s.sweep(t) })
	}
	wg.Wait()
	t.Logf("4 concurrent sweeps on 2 replicas rotated and delivered %d tokens in %v", n, time.Since(start).Round(time.Millisecond))
	evs := rc.events()
	seen := map[string]bool{}
	for _, d := range evs {
		if seen[d.ID] {
			t.Fatalf("delivery %s received twice", d.ID)
		}
		seen[d.ID] = true
		id := d.Body["token"].(map[string]any)["id"].(float64)
		if !ids[id] {
			t.Fatalf("token %v rotated twice or unknown", id)
		}
		delete(ids, id)
	}
	if len(evs) != n || len(ids) != 0 {
		t.Fatalf("%d token.rotated deliveries for %d due tokens; not rotated: %v", len(evs), n, ids)
	}
	var audit listBody[auditBody]
	a.admin(t).do("GET", "/api/v1/orgs/acme/audit?action=token.rotated&page_size=1000", nil).want(t, http.StatusOK).decode(t, &audit)
	if len(audit.Items) != n {
		t.Fatalf("%d token.rotated audit events, want %d", len(audit.Items), n)
	}
}

// A receiver's redirect is an answer, not a delivery: it is not followed
// (it could lead a token.rotated secret to a host nobody configured), and
// the attempt is recorded as failed with its status.
func TestAPIWebhookRedirectNotFollowed(t *testing.T) {
	s := startServer(t, serverOpts{})
	s.createOrg(t, "acme", "team")
	target := newReceiver(t, "receiver-secret-0123456789", 0)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	rc := &receiver{URL: redirect.URL, secret: "receiver-secret-0123456789"}
	id := s.createWebhook(t, "acme", rc, "token.created")
	s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
	s.sweep(t)
	target.mu.Lock()
	n := target.requests
	target.mu.Unlock()
	if n != 0 {
		t.Fatalf("the redirect was followed: %d requests at its target", n)
	}
	var ds listBody[struct {
		State    string `json:"state"`
		Attempts []struct {
			StatusCode int `json:"status_code"`
		} `json:"attempts"`
	}]
	s.admin(t).do("GET", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d/deliveries", id), nil).want(t, http.StatusOK).decode(t, &ds)
	if len(ds.Items) != 1 || ds.Items[0].State != "pending" || len(ds.Items[0].Attempts) != 1 || ds.Items[0].Attempts[0].StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("deliveries = %+v", ds.Items)
	}
}

// The server's own loop does the work: a rotation that fell due while the
// server was down happens right after the next start, and events go out
// without anyone calling sweep.
func TestAPILifecycleLoop(t *testing.T) {
	clock := &testClock{}
	s := startServer(t, serverOpts{Clock: clock, LifecycleInterval: 100 * time.Millisecond})
	s.createOrg(t, "acme", "team")
	rc := newReceiver(t, "receiver-secret-0123456789", 0)
	s.createWebhook(t, "acme", rc, "token.rotated", "token.revoked")
	tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"},
		"expires_in": "90d", "rotation": map[string]any{"every": "30d"}})
	other := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
	s.admin(t).do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", other.Token.ID), nil).want(t, http.StatusNoContent)
	waitUntil(t, "token.revoked delivered by the loop", func() bool { return rc.count("token.revoked") == 1 })
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * 24 * time.Hour)
	s = s.Restart(t)
	waitUntil(t, "token.rotated delivered after the restart", func() bool { return rc.count("token.rotated") == 1 })
	var got rotatedBody
	s.admin(t).do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &got)
	if got.RotatedAt == nil {
		t.Fatal("rotated_at is null after the scheduled rotation")
	}
}

// waitUntil polls cond for up to five seconds: the server's loop runs on
// its own schedule.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s did not happen within 5 s", what)
}

// A schedule needs a webhook for token.rotated, the only place its new
// secret goes: without one, setting a schedule is 400, and a due rotation
// is held back (not performed) until one exists again.
func TestAPIScheduledRotationNeedsWebhook(t *testing.T) {
	clock := &testClock{}
	forEachDB(t, serverOpts{Clock: clock}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		a := s.admin(t)
		body := map[string]any{"name": "x", "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"},
			"expires_in": "90d", "rotation": map[string]any{"every": "30d"}}
		p := a.do("POST", "/api/v1/orgs/acme/tokens", body).want(t, http.StatusBadRequest).problem(t)
		if !strings.Contains(p.Detail, "token.rotated") {
			t.Fatalf("detail %q does not explain the missing webhook", p.Detail)
		}
		rc := newReceiver(t, "receiver-secret-0123456789", 0)
		hook := s.createWebhook(t, "acme", rc, "token.rotated")
		tok := s.createOrgToken(t, "acme", body)
		a.do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d", hook), map[string]any{"events": []string{"token.revoked"}}).want(t, http.StatusOK)
		a.do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), map[string]any{"rotation": map[string]any{"every": "7d"}}).
			want(t, http.StatusBadRequest)

		clock.Advance(31 * 24 * time.Hour)
		s.sweep(t)
		var got rotatedBody
		a.do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.RotatedAt != nil {
			t.Fatal("rotated with no webhook to send the new secret to")
		}
		s.as(t, tok.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)

		a.do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/webhooks/%d", hook), map[string]any{"events": []string{"token.rotated"}}).want(t, http.StatusOK)
		s.sweep(t)
		if n := rc.count("token.rotated"); n != 1 {
			t.Fatalf("%d token.rotated deliveries once a webhook exists, want 1", n)
		}
	})
}
