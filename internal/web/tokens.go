package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sot-dev/sot"
)

// tokenRow is a token as the lists show it.
type tokenRow struct {
	*sot.Token
	State       string
	Expiry      string // "expires in 5 days", "expired 2 days ago", "never expires"
	ExpiryClass string // the badge's colour: ok, warn, bad, none
	LastUsed    string // "3 hours ago", "never"
	// ScopeSummary is Scope.Summary, counting explicit projects from
	// ProjectCount since lists do not load them.
	ScopeSummary string
}

func (h *Handler) tokenRow(t *sot.Token, now time.Time) tokenRow {
	row := tokenRow{Token: t, State: string(t.State(now)), LastUsed: "never", ScopeSummary: t.Scope.Summary()}
	if n := max(len(t.Scope.Projects), t.ProjectCount); !t.Scope.AllProjects && n > 0 {
		row.ScopeSummary = plural(n, "project")
		if p := len(t.Scope.Patterns); p > 0 {
			row.ScopeSummary = plural(p, "pattern") + ", " + row.ScopeSummary
		}
	}
	switch {
	case t.ExpiresAt == nil:
		row.Expiry, row.ExpiryClass = "never expires", "none"
	case !now.Before(*t.ExpiresAt):
		row.Expiry, row.ExpiryClass = "expired", "bad"
	default:
		row.Expiry, row.ExpiryClass = "expires in "+span(t.ExpiresAt.Sub(now)), "ok"
		if t.ExpiresAt.Sub(now) <= attentionWindow {
			row.ExpiryClass = "warn"
		}
	}
	if t.LastUsedAt != nil {
		row.LastUsed = ago(*t.LastUsedAt, now)
	}
	return row
}

type tokensData struct {
	State  string
	States []string
	Tokens []tokenRow
	Next   string
	First  bool
}

func (h *Handler) tokens(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	state := sot.TokenState(q.Get("state"))
	if state == "" {
		state = sot.TokenStateActive
	}
	if !state.Valid() {
		return sot.Invalid("unknown token state: want active, expiring, expired, revoked or all")
	}
	now := h.now()
	ts, next, err := h.cfg.Tokens.ListTokens(r.Context(), sot.TokenOwner{Org: r.org.Key},
		sot.TokenFilter{State: state, Now: now}, sot.Page{Size: 50, Token: q.Get("page_token")})
	if err != nil {
		return err
	}
	d := tokensData{State: string(state), Next: next, First: q.Get("page_token") == "",
		States: []string{"active", "expiring", "expired", "revoked", "all"}}
	for _, t := range ts {
		d.Tokens = append(d.Tokens, h.tokenRow(t, now))
	}
	h.render(w, r, http.StatusOK, "tokens", &view{Title: "Tokens", Nav: "tokens", Data: d})
	return nil
}

// permissionHelp explains each grantable permission in one line.
var permissionHelp = map[sot.Permission]string{
	sot.PermissionScan:       "Upload analysis reports to projects in scope (the CI step).",
	sot.PermissionBrowse:     "Read and search projects in scope and their analyses.",
	sot.PermissionProvision:  "Create new projects whose key falls in the scope (all projects or a pattern).",
	sot.PermissionSelfRotate: "Rotate its own secret, for pipelines that renew their credential.",
}

type permissionOption struct {
	Name    string
	Help    string
	Checked bool
}

type expiryOption struct {
	Value    string
	Label    string
	Checked  bool
	Disabled string // why it cannot be chosen, or ""
}

// scopeForm is the scope chooser, shared by the create page and the token
// detail page.
type scopeForm struct {
	Org      string
	Mode     string // "all", "patterns" or "projects"
	Patterns string // one per line
	Query    string // the project search
	// SelectAll asks for every project matching Query, resolved on the
	// server: "select all 2,000 matching" sends one query, not 2,000 keys.
	SelectAll bool
	Selected  []string // explicitly checked keys
	// Keep keeps the token's current explicit projects (detail page).
	Keep      bool
	KeepCount int // how many there are (0 on the create page)
	Results   []*sot.Project
	Count     int
	Fields    map[string]string
	Lines     []lineError // pattern errors by line
}

