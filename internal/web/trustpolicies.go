package web

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sot-dev/sot"
)

// immutableClaims are the claims that keep their value when a repository
// or organization is renamed, or deleted and its name taken by someone
// else. Names ("repository", "repository_owner") do not.
var immutableClaims = []string{"repository_id", "repository_owner_id", "namespace_id", "project_id"}

// usesImmutableClaim reports whether a policy's conditions pin at least
// one immutable claim.
func usesImmutableClaim(cs map[string]string) bool {
	for _, c := range immutableClaims {
		if _, ok := cs[c]; ok {
			return true
		}
	}
	return false
}

// policyRow is a trust policy as the list shows it.
type policyRow struct {
	*sot.TrustPolicy
	Order      int
	Conditions []string // "claim = value", sorted by claim
	Immutable  bool
	TTL        string
}

func conditionLines(cs map[string]string) []string {
	out := make([]string, 0, len(cs))
	for _, k := range slices.Sorted(maps.Keys(cs)) {
		out = append(out, k+" = "+cs[k])
	}
	return out
}

type policiesData struct {
	Issuers  []string
	Policies []policyRow
	Next     string
	First    bool
	Offset   int
}

// trustPolicies lists the policies in the order an exchange tries them.
func (h *Handler) trustPolicies(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	ps, next, err := h.cfg.TrustPolicies.ListTrustPolicies(r.Context(), r.org.Key, sot.Page{Size: 50, Token: q.Get("page_token")})
	if err != nil {
		return err
	}
	// The page token is opaque; the position is carried next to it so the
	// order numbers continue across pages.
	offset, _ := strconv.Atoi(q.Get("from"))
	offset = max(offset, 0)
	d := policiesData{Issuers: h.issuers(), Next: next, First: q.Get("page_token") == "", Offset: offset + len(ps)}
	for i, p := range ps {
		d.Policies = append(d.Policies, policyRow{TrustPolicy: p, Order: offset + i + 1,
			Conditions: conditionLines(p.Conditions), Immutable: usesImmutableClaim(p.Conditions), TTL: formatTTL(p.TTL)})
	}
	v := &view{Title: "Trust policies", Nav: "trust", Data: d}
	if q.Get("done") == "policy-deleted" {
		n, _ := strconv.Atoi(q.Get("revoked"))
		v.Notice = "Trust policy deleted; " + plural(max(n, 0), "live token") + " it minted revoked."
	}
	h.render(w, r, http.StatusOK, "trust_policies", v)
	return nil
}

// issuers lists the issuers the operator trusts; none without OIDC.
func (h *Handler) issuers() []string {
	if h.cfg.OIDC == nil {
		return nil
	}
	return h.cfg.OIDC.Issuers()
}

func (h *Handler) trusts(issuer string) bool {
	return h.cfg.OIDC != nil && h.cfg.OIDC.Trusts(issuer)
}

func formatTTL(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	if d%time.Minute == 0 {
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.String()
}

// policyForm is the create and edit form of a trust policy.
type policyForm struct {
	ID          int64 // 0 on the create page
	Name        string
	Issuer      string
	Issuers     []string
	Audience    string
	Conditions  string // "claim = value" lines
	Scope       scopeForm
	Permissions []permissionOption
	TTL         string
	Fields      map[string]string
	PlanBlocked bool
	// Untrusted is set when the policy's issuer is no longer trusted by
	// the operator: it must be replaced before anything else is saved.
	Untrusted bool
}

// policyPermissions lists the permissions a policy may grant: tokens an
// exchange mints cannot renew themselves.
func policyPermissions(set sot.PermissionSet) []permissionOption {
	var opts []permissionOption
	for _, o := range permissionOptions(set) {
		if o.Name != sot.PermissionSelfRotate.String() {
			opts = append(opts, o)
		}
	}
	return opts
}

func (h *Handler) newPolicyForm(r *request) *policyForm {
	f := &policyForm{
		Issuers:     h.issuers(),
		Audience:    sot.DefaultAudience,
		Scope:       scopeForm{Org: r.org.Key, Mode: "all"},
		Permissions: policyPermissions(sot.NewPermissionSet(sot.PermissionScan)),
		TTL:         formatTTL(sot.DefaultTrustTTL),
		PlanBlocked: !r.org.Plan.AllowsOrgTokens(),
	}
	if len(f.Issuers) > 0 {
		f.Issuer = f.Issuers[0]
	}
	return f
}

func (h *Handler) newTrustPolicy(w http.ResponseWriter, r *request) error {
	f := h.newPolicyForm(r)
	if err := h.searchProjects(r, &f.Scope); err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "trust_policy", &view{Title: "New trust policy", Nav: "trust", Data: f})
	return nil
}

