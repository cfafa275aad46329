package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sot-dev/sot"
)

// eventHelp explains each webhook event in one line.
var eventHelp = map[string]string{
	sot.EventTokenCreated:  "A token was created.",
	sot.EventTokenRevoked:  "A token was revoked.",
	sot.EventTokenRotated:  "A token was rotated; a scheduled rotation's delivery carries the new secret.",
	sot.EventTokenExpiring: "A token expires in 30, 7 or 1 days.",
	sot.EventTokenExpired:  "A token expired.",
	sot.EventTokenIdle:     "A token has not been used for the organization's idle period.",
	sot.EventTokenLeaked:   "A token's secret was reported leaked, and revoked.",
}

type eventOption struct {
	Name, Help string
	Checked    bool
}

func eventOptions(chosen []string) []eventOption {
	opts := make([]eventOption, len(sot.WebhookEvents))
	for i, e := range sot.WebhookEvents {
		opts[i] = eventOption{Name: e, Help: eventHelp[e], Checked: slices.Contains(chosen, e)}
	}
	return opts
}

type webhooksData struct {
	Webhooks []*sot.Webhook
	Next     string
	First    bool
}

func (h *Handler) webhooks(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	ws, next, err := h.cfg.Webhooks.ListWebhooks(r.Context(), r.org.Key, sot.Page{Size: 50, Token: q.Get("page_token")})
	if err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "webhooks", &view{Title: "Webhooks", Nav: "webhooks",
		Data: webhooksData{Webhooks: ws, Next: next, First: q.Get("page_token") == ""}})
	return nil
}

// webhookForm is the create and edit form of a webhook, and on the edit
// page its deliveries.
type webhookForm struct {
	ID         int64 // 0 on the create page
	URL        string
	Events     []eventOption
	Fields     map[string]string
	Deliveries []deliveryRow
	Next       string
}

type deliveryRow struct {
	*sot.Delivery
	Last *sot.DeliveryAttempt // the latest attempt, nil before the first
}

func (h *Handler) newWebhook(w http.ResponseWriter, r *request) error {
	f := &webhookForm{Events: eventOptions(sot.WebhookEvents)}
	h.render(w, r, http.StatusOK, "webhook", &view{Title: "New webhook", Nav: "webhooks", Data: f})
	return nil
}

// readWebhookForm reads the URL and events.
func readWebhookForm(r *request, f *webhookForm) (string, []string) {
	f.URL = strings.TrimSpace(r.PostFormValue("url"))
	events := r.PostForm["event"]
	f.Events = eventOptions(events)
	return f.URL, events
}

// createWebhook stores a webhook. A secret the admin gave is not shown
// again; one generated here is shown once, like a token's.
func (h *Handler) createWebhook(w http.ResponseWriter, r *request) error {
	f := &webhookForm{}
	u, events := readWebhookForm(r, f)
	secret := strings.TrimSpace(r.PostFormValue("secret"))
	generated := secret == ""
	if generated {
		secret = sot.NewWebhookSecret()
	}
	wh := &sot.Webhook{Org: r.org.Key, URL: u, Events: events, Secret: secret, CreatedAt: h.now(),
		CreatedBy: sot.UserRef{ID: r.user.ID, Login: r.user.Login}}
	err := sot.ValidateWebhook(wh)
	if err == nil {
		err = h.cfg.Webhooks.CreateWebhook(r.ctx(), wh)
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		f.Fields = fieldMap(err)
		h.render(w, r, statusOf(err), "webhook", &view{Title: "New webhook", Nav: "webhooks", Error: sot.ErrorMessage(err), Data: f})
		return nil
	}
	if !generated {
		redirect(w, r, webhookPath(r.org.Key, wh.ID), "webhook-created")
		return nil
	}
	return h.showWebhookSecretOnce(w, r, wh.ID, secret)
}

// showWebhookSecretOnce hands the secret to the page that shows it once,
// the way showSecretOnce does for tokens.
func (h *Handler) showWebhookSecretOnce(w http.ResponseWriter, r *request, id int64, secret string) error {
	path := webhookPath(r.org.Key, id) + "/created"
	sealed, err := h.keys.sealFlash(flash{UserID: r.user.ID, TokenID: id, Secret: secret, Expires: h.now().Add(flashTTL).Unix()}, path)
	if err != nil {
		return err
	}
	h.setCookie(w, secretCookie, sealed, path, flashTTL)
	http.Redirect(w, r.Request, path, http.StatusSeeOther)
	return nil
}

func webhookPath(org string, id int64) string {
	return "/orgs/" + org + "/webhooks/" + strconv.FormatInt(id, 10)
}

func (h *Handler) findWebhook(r *request) (*sot.Webhook, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, sot.Errorf(sot.ENOTFOUND, "webhook not found")
	}
	return h.cfg.Webhooks.FindWebhook(r.Context(), r.org.Key, id)
}

type webhookCreatedData struct {
	Webhook *sot.Webhook
	Secret  string // "" once shown
}