type lineError struct {
	Line    int
	Message string
}

// tokenForm is the create page's form.
type tokenForm struct {
	Name        string
	Description string
	Scope       scopeForm
	Permissions []permissionOption
	Expiry      []expiryOption
	CustomDate  string
	MinDate     string
	MaxDate     string
	CIDRs       string
	Fields      map[string]string
	PlanBlocked bool
	MaxDays     int
}

var expiryPresets = []struct {
	value, label string
	days         int
}{{"7d", "7 days", 7}, {"30d", "30 days", 30}, {"90d", "90 days", 90}, {"1y", "1 year", 365}}

// expiryOptions lists the expiry choices under policy, checking chosen,
// or the default (90 days, else the longest allowed preset).
func expiryOptions(policy sot.TokenPolicy, chosen string) []expiryOption {
	var opts []expiryOption
	def := "custom"
	for _, p := range expiryPresets {
		o := expiryOption{Value: p.value, Label: p.label}
		if p.days > policy.MaxLifetimeDays {
			o.Disabled = fmt.Sprintf("beyond the organization's maximum of %d days", policy.MaxLifetimeDays)
		} else if def != "90d" {
			def = p.value
		}
		opts = append(opts, o)
	}
	opts = append(opts, expiryOption{Value: "custom", Label: "Custom date"})
	never := expiryOption{Value: "never", Label: "No expiry"}
	if !policy.AllowNonExpiring {
		never.Disabled = "the organization's token policy requires an expiry"
	}
	opts = append(opts, never)
	if chosen == "" {
		chosen = def
	}
	for i := range opts {
		opts[i].Checked = opts[i].Value == chosen && opts[i].Disabled == ""
	}
	return opts
}

func permissionOptions(set sot.PermissionSet) []permissionOption {
	var opts []permissionOption
	for _, p := range sot.TokenPermissions {
		opts = append(opts, permissionOption{Name: p.String(), Help: permissionHelp[p], Checked: set.Has(p)})
	}
	return opts
}

func (h *Handler) newTokenForm(r *request) *tokenForm {
	now := h.now()
	f := &tokenForm{
		Scope:       scopeForm{Org: r.org.Key, Mode: "all"},
		Permissions: permissionOptions(sot.NewPermissionSet(sot.PermissionScan)),
		Expiry:      expiryOptions(r.org.TokenPolicy, ""),
		MinDate:     now.Add(sot.Day).UTC().Format(time.DateOnly),
		MaxDate:     now.Add(time.Duration(r.org.TokenPolicy.MaxLifetimeDays) * sot.Day).UTC().Format(time.DateOnly),
		PlanBlocked: !r.org.Plan.AllowsOrgTokens(),
		MaxDays:     r.org.TokenPolicy.MaxLifetimeDays,
	}
	return f
}

func (h *Handler) newToken(w http.ResponseWriter, r *request) error {
	f := h.newTokenForm(r)
	if err := h.searchProjects(r, &f.Scope); err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "token_new", &view{Title: "New token", Nav: "tokens", Data: f})
	return nil
}

// searchProjects fills the project search results of the scope chooser.
func (h *Handler) searchProjects(r *request, s *scopeForm) error {
	filter := sot.ProjectFilter{Query: s.Query}
	var err error
	if s.Results, _, err = h.cfg.Projects.ListProjects(r.Context(), r.org.Key, filter, sot.Page{Size: 50}); err != nil {
		return err
	}
	s.Count, err = h.cfg.Projects.CountProjects(r.Context(), r.org.Key, filter)
	return err
}

// patternLines splits the patterns field into patterns, remembering the
// line of each so that errors point at the right line.
func patternLines(text string) (patterns []string, lines []int) {
	for i, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			patterns = append(patterns, l)
			lines = append(lines, i+1)
		}
	}
	return patterns, lines
}