// parseConditions reads "claim = value" lines. Blank lines are skipped;
// the value is kept verbatim after trimming, so it may contain '='.
func parseConditions(text string) (map[string]string, error) {
	cs := map[string]string{}
	var fields []sot.FieldError
	for i, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		name, value, ok := strings.Cut(l, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok || name == "":
			fields = append(fields, sot.FieldError{Field: "conditions", Message: fmt.Sprintf("line %d: write claim = value", i+1)})
		case hasKey(cs, name):
			fields = append(fields, sot.FieldError{Field: "conditions", Message: fmt.Sprintf("line %d: %s is already set on an earlier line", i+1, name)})
		default:
			cs[name] = value
		}
	}
	if fields != nil {
		return cs, sot.Invalid("invalid conditions", fields...)
	}
	return cs, nil
}

// readPolicyForm reads the posted form into f and the policy it
// describes; keep are the policy's current explicit projects (edit page).
// The error lists every problem of the form, the first one on top.
func (h *Handler) readPolicyForm(r *request, f *policyForm, keep []string) (*sot.TrustPolicy, error) {
	f.Name = strings.TrimSpace(r.PostFormValue("name"))
	f.Issuer = r.PostFormValue("issuer")
	f.Audience = strings.TrimSpace(r.PostFormValue("audience"))
	f.Conditions = r.PostFormValue("conditions")
	f.TTL = strings.TrimSpace(r.PostFormValue("ttl"))
	f.Scope = parseScopeForm(r)
	f.Scope.KeepCount = len(keep)
	if f.Audience == "" {
		f.Audience = sot.DefaultAudience
	}
	p := &sot.TrustPolicy{Org: r.org.Key, Name: f.Name, Issuer: f.Issuer, Audience: f.Audience}
	perms, permErr := parsePermissions(r)
	f.Permissions = policyPermissions(perms)
	p.Permissions = perms
	var condErr, ttlErr, scopeErr error
	p.Conditions, condErr = parseConditions(f.Conditions)
	p.TTL, ttlErr = sot.ParseTrustTTL("ttl", f.TTL)
	p.Scope, scopeErr = h.resolveScope(r, &f.Scope, keep)
	err := firstErr(condErr, permErr, ttlErr, scopeErr)
	if err == nil {
		err = sot.ValidateTrustPolicy(r.org, p, h.trusts)
	}
	for _, e := range []error{condErr, permErr, ttlErr, scopeErr, err} {
		if e != nil {
			f.Fields = mergeFields(f.Fields, e)
		}
	}
	f.Scope.Fields = f.Fields
	return p, err
}

func (h *Handler) createTrustPolicy(w http.ResponseWriter, r *request) error {
	f := h.newPolicyForm(r)
	p, err := h.readPolicyForm(r, f, nil)
	if err == nil {
		p.CreatedBy = sot.UserRef{ID: r.user.ID, Login: r.user.Login}
		err = h.cfg.TrustPolicies.CreateTrustPolicy(r.ctx(), p)
	}
	if err != nil {
		return h.policyFormError(w, r, f, err, "New trust policy")
	}
	redirect(w, r, policyPath(r.org.Key, p.ID), "policy-created")
	return nil
}

// policyFormError shows the form again with err, or fails the request
// when err is not the user's.
func (h *Handler) policyFormError(w http.ResponseWriter, r *request, f *policyForm, err error, title string) error {
	if statusOf(err) >= 500 {
		return err
	}
	f.Fields = mergeFields(f.Fields, err)
	f.Scope.Fields = f.Fields
	if err := h.searchProjects(r, &f.Scope); err != nil {
		return err
	}
	h.render(w, r, statusOf(err), "trust_policy", &view{Title: title, Nav: "trust", Error: sot.ErrorMessage(err), Data: f})
	return nil
}

func policyPath(org string, id int64) string {
	return "/orgs/" + org + "/trust-policies/" + strconv.FormatInt(id, 10)
}

func (h *Handler) findPolicy(r *request) (*sot.TrustPolicy, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, sot.Errorf(sot.ENOTFOUND, "trust policy not found")
	}
	return h.cfg.TrustPolicies.FindTrustPolicy(r.Context(), r.org.Key, id)
}

