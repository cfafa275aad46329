package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sot-dev/sot"
)

// attentionWindow is how far ahead the overview warns about expiring
// tokens, and, unless the policy sets IdleWarningDays, how long unused a
// token must be to count as idle.
const attentionWindow = 30 * sot.Day

// overviewScanLimit bounds how many tokens the overview reads to compute
// its counts; an organization beyond it sees "10,000+".
const overviewScanLimit = 10_000

type overviewData struct {
	IdleDays     int
	Projects     int
	Members      int
	Tokens       int
	TokensCapped bool
	Expiring     []tokenRow
	Idle         []tokenRow
}

func (h *Handler) overview(w http.ResponseWriter, r *request) error {
	ctx := r.Context()
	var d overviewData
	var err error
	if d.Projects, err = h.cfg.Projects.CountProjects(ctx, r.org.Key, sot.ProjectFilter{}); err != nil {
		return err
	}
	if r.orgAdmin {
		for page := (sot.Page{Size: sot.MaxPageSize}); ; {
			ms, next, err := h.cfg.Orgs.ListMembers(ctx, r.org.Key, page)
			if err != nil {
				return err
			}
			d.Members += len(ms)
			if next == "" {
				break
			}
			page.Token = next
		}
		now := h.now()
		idle := attentionWindow
		if days := r.org.TokenPolicy.IdleWarningDays; days > 0 {
			idle = time.Duration(days) * sot.Day
		}
		d.IdleDays = int(idle / sot.Day)
		for page := (sot.Page{Size: sot.MaxPageSize}); ; {
			ts, next, err := h.cfg.Tokens.ListTokens(ctx, sot.TokenOwner{Org: r.org.Key}, sot.TokenFilter{State: sot.TokenStateActive, Now: now}, page)
			if err != nil {
				return err
			}
			d.Tokens += len(ts)
			for _, t := range ts {
				if t.ExpiresAt != nil && t.ExpiresAt.Sub(now) <= attentionWindow {
					d.Expiring = append(d.Expiring, h.tokenRow(t, now))
				}
				if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= idle {
					d.Idle = append(d.Idle, h.tokenRow(t, now))
				}
			}
			if next == "" {
				break
			}
			if d.Tokens >= overviewScanLimit {
				d.TokensCapped = true
				break
			}
			page.Token = next
		}
		slices.SortFunc(d.Expiring, func(a, b tokenRow) int { return a.ExpiresAt.Compare(*b.ExpiresAt) })
	}
	h.render(w, r, http.StatusOK, "overview", &view{Title: r.org.Name, Nav: "overview", Data: d})
	return nil
}

type settingsData struct {
	MaxLifetimeDays  string
	AllowNonExpiring bool
	IdleWarningDays  string
	Fields           map[string]string
}

func (h *Handler) settings(w http.ResponseWriter, r *request) error {
	p := r.org.TokenPolicy
	h.render(w, r, http.StatusOK, "settings", &view{Title: "Settings", Nav: "settings", Data: settingsData{
		MaxLifetimeDays: strconv.Itoa(p.MaxLifetimeDays), AllowNonExpiring: p.AllowNonExpiring,
		IdleWarningDays: strconv.Itoa(p.IdleWarningDays),
	}})
	return nil
}

func (h *Handler) saveSettings(w http.ResponseWriter, r *request) error {
	d := settingsData{
		MaxLifetimeDays:  strings.TrimSpace(r.PostFormValue("max_lifetime_days")),
		AllowNonExpiring: r.PostFormValue("allow_non_expiring") == "on",
	}
	d.IdleWarningDays = strings.TrimSpace(r.PostFormValue("idle_warning_days"))
	// A number that does not parse becomes -1, which Validate reports
	// with the allowed range.
	number := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			return -1
		}
		return n
	}
	policy := r.org.TokenPolicy
	policy.MaxLifetimeDays = number(d.MaxLifetimeDays)
	policy.AllowNonExpiring = d.AllowNonExpiring
	policy.IdleWarningDays = 0
	if d.IdleWarningDays != "" {
		policy.IdleWarningDays = number(d.IdleWarningDays)
	}
	err := policy.Validate()
	if err == nil {
		_, err = h.cfg.Orgs.UpdateOrg(r.ctx(), r.org.Key, sot.OrgUpdate{TokenPolicy: &policy})
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		d.Fields = fieldMap(err)
		h.render(w, r, statusOf(err), "settings", &view{Title: "Settings", Nav: "settings", Error: sot.ErrorMessage(err), Data: d})
		return nil
	}
	redirect(w, r, "/orgs/"+r.org.Key+"/settings", "settings-saved")
	return nil
}

// auditActions are the actions offered by the audit page's filter.
var auditActions = []string{
	sot.ActionTokenCreated, sot.ActionTokenUpdated, sot.ActionTokenRevoked, sot.ActionTokenRotated,
	sot.ActionTokenExpiredUse, sot.ActionTokenLeaked, sot.ActionProjectCreated, sot.ActionProjectDeleted,
	sot.ActionMemberAdded, sot.ActionMemberRemoved, sot.ActionMemberRoleChanged,
	sot.ActionOrgCreated, sot.ActionOrgUpdated, sot.ActionAnalysisSubmitted, sot.ActionAuthFailed,
}

type auditData struct {
	Action  string
	Actions []string
	Events  []auditRow
	Next    string
}

type auditRow struct {
	*sot.AuditEvent
	Details string
}

func (h *Handler) audit(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	d := auditData{Action: q.Get("action"), Actions: auditActions}
	if d.Action != "" && !slices.Contains(auditActions, d.Action) {
		return sot.Invalid("unknown audit action")
	}
	events, next, err := h.cfg.Audit.ListEvents(r.Context(), r.org.Key, sot.AuditFilter{Action: d.Action},
		sot.Page{Size: 50, Token: q.Get("page_token")})
	if err != nil {
		return err
	}
	d.Events, d.Next = auditRows(events), next
	h.render(w, r, http.StatusOK, "audit", &view{Title: "Audit log", Nav: "audit", Data: d})
	return nil
}

func auditRows(events []*sot.AuditEvent) []auditRow {
	rows := make([]auditRow, len(events))
	for i, ev := range events {
		keys := make([]string, 0, len(ev.Details))
		for k := range ev.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k + ": " + detailString(ev.Details[k]))
		}
		rows[i] = auditRow{AuditEvent: ev, Details: b.String()}
	}
	return rows
}

// detailString shortens a detail value for a table cell.
func detailString(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = detailString(e)
		}
		s = "[" + strings.Join(parts, " ") + "]"
	case []string:
		s = "[" + strings.Join(x, " ") + "]"
	case time.Time:
		s = formatDate(x)
	default:
		s = strings.TrimSpace(strings.ReplaceAll(fmt.Sprint(x), "\n", " "))
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// fieldMap turns the field errors of err into field → message, for
// messages next to form fields.
func fieldMap(err error) map[string]string {
	fs := sot.ErrorFields(err)
	if len(fs) == 0 {
		return nil
	}
	m := make(map[string]string, len(fs))
	for _, f := range fs {
		if _, dup := m[f.Field]; !dup {
			m[f.Field] = f.Message
		}
	}
	return m
}
