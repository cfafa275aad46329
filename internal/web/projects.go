package web

import (
	"net/http"
	"strings"

	"github.com/sot-dev/sot"
)

type projectsData struct {
	Query    string
	Projects []*sot.Project
	Count    int
	Next     string
	First    bool // on the first page
	// The create form, kept on error.
	NewKey  string
	NewName string
	Fields  map[string]string
}

func (h *Handler) projects(w http.ResponseWriter, r *request) error {
	return h.renderProjects(w, r, http.StatusOK, projectsData{}, "")
}

func (h *Handler) renderProjects(w http.ResponseWriter, r *request, status int, d projectsData, msg string) error {
	q := r.URL.Query()
	d.Query = strings.TrimSpace(q.Get("q"))
	token := q.Get("page_token")
	d.First = token == ""
	filter := sot.ProjectFilter{Query: d.Query}
	var err error
	if d.Projects, d.Next, err = h.cfg.Projects.ListProjects(r.Context(), r.org.Key, filter, sot.Page{Size: 50, Token: token}); err != nil {
		return err
	}
	if d.Count, err = h.cfg.Projects.CountProjects(r.Context(), r.org.Key, filter); err != nil {
		return err
	}
	h.render(w, r, status, "projects", &view{Title: "Projects", Nav: "projects", Error: msg, Data: d})
	return nil
}

func (h *Handler) createProject(w http.ResponseWriter, r *request) error {
	p := &sot.Project{
		Org:  r.org.Key,
		Key:  strings.TrimSpace(r.PostFormValue("key")),
		Name: strings.TrimSpace(r.PostFormValue("name")),
	}
	if p.Name == "" {
		p.Name = p.Key
	}
	var err error
	if !sot.ValidKey(p.Key) {
		err = sot.Invalid("invalid project key", sot.FieldError{Field: "key",
			Message: "1 to 400 characters: letters, digits and _ . : - (starting with a letter or digit)"})
	} else if len(p.Name) > 400 {
		err = sot.Invalid("name too long", sot.FieldError{Field: "name", Message: "at most 400 characters"})
	} else {
		err = h.cfg.Projects.CreateProject(r.ctx(), p)
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		d := projectsData{NewKey: p.Key, NewName: r.PostFormValue("name"), Fields: fieldMap(err)}
		return h.renderProjects(w, r, statusOf(err), d, sot.ErrorMessage(err))
	}
	redirect(w, r, "/orgs/"+r.org.Key+"/projects", "project-created")
	return nil
}

type confirmData struct {
	Question string
	Detail   string
	Action   string // the form's URL
	Button   string
	Cancel   string // where "Cancel" goes
}

func (h *Handler) confirmDeleteProject(w http.ResponseWriter, r *request) error {
	p, err := h.cfg.Projects.FindProject(r.Context(), r.org.Key, r.PathValue("project"))
	if err != nil {
		return err
	}
	base := "/orgs/" + r.org.Key + "/projects"
	h.render(w, r, http.StatusOK, "confirm", &view{Title: "Delete project", Nav: "projects", Data: confirmData{
		Question: "Delete project " + p.Key + "?",
		Detail:   "Its analyses are deleted with it, and tokens that list it explicitly no longer cover it. This cannot be undone.",
		Action:   base + "/" + p.Key + "/delete",
		Button:   "Delete project",
		Cancel:   base,
	}})
	return nil
}

func (h *Handler) deleteProject(w http.ResponseWriter, r *request) error {
	if err := h.cfg.Projects.DeleteProject(r.ctx(), r.org.Key, r.PathValue("project")); err != nil {
		return err
	}
	redirect(w, r, "/orgs/"+r.org.Key+"/projects", "project-deleted")
	return nil
}

type membersData struct {
	Members  []*sot.Membership
	Next     string
	First    bool
	NewLogin string
	NewRole  string
	Fields   map[string]string
}

func (h *Handler) members(w http.ResponseWriter, r *request) error {
	return h.renderMembers(w, r, http.StatusOK, membersData{NewRole: string(sot.RoleMember)}, "")
}

func (h *Handler) renderMembers(w http.ResponseWriter, r *request, status int, d membersData, msg string) error {
	token := r.URL.Query().Get("page_token")
	d.First = token == ""
	var err error
	if d.Members, d.Next, err = h.cfg.Orgs.ListMembers(r.Context(), r.org.Key, sot.Page{Size: 100, Token: token}); err != nil {
		return err
	}
	h.render(w, r, status, "members", &view{Title: "Members", Nav: "members", Error: msg, Data: d})
	return nil
}

// setMember adds a member or changes a member's role: both are "this login
// has this role here".
func (h *Handler) setMember(w http.ResponseWriter, r *request) error {
	login := strings.TrimSpace(r.PostFormValue("login"))
	role := sot.Role(r.PostFormValue("role"))
	var err error
	switch {
	case login == "":
		err = sot.Invalid("enter a login", sot.FieldError{Field: "login", Message: "enter a login"})
	case !role.Valid():
		err = sot.Invalid("choose a role", sot.FieldError{Field: "role", Message: "must be admin or member"})
	default:
		_, _, err = h.cfg.Orgs.SetMember(r.ctx(), r.org.Key, login, role)
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		d := membersData{NewLogin: login, NewRole: string(role), Fields: fieldMap(err)}
		return h.renderMembers(w, r, statusOf(err), d, sot.ErrorMessage(err))
	}
	redirect(w, r, "/orgs/"+r.org.Key+"/members", "member-saved")
	return nil
}

func (h *Handler) removeMember(w http.ResponseWriter, r *request) error {
	if err := h.cfg.Orgs.RemoveMember(r.ctx(), r.org.Key, r.PathValue("login")); err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		return h.renderMembers(w, r, statusOf(err), membersData{NewRole: string(sot.RoleMember)}, sot.ErrorMessage(err))
	}
	redirect(w, r, "/orgs/"+r.org.Key+"/members", "member-removed")
	return nil
}
