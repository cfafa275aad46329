package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sot-dev/sot"
)

type pageTemplate = template.Template

// parsePages parses every page template with the shared layout.
func parsePages() (map[string]*pageTemplate, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	pages := make(map[string]*pageTemplate)
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "partial_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partial_*.html", name)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// view is what every page gets: the layout's data and the page's own.
type view struct {
	Title    string
	Nav      string // the active navigation entry
	User     *sot.User
	Org      *sot.Org
	OrgAdmin bool
	// HasTrust and HasWebhooks show the navigation entries of optional pages.
	HasTrust    bool
	HasWebhooks bool
	Orgs        []string // the organization switcher
	CSRF        string
	Notice      string
	Error       string
	Version     string
	Now         time.Time // for relative times ("3 days ago")
	Data        any
}

// render writes the page name with status. It renders into a buffer
// first so that a template failure is a clean 500, not half a page.
func (h *Handler) render(w http.ResponseWriter, r *request, status int, name string, v *view) {
	v.Version = h.cfg.Version
	v.Now = h.now()
	v.HasTrust, v.HasWebhooks = h.cfg.TrustPolicies != nil, h.cfg.Webhooks != nil
	if r != nil {
		v.User, v.Org, v.OrgAdmin, v.CSRF = r.user, r.org, r.orgAdmin, r.csrf
		v.Orgs = h.switcherOrgs(r)
		if v.Notice == "" {
			v.Notice = notices[r.URL.Query().Get("done")]
		}
	}
	var buf bytes.Buffer
	t, ok := h.pages[name]
	if !ok {
		h.log.Error("web: no page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.Execute(&buf, v); err != nil {
		h.log.Error("web: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderStatus renders a page that says msg, for errors and refusals.
func (h *Handler) renderStatus(w http.ResponseWriter, r *request, status int, msg string) {
	h.render(w, r, status, "status", &view{Title: http.StatusText(status), Data: struct {
		Status  int
		Message string
	}{status, msg}})
}

// switcherOrgs lists the organizations the user can switch to.
func (h *Handler) switcherOrgs(r *request) []string {
	var keys []string
	if r.principal.IsInstanceAdmin() {
		orgs, _, err := h.cfg.Orgs.ListOrgs(r.Context(), sot.OrgFilter{}, sot.Page{Size: 200})
		if err != nil {
			h.log.ErrorContext(r.Context(), "web: list organizations", "err", err)
		}
		for _, o := range orgs {
			keys = append(keys, o.Key)
		}
	} else {
		for k := range r.principal.Memberships {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// notices are the one-line confirmations shown after a redirect
// (?done=<code>): fixed texts, so a link cannot put words on the page.
var notices = map[string]string{
	"project-created": "Project created.",
	"project-deleted": "Project deleted.",
	"member-saved":    "Member saved.",
	"member-removed":  "Member removed.",
	"token-updated":   "Token updated.",
	"token-revoked":   "Token revoked. It stopped working at once.",
	"settings-saved":  "Settings saved.",
	"rotation-saved":  "Rotation schedule saved.",
	"policy-created":  "Trust policy created.",
	"policy-updated":  "Trust policy saved. Tokens it minted before keep what they have until they expire.",
	"webhook-created": "Webhook created.",
	"webhook-updated": "Webhook saved.",
	"webhook-deleted": "Webhook deleted, with its deliveries.",
}

func redirect(w http.ResponseWriter, r *request, path, done string) {
	if done != "" {
		path += "?done=" + done
	}
	http.Redirect(w, r.Request, path, http.StatusSeeOther)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

var funcs = template.FuncMap{
	"date":     formatDate,
	"ago":      ago,
	"join":     strings.Join,
	"contains": slices.Contains[[]string],
	"prefixed": prefixed,
	"span":     span,
	"days":     func(d time.Duration) string { return plural(int(d/sot.Day), "day") },
	"thousand": groupThousands,
	"pathesc":  url.PathEscape,
	"queryesc": url.QueryEscape,
}

func formatDate(t any) string {
	switch v := t.(type) {
	case time.Time:
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	}
	return ""
}

// ago says how long ago t was, relative to now, in one rounded unit.
func ago(t time.Time, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + span(-d)
	}
	if d < time.Minute {
		return "just now"
	}
	return span(d) + " ago"
}

// span is a duration in one unit, rounded to the nearest ("5 days",
// "3 hours"): a token made for 90 days reads "expires in 90 days", not 89.
func span(d time.Duration) string {
	unit := func(u time.Duration, w string) string {
		n := int((d + u/2) / u)
		if n == 1 {
			return "1 " + w
		}
		return strconv.Itoa(n) + " " + w + "s"
	}
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour-30*time.Second:
		return unit(time.Minute, "minute")
	case d < 2*sot.Day-30*time.Minute:
		return unit(time.Hour, "hour")
	case d < 365*sot.Day-12*time.Hour:
		return unit(sot.Day, "day")
	}
	return unit(365*sot.Day, "year")
}

func groupThousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

// plural returns "1 minute", "3 minutes".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return groupThousands(n) + " " + word + "s"
}

// prefixed returns the messages of the fields under prefix ("allowed_cidrs"
// gives those of "allowed_cidrs[3]"), sorted by field.
func prefixed(fields map[string]string, prefix string) []string {
	var keys []string
	for k := range fields {
		if k == prefix || strings.HasPrefix(k, prefix+"[") || strings.HasPrefix(k, prefix+".") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimPrefix(k, prefix) + " " + fields[k]
	}
	return out
}