func splitLines(text string) []string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseScopeForm reads the scope chooser from a posted form.
func parseScopeForm(r *request) scopeForm {
	s := scopeForm{
		Org:       r.org.Key,
		Mode:      r.PostFormValue("scope_mode"),
		Patterns:  r.PostFormValue("patterns"),
		Query:     strings.TrimSpace(r.PostFormValue("q")),
		SelectAll: r.PostFormValue("select_all") == "1",
		Keep:      r.PostFormValue("keep_projects") == "1",
	}
	seen := map[string]bool{}
	for _, k := range r.PostForm["project"] {
		if k = strings.TrimSpace(k); k != "" && !seen[k] {
			seen[k] = true
			s.Selected = append(s.Selected, k)
		}
	}
	return s
}

// maxSelectAll bounds "select all matching": the scope's own limit.
const maxSelectAll = sot.MaxScopeProjects

// resolveScope turns the chooser into a scope. keep are the token's current
// explicit projects (detail page). "Select all matching" is resolved here,
// on the server, to the keys of every matching project.
func (h *Handler) resolveScope(r *request, s *scopeForm, keep []string) (sot.Scope, error) {
	switch s.Mode {
	case "all":
		return sot.Scope{AllProjects: true}, nil
	case "patterns":
		patterns, lines := patternLines(s.Patterns)
		scope := sot.Scope{Patterns: patterns}
		if len(patterns) == 0 {
			return scope, sot.Invalid("enter at least one pattern", sot.FieldError{Field: "scope.patterns", Message: "enter at least one pattern, one per line"})
		}
		if err := scope.Validate("scope"); err != nil {
			s.Lines = patternErrors(err, lines)
			return scope, err
		}
		return scope, nil
	case "projects":
		keys := slices.Clone(s.Selected)
		if s.Keep {
			keys = append(keys, keep...)
		}
		if s.SelectAll {
			filter := sot.ProjectFilter{Query: s.Query}
			for page := (sot.Page{Size: sot.MaxPageSize}); ; {
				ps, next, err := h.cfg.Projects.ListProjects(r.Context(), r.org.Key, filter, page)
				if err != nil {
					return sot.Scope{}, err
				}
				for _, p := range ps {
					keys = append(keys, p.Key)
				}
				if next == "" || len(keys) > maxSelectAll {
					break
				}
				page.Token = next
			}
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		if len(keys) == 0 {
			return sot.Scope{}, sot.Invalid("select at least one project", sot.FieldError{Field: "scope.projects", Message: "select at least one project"})
		}
		scope := sot.Scope{Projects: keys}
		return scope, scope.Validate("scope")
	}
	return sot.Scope{}, sot.Invalid("choose which projects the token covers", sot.FieldError{Field: "scope", Message: "choose one of the three options"})
}

// patternErrors maps "scope.patterns[i]" field errors to pattern lines.
func patternErrors(err error, lines []int) []lineError {
	var out []lineError
	for _, f := range sot.ErrorFields(err) {
		var i int
		if _, scanErr := fmt.Sscanf(f.Field, "scope.patterns[%d]", &i); scanErr == nil && i >= 0 && i < len(lines) {
			out = append(out, lineError{Line: lines[i], Message: f.Message})
		}
	}
	return out
}

func parsePermissions(r *request) (sot.PermissionSet, error) {
	if len(r.PostForm["permission"]) == 0 {
		return 0, sot.Invalid("choose at least one permission", sot.FieldError{Field: "permissions", Message: "choose at least one permission"})
	}
	return sot.ParsePermissionSet(r.PostForm["permission"])
}

// parseExpiry reads the expiry choice. A custom date means the end of
// that day, UTC.
func parseExpiry(choice, date string) (sot.Expiry, error) {
	switch choice {
	case "never":
		return sot.Expiry{Never: true}, nil
	case "custom":
		d, err := time.Parse(time.DateOnly, date)
		if err != nil {
			return sot.Expiry{}, sot.Invalid("enter the expiry date", sot.FieldError{Field: "expires_at", Message: "enter a date such as 2027-03-31"})
		}
		at := d.Add(sot.Day - time.Second)
		return sot.Expiry{At: &at}, nil
	}
	for _, p := range expiryPresets {
		if p.value == choice {
			return sot.Expiry{In: choice}, nil
		}
	}
	return sot.Expiry{}, sot.Invalid("choose when the token expires", sot.FieldError{Field: "expires_in", Message: "choose an expiry"})
}

func parseCIDRs(text string) ([]netip.Prefix, error) {
	cidrs, err := sot.ParseCIDRs("allowed_cidrs", splitLines(text))
	if err != nil || len(cidrs) == 0 {
		return nil, err
	}
	return cidrs, nil
}

func (h *Handler) createToken(w http.ResponseWriter, r *request) error {
	f := h.newTokenForm(r)
	f.Name = strings.TrimSpace(r.PostFormValue("name"))
	f.Description = strings.TrimSpace(r.PostFormValue("description"))
	f.Scope = parseScopeForm(r)
	f.CustomDate = r.PostFormValue("expires_at")
	f.CIDRs = r.PostFormValue("allowed_cidrs")
	choice := r.PostFormValue("expiry")
	f.Expiry = expiryOptions(r.org.TokenPolicy, choice)

	req := sot.TokenRequest{Name: f.Name, Description: f.Description}
	var err error
	perms, permErr := parsePermissions(r)
	if permErr == nil {
		req.Permissions = perms
	}
	f.Permissions = permissionOptions(perms)
	scope, scopeErr := h.resolveScope(r, &f.Scope, nil)
	req.Scope = scope
	req.Expiry, err = parseExpiry(choice, f.CustomDate)
	cidrs, cidrErr := parseCIDRs(f.CIDRs)
	req.AllowedCIDRs = cidrs
	// Report every problem of the form at once, the first one on top.
	for _, e := range []error{scopeErr, permErr, err, cidrErr} {
		if e != nil {
			f.Fields = mergeFields(f.Fields, e)
		}
	}
	err = firstErr(scopeErr, permErr, err, cidrErr)
	var t *sot.Token
	var secret string
	if err == nil {
		t, secret, err = sot.PrepareOrgToken(r.org, sot.UserRef{ID: r.user.ID, Login: r.user.Login}, req, h.now())
	}
	if err == nil {
		err = h.cfg.Tokens.CreateToken(r.ctx(), t, sot.HashSecret(secret))
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		f.Fields = mergeFields(f.Fields, err)
		if f.Scope.Mode == "projects" {
			if serr := h.searchProjects(r, &f.Scope); serr != nil {
				return serr
			}
		}
		h.render(w, r, statusOf(err), "token_new", &view{Title: "New token", Nav: "tokens", Error: sot.ErrorMessage(err), Data: f})
		return nil
	}
	return h.showSecretOnce(w, r, t.ID, secret, false)
}

// showSecretOnce redirects to the page that shows a new secret once,
// handing it over in an encrypted cookie scoped to that page
// (POST-redirect-GET: a reload does not show it again).
func (h *Handler) showSecretOnce(w http.ResponseWriter, r *request, id int64, secret string, rotated bool) error {
	path := tokenPath(r.org.Key, id) + "/created"
	sealed, err := h.keys.sealFlash(flash{UserID: r.user.ID, TokenID: id, Secret: secret,
		Expires: h.now().Add(flashTTL).Unix(), Rotated: rotated}, path)
	if err != nil {
		return err
	}
	h.setCookie(w, secretCookie, sealed, path, flashTTL)
	http.Redirect(w, r.Request, path, http.StatusSeeOther)
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func mergeFields(m map[string]string, err error) map[string]string {
	for k, v := range fieldMap(err) {
		if m == nil {
			m = map[string]string{}
		}
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

func tokenPath(org string, id int64) string {
	return "/orgs/" + org + "/tokens/" + strconv.FormatInt(id, 10)
}

func (h *Handler) findToken(r *request) (*sot.Token, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, sot.Errorf(sot.ENOTFOUND, "token not found")
	}
	return h.cfg.Tokens.FindToken(r.Context(), sot.TokenOwner{Org: r.org.Key}, id)
}

type createdData struct {
	Token    tokenRow
	Rotated  bool
	Secret   string // "" once shown
	Snippets []snippet
}

type snippet struct {
	ID, Title, Note, Code string
}

// tokenCreated shows a new token's secret, once: the secret arrives in an
// encrypted cookie scoped to this page, which the response deletes.
func (h *Handler) tokenCreated(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	path := tokenPath(r.org.Key, t.ID) + "/created"
	d := createdData{Token: h.tokenRow(t, h.now())}
	if c, err := r.Cookie(secretCookie); err == nil {
		h.clearCookie(w, secretCookie, path)
		if f, err := h.keys.openFlash(c.Value, path, r.user.ID, t.ID, h.now()); err == nil {
			d.Secret, d.Rotated = f.Secret, f.Rotated
			d.Snippets = h.snippets(r, t)
		}
	}
	// The secret must not be kept by the browser, a proxy or the Referer
	// of a link clicked on this page.
	w.Header().Set("Referrer-Policy", "no-referrer")
	title := "Token created"
	if d.Rotated {
		title = "Token rotated"
	}
	h.render(w, r, http.StatusOK, "token_created", &view{Title: title, Nav: "tokens", Data: d})
	return nil
}

// snippets are ready-to-paste CI steps. They read the secret from the CI
// system's secret store (SOT_TOKEN), never from the snippet itself.
func (h *Handler) snippets(r *request, t *sot.Token) []snippet {
	base := "http://" + r.Host
	if r.TLS != nil || h.cfg.SecureCookies {
		base = "https://" + r.Host
	}
	project := h.exampleProject(r, t)
	org := r.org.Key
	scan := fmt.Sprintf("sot scan %s %s report.json", org, project)
	apiURL := fmt.Sprintf("%s/api/v1/orgs/%s/projects/%s/analyses", base, org, project)
	return []snippet{
		{ID: "github", Title: "GitHub Actions", Note: "Add the secret as the repository secret SOT_TOKEN.",
			Code: "- name: Upload analysis to sot\n  env:\n    SOT_URL: " + base + "\n    SOT_TOKEN: ${{ secrets.SOT_TOKEN }}\n" +
				"  run: " + scan + ` --branch "$GITHUB_REF_NAME" --commit "$GITHUB_SHA"` + "\n"},
		{ID: "gitlab", Title: "GitLab CI", Note: "Add the secret as a masked, protected CI/CD variable SOT_TOKEN.",
			Code: "sot-scan:\n  stage: test\n  variables:\n    SOT_URL: " + base + "\n  script:\n" +
				"    - " + scan + ` --branch "$CI_COMMIT_REF_NAME" --commit "$CI_COMMIT_SHA"` + "\n"},
		{ID: "azure", Title: "Azure Pipelines", Note: "Add the secret as a secret pipeline variable SOT_TOKEN.",
			Code: "- script: " + scan + ` --branch "$(Build.SourceBranchName)" --commit "$(Build.SourceVersion)"` + "\n" +
				"  displayName: Upload analysis to sot\n  env:\n    SOT_URL: " + base + "\n    SOT_TOKEN: $(SOT_TOKEN)\n"},
		{ID: "jenkins", Title: "Jenkins", Note: "Add the secret as a Secret text credential with the ID sot-token.",
			Code: "stage('Upload analysis to sot') {\n  steps {\n    withCredentials([string(credentialsId: 'sot-token', variable: 'SOT_TOKEN')]) {\n" +
				`      sh 'curl -fsS -X POST -H "Authorization: Bearer $SOT_TOKEN" --data-binary @report.json "` + apiURL + `?branch=$BRANCH_NAME&commit=$GIT_COMMIT"'` +
				"\n    }\n  }\n}\n"},
	}
}

// exampleProject picks a project the token covers, for the snippets.
func (h *Handler) exampleProject(r *request, t *sot.Token) string {
	if len(t.Scope.Projects) > 0 {
		return t.Scope.Projects[0]
	}
	if m, err := t.Scope.Compile(); err == nil {
		ps, _, err := h.cfg.Projects.ListProjects(r.Context(), r.org.Key, sot.ProjectFilter{Match: m.Match}, sot.Page{Size: 1})
		if err == nil && len(ps) > 0 {
			return ps[0].Key
		}
	}
	return "my-project"
}

type detailData struct {
	Token       tokenRow
	CanRotate   bool
	Revoked     bool
	Name        string
	Description string
	Permissions []permissionOption
	CIDRs       string
	Fields      map[string]string
	Scope       scopeForm
	// Mixed is set for a token with both patterns and explicit projects
	// (made through the API): the chooser offers one mode at a time.
	Mixed       bool
	Covered     []*sot.Project
	CoveredN    int
	CoveredNext string
	Events      []auditRow
	// CanSchedule shows the rotation schedule form; RotationEvery ("30d",
	// "" for none) and RotationGrace are its values.
	CanSchedule   bool
	RotationEvery string
	RotationGrace string
	Grace         []struct{ Value, Label string }
}

func (h *Handler) tokenDetail(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	d := h.detailData(t)
	return h.renderDetail(w, r, http.StatusOK, t, d, "")
}

func (h *Handler) detailData(t *sot.Token) *detailData {
	d := &detailData{
		Name:        t.Name,
		Description: t.Description,
		Permissions: permissionOptions(t.Permissions),
		Scope:       scopeForm{Org: t.Org, Mode: "all", Keep: true, KeepCount: len(t.Scope.Projects)},
	}
	cidrs := make([]string, len(t.AllowedCIDRs))
	for i, c := range t.AllowedCIDRs {
		cidrs[i] = c.String()
	}
	d.CIDRs = strings.Join(cidrs, "\n")
	d.Mixed = len(t.Scope.Patterns) > 0 && len(t.Scope.Projects) > 0
	if t.Rotation != nil {
		d.RotationEvery = t.Rotation.EveryString()
		if g := t.Rotation.GracePeriod; g > 0 {
			d.RotationGrace = formatTTL(g)
		}
	}
	switch {
	case len(t.Scope.Patterns) > 0:
		d.Scope.Mode = "patterns"
		d.Scope.Patterns = strings.Join(t.Scope.Patterns, "\n")
	case len(t.Scope.Projects) > 0:
		d.Scope.Mode = "projects"
	}
	return d
}

func (h *Handler) renderDetail(w http.ResponseWriter, r *request, status int, t *sot.Token, d *detailData, msg string) error {
	now := h.now()
	d.Token = h.tokenRow(t, now)
	d.Revoked = t.RevokedAt != nil
	d.CanRotate = h.cfg.Lifecycle != nil && t.State(now) == sot.TokenStateActive
	d.CanSchedule = h.cfg.Lifecycle != nil && h.cfg.Webhooks != nil && !d.Revoked
	d.Grace = graceChoices
	d.Scope.KeepCount = len(t.Scope.Projects)
	ctx := r.Context()
	if err := h.searchProjects(r, &d.Scope); err != nil {
		return err
	}
	if m, err := t.Scope.Compile(); err == nil {
		filter := sot.ProjectFilter{Match: m.Match}
		if d.Covered, d.CoveredNext, err = h.cfg.Projects.ListProjects(ctx, r.org.Key, filter,
			sot.Page{Size: 25, Token: r.URL.Query().Get("page_token")}); err != nil {
			return err
		}
		if d.CoveredN, err = h.cfg.Projects.CountProjects(ctx, r.org.Key, filter); err != nil {
			return err
		}
	}
	events, _, err := h.cfg.Audit.ListEvents(ctx, r.org.Key, sot.AuditFilter{Target: "token:" + strconv.FormatInt(t.ID, 10)}, sot.Page{Size: 20})
	if err != nil {
		return err
	}
	d.Events = auditRows(events)
	h.render(w, r, status, "token", &view{Title: t.Name, Nav: "tokens", Error: msg, Data: d})
	return nil
}

// errRevokedFrozen refuses to edit a revoked token: it is kept as a record
// of what it was allowed to do.
var errRevokedFrozen = sot.Invalid("a revoked token cannot be changed")

// updateToken saves the details form: name, description, permissions and
// allowed networks. The scope has its own form, so saving a name never
// rewrites a scope of thousands of projects.
func (h *Handler) updateToken(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	if t.RevokedAt != nil {
		return errRevokedFrozen
	}
	d := h.detailData(t)
	d.Name = strings.TrimSpace(r.PostFormValue("name"))
	d.Description = strings.TrimSpace(r.PostFormValue("description"))
	d.CIDRs = r.PostFormValue("allowed_cidrs")
	perms, permErr := parsePermissions(r)
	d.Permissions = permissionOptions(perms)
	cidrs, cidrErr := parseCIDRs(d.CIDRs)
	if cidrs == nil {
		cidrs = []netip.Prefix{}
	}
	nameErr := sot.ValidateTokenName("name", d.Name)
	var descErr error
	if len(d.Description) > sot.MaxTokenDescriptionLen {
		descErr = sot.Invalid("description too long", sot.FieldError{Field: "description", Message: fmt.Sprintf("at most %d characters", sot.MaxTokenDescriptionLen)})
	}
	err = firstErr(nameErr, descErr, permErr, cidrErr)
	if err == nil {
		_, err = h.cfg.Tokens.UpdateToken(r.ctx(), sot.TokenOwner{Org: r.org.Key}, t.ID, sot.TokenUpdate{
			Name: &d.Name, Description: &d.Description, Permissions: &perms, AllowedCIDRs: &cidrs,
		})
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		for _, e := range []error{nameErr, descErr, permErr, cidrErr, err} {
			if e != nil {
				d.Fields = mergeFields(d.Fields, e)
			}
		}
		return h.renderDetail(w, r, statusOf(err), t, d, sot.ErrorMessage(err))
	}
	redirect(w, r, tokenPath(r.org.Key, t.ID), "token-updated")
	return nil
}

// updateTokenScope saves the scope form. It takes effect at once: the
// service publishes the change to every replica's cache.
func (h *Handler) updateTokenScope(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	if t.RevokedAt != nil {
		return errRevokedFrozen
	}
	d := h.detailData(t)
	d.Scope = parseScopeForm(r)
	scope, err := h.resolveScope(r, &d.Scope, t.Scope.Projects)
	if err == nil {
		_, err = h.cfg.Tokens.UpdateToken(r.ctx(), sot.TokenOwner{Org: r.org.Key}, t.ID, sot.TokenUpdate{Scope: &scope})
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		d.Scope.Fields = fieldMap(err)
		return h.renderDetail(w, r, statusOf(err), t, d, sot.ErrorMessage(err))
	}
	redirect(w, r, tokenPath(r.org.Key, t.ID), "token-updated")
	return nil
}

func (h *Handler) confirmRevoke(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	path := tokenPath(r.org.Key, t.ID)
	h.render(w, r, http.StatusOK, "confirm", &view{Title: "Revoke token", Nav: "tokens", Data: confirmData{
		Question: "Revoke token " + t.Name + "?",
		Detail:   "Every pipeline using it (" + t.Hint + ") fails from now on. The token stays listed as revoked. This cannot be undone.",
		Action:   path + "/revoke",
		Button:   "Revoke token",
		Cancel:   path,
	}})
	return nil
}

// graceChoices are the rotation grace periods offered: how long the old
// secret keeps working while pipelines switch to the new one.
var graceChoices = []struct{ Value, Label string }{
	{"", "None: the old secret stops at once"}, {"1h", "1 hour"}, {"24h", "24 hours"}, {"168h", "7 days"},
}

type rotateData struct {
	Token  tokenRow
	Grace  []struct{ Value, Label string }
	Action string
	Cancel string
}

func (h *Handler) confirmRotate(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	path := tokenPath(r.org.Key, t.ID)
	h.render(w, r, http.StatusOK, "rotate", &view{Title: "Rotate token", Nav: "tokens", Data: rotateData{
		Token: h.tokenRow(t, h.now()), Grace: graceChoices, Action: path + "/rotate", Cancel: path,
	}})
	return nil
}

// rotateToken gives the token a new secret, shown once like a new token's.
func (h *Handler) rotateToken(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	grace, err := sot.ParseGracePeriod(r.PostFormValue("grace"))
	if err != nil {
		return sot.Invalid(err.Error(), sot.FieldError{Field: "grace_period", Message: err.Error()})
	}
	secret := sot.NewSecret(sot.TokenKindOrg)
	if _, err := h.cfg.Lifecycle.RotateToken(r.ctx(), sot.TokenOwner{Org: r.org.Key}, t.ID, sot.RotateRequest{
		Now: h.now(), Grace: grace, Hash: sot.HashSecret(secret), Hint: sot.SecretHint(secret),
	}); err != nil {
		return err
	}
	return h.showSecretOnce(w, r, t.ID, secret, true)
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	if _, err := h.cfg.Tokens.RevokeToken(r.ctx(), sot.TokenOwner{Org: r.org.Key}, t.ID, h.now()); err != nil {
		return err
	}
	redirect(w, r, tokenPath(r.org.Key, t.ID), "token-revoked")
	return nil
}

// previewResponse is the JSON of the scope preview.
type previewResponse struct {
	Count  int           `json:"count"`
	Items  []previewItem `json:"items"`
	Errors []lineError   `json:"errors"`
}

type previewItem struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// MarshalJSON gives lineError lower-case keys for the script.
func (e lineError) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Line    int    `json:"line"`
		Message string `json:"message"`
	}{e.Line, e.Message})
}