func (h *Handler) webhookCreated(w http.ResponseWriter, r *request) error {
	wh, err := h.findWebhook(r)
	if err != nil {
		return err
	}
	path := webhookPath(r.org.Key, wh.ID) + "/created"
	d := webhookCreatedData{Webhook: wh}
	if c, err := r.Cookie(secretCookie); err == nil {
		h.clearCookie(w, secretCookie, path)
		if f, err := h.keys.openFlash(c.Value, path, r.user.ID, wh.ID, h.now()); err == nil {
			d.Secret = f.Secret
		}
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.render(w, r, http.StatusOK, "webhook_created", &view{Title: "Webhook created", Nav: "webhooks", Data: d})
	return nil
}

// webhook shows a webhook's form and its deliveries, newest first.
func (h *Handler) webhook(w http.ResponseWriter, r *request) error {
	wh, err := h.findWebhook(r)
	if err != nil {
		return err
	}
	f := &webhookForm{ID: wh.ID, URL: wh.URL, Events: eventOptions(wh.Events)}
	return h.renderWebhook(w, r, http.StatusOK, wh, f, "")
}

func (h *Handler) renderWebhook(w http.ResponseWriter, r *request, status int, wh *sot.Webhook, f *webhookForm, msg string) error {
	ds, next, err := h.cfg.Webhooks.ListDeliveries(r.Context(), r.org.Key, wh.ID, sot.Page{Size: 25, Token: r.URL.Query().Get("page_token")})
	if err != nil {
		return err
	}
	f.Next = next
	for _, d := range ds {
		row := deliveryRow{Delivery: d}
		if n := len(d.Attempts); n > 0 {
			row.Last = &d.Attempts[n-1]
		}
		f.Deliveries = append(f.Deliveries, row)
	}
	h.render(w, r, status, "webhook", &view{Title: "Webhook", Nav: "webhooks", Error: msg, Data: f})
	return nil
}

// updateWebhook saves the URL and events, and replaces the secret with a
// new one, shown once, when asked to.
func (h *Handler) updateWebhook(w http.ResponseWriter, r *request) error {
	cur, err := h.findWebhook(r)
	if err != nil {
		return err
	}
	f := &webhookForm{ID: cur.ID}
	u, events := readWebhookForm(r, f)
	newSecret := r.PostFormValue("new_secret") == "1"
	// The result is validated whole, with a placeholder for a kept secret
	// (the stored one is never read back).
	check := *cur
	check.URL, check.Events, check.Secret = u, events, "kept-secret-placeholder"
	upd := sot.WebhookUpdate{URL: &check.URL, Events: &check.Events, At: h.now()}
	var secret string
	if newSecret {
		secret = sot.NewWebhookSecret()
		check.Secret = secret
		upd.Secret = &secret
	}
	err = sot.ValidateWebhook(&check)
	if err == nil {
		_, err = h.cfg.Webhooks.UpdateWebhook(r.ctx(), r.org.Key, cur.ID, upd)
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		f.Fields = fieldMap(err)
		return h.renderWebhook(w, r, statusOf(err), cur, f, sot.ErrorMessage(err))
	}
	if newSecret {
		return h.showWebhookSecretOnce(w, r, cur.ID, secret)
	}
	redirect(w, r, webhookPath(r.org.Key, cur.ID), "webhook-updated")
	return nil
}

func (h *Handler) confirmDeleteWebhook(w http.ResponseWriter, r *request) error {
	wh, err := h.findWebhook(r)
	if err != nil {
		return err
	}
	path := webhookPath(r.org.Key, wh.ID)
	detail := "Its pending deliveries are dropped and its delivery log is deleted."
	if slices.Contains(wh.Events, sot.EventTokenRotated) {
		detail += " Tokens with a rotation schedule rotate with nowhere to send their new secret unless another webhook receives token.rotated."
	}
	h.render(w, r, http.StatusOK, "confirm", &view{Title: "Delete webhook", Nav: "webhooks", Data: confirmData{
		Question: "Delete the webhook to " + wh.URL + "?",
		Detail:   detail + " This cannot be undone.",
		Action:   path + "/delete",
		Button:   "Delete webhook",
		Cancel:   path,
	}})
	return nil
}

func (h *Handler) deleteWebhook(w http.ResponseWriter, r *request) error {
	wh, err := h.findWebhook(r)
	if err != nil {
		return err
	}
	if err := h.cfg.Webhooks.DeleteWebhook(r.ctx(), r.org.Key, wh.ID); err != nil {
		return err
	}
	redirect(w, r, "/orgs/"+r.org.Key+"/webhooks", "webhook-deleted")
	return nil
}

// setRotation sets or removes a token's rotation schedule. A schedule
// sends each new secret only in a token.rotated webhook delivery, so it
// needs such a webhook, as in the API.
func (h *Handler) setRotation(w http.ResponseWriter, r *request) error {
	t, err := h.findToken(r)
	if err != nil {
		return err
	}
	if t.RevokedAt != nil {
		return errRevokedFrozen
	}
	var rot *sot.TokenRotation
	if every := strings.TrimSpace(r.PostFormValue("every")); every != "" {
		rot, err = sot.ParseRotation("rotation", every, r.PostFormValue("grace"), r.org.TokenPolicy)
		if err == nil {
			var ok bool
			if ok, err = sot.OrgReceives(r.Context(), h.cfg.Webhooks, r.org.Key, sot.EventTokenRotated); err == nil && !ok {
				msg := "a rotation schedule sends each new secret only in a token.rotated webhook delivery: create a webhook for token.rotated first"
				err = sot.Invalid(msg, sot.FieldError{Field: "rotation", Message: msg})
			}
		}
	}
	if err == nil {
		_, err = h.cfg.Lifecycle.SetTokenRotation(r.ctx(), sot.TokenOwner{Org: r.org.Key}, t.ID, rot, h.now())
	}
	if err != nil {
		if statusOf(err) >= 500 {
			return err
		}
		d := h.detailData(t)
		d.Fields = fieldMap(err)
		d.RotationEvery = r.PostFormValue("every")
		d.RotationGrace = r.PostFormValue("grace")
		return h.renderDetail(w, r, statusOf(err), t, d, sot.ErrorMessage(err))
	}
	redirect(w, r, tokenPath(r.org.Key, t.ID), "rotation-saved")
	return nil
}