// editForm fills the form with the stored policy.
func (h *Handler) editForm(r *request, p *sot.TrustPolicy) *policyForm {
	f := &policyForm{
		ID:          p.ID,
		Name:        p.Name,
		Issuer:      p.Issuer,
		Issuers:     h.issuers(),
		Audience:    p.Audience,
		Conditions:  strings.Join(conditionLines(p.Conditions), "\n"),
		Scope:       scopeForm{Org: r.org.Key, Mode: "all", Keep: true, KeepCount: len(p.Scope.Projects)},
		Permissions: policyPermissions(p.Permissions),
		TTL:         formatTTL(p.TTL),
		PlanBlocked: !r.org.Plan.AllowsOrgTokens(),
		Untrusted:   !h.trusts(p.Issuer),
	}
	switch {
	case len(p.Scope.Patterns) > 0:
		f.Scope.Mode, f.Scope.Patterns = "patterns", strings.Join(p.Scope.Patterns, "\n")
	case len(p.Scope.Projects) > 0:
		f.Scope.Mode = "projects"
	}
	return f
}

func (h *Handler) trustPolicy(w http.ResponseWriter, r *request) error {
	p, err := h.findPolicy(r)
	if err != nil {
		return err
	}
	f := h.editForm(r, p)
	if err := h.searchProjects(r, &f.Scope); err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "trust_policy", &view{Title: p.Name, Nav: "trust", Data: f})
	return nil
}

// updateTrustPolicy saves the whole form: the result is validated as a
// whole, as the API does, so an issuer the operator stopped trusting must
// be replaced before anything else changes.
func (h *Handler) updateTrustPolicy(w http.ResponseWriter, r *request) error {
	cur, err := h.findPolicy(r)
	if err != nil {
		return err
	}
	f := h.editForm(r, cur)
	p, err := h.readPolicyForm(r, f, cur.Scope.Projects)
	if err == nil {
		_, err = h.cfg.TrustPolicies.UpdateTrustPolicy(r.ctx(), r.org.Key, cur.ID, sot.TrustPolicyUpdate{
			Name: &p.Name, Issuer: &p.Issuer, Audience: &p.Audience, Conditions: &p.Conditions,
			Scope: &p.Scope, Permissions: &p.Permissions, TTL: &p.TTL,
		})
	}
	if err != nil {
		return h.policyFormError(w, r, f, err, cur.Name)
	}
	redirect(w, r, policyPath(r.org.Key, cur.ID), "policy-updated")
	return nil
}

// liveMinted counts the live tokens policy id minted, which deleting it
// revokes; capped at overviewScanLimit tokens read.
func (h *Handler) liveMinted(r *request, id int64) (n int, capped bool, err error) {
	read := 0
	for page := (sot.Page{Size: sot.MaxPageSize}); ; {
		ts, next, err := h.cfg.Tokens.ListTokens(r.Context(), sot.TokenOwner{Org: r.org.Key},
			sot.TokenFilter{State: sot.TokenStateActive, Now: h.now()}, page)
		if err != nil {
			return 0, false, err
		}
		for _, t := range ts {
			if t.TrustPolicyID == id {
				n++
			}
		}
		read += len(ts)
		if next == "" {
			return n, false, nil
		}
		if read >= overviewScanLimit {
			return n, true, nil
		}
		page.Token = next
	}
}

func (h *Handler) confirmDeleteTrustPolicy(w http.ResponseWriter, r *request) error {
	p, err := h.findPolicy(r)
	if err != nil {
		return err
	}
	n, capped, err := h.liveMinted(r, p.ID)
	if err != nil {
		return err
	}
	count := plural(n, "live token")
	if capped {
		count = "at least " + count
	}
	path := policyPath(r.org.Key, p.ID)
	h.render(w, r, http.StatusOK, "confirm", &view{Title: "Delete trust policy", Nav: "trust", Data: confirmData{
		Question: "Delete trust policy " + p.Name + "?",
		Detail: "CI jobs it lets in can no longer exchange their ID tokens, and the " + count +
			" it minted will be revoked at once. This cannot be undone.",
		Action: path + "/delete",
		Button: "Delete and revoke " + count,
		Cancel: path,
	}})
	return nil
}

func (h *Handler) deleteTrustPolicy(w http.ResponseWriter, r *request) error {
	p, err := h.findPolicy(r)
	if err != nil {
		return err
	}
	n, err := h.cfg.TrustPolicies.DeleteTrustPolicy(r.ctx(), r.org.Key, p.ID, h.now())
	if err != nil {
		return err
	}
	http.Redirect(w, r.Request, "/orgs/"+r.org.Key+"/trust-policies?done=policy-deleted&revoked="+strconv.Itoa(n), http.StatusSeeOther)
	return nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