// scopePreview answers the create form's live preview: with patterns, how
// many projects they match now and the first few; with q, the project
// search of the "selected projects" mode.
func (h *Handler) scopePreview(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	resp := previewResponse{Items: []previewItem{}, Errors: []lineError{}}
	var filter sot.ProjectFilter
	limit := 10
	if q.Has("patterns") {
		patterns, lines := patternLines(q.Get("patterns"))
		if len(patterns) == 0 {
			return writeJSON(w, resp)
		}
		scope := sot.Scope{Patterns: patterns}
		m, err := scope.Compile()
		if err != nil {
			resp.Errors = patternErrors(err, lines)
			if len(resp.Errors) == 0 {
				resp.Errors = append(resp.Errors, lineError{Line: 1, Message: sot.ErrorMessage(err)})
			}
			return writeJSON(w, resp)
		}
		filter.Match = m.Match
	} else {
		filter.Query = strings.TrimSpace(q.Get("q"))
		limit = 50
	}
	ps, _, err := h.cfg.Projects.ListProjects(r.Context(), r.org.Key, filter, sot.Page{Size: limit})
	if err != nil {
		return err
	}
	if resp.Count, err = h.cfg.Projects.CountProjects(r.Context(), r.org.Key, filter); err != nil {
		return err
	}
	for _, p := range ps {
		resp.Items = append(resp.Items, previewItem{Key: p.Key, Name: p.Name})
	}
	return writeJSON(w, resp)
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	return nil
}
