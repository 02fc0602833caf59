package oauthcallback

import (
	"context"
	"errors"
	"net/http"

	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/purge"
	"github.com/portability-pipeline/pipeline/shared/setup"
)

// purgeFunc deletes everything stored of a user (purge.Purge; tests may wrap it).
type purgeFunc func(ctx context.Context, env *setup.Env, user string) (purge.Report, error)

// paramConfirm, set to "yes", is the second step of the delete form.
const paramConfirm = "confirm"

type deletePage struct {
	Title   string
	Action  string
	Hidden  map[string]string
	BackURL string
	// After the purge.
	Report       *purge.Report
	GrantWords   string
	NotCancelled int
}

// deleteData is the "Stop and delete my data" action of the status page: a POST in the browser that
// holds the person's status session, with the form's CSRF token. Without confirm=yes it asks for
// confirmation; with it, it purges the user and says what was deleted. The query is never read.
func (h *Handler) deleteData(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.show(w, pageFormInvalid)
		return
	}
	v := r.PostForm
	user, browser, ok := h.session(r)
	if !ok {
		logger(r.Context()).Warn("delete refused: no status session")
		h.show(w, pageNoSession)
		return
	}
	ctx := logging.With(r.Context(), "user", user)
	if !h.validCSRF("delete:"+user, browser, v.Get(fieldCSRF)) {
		logger(ctx).Warn("delete refused: missing or foreign CSRF token")
		h.show(w, pageFormInvalid)
		return
	}
	hidden := map[string]string{fieldCSRF: v.Get(fieldCSRF)}
	back := h.base + "/status"
	if v.Get(paramConfirm) != "yes" {
		if _, found := h.storedStatus(ctx, w, user, pageNothingToDelete); !found {
			return
		}
		render(w, http.StatusOK, "confirmDelete", deletePage{
			Title: "Stop and delete your data?", Action: h.base + "/delete", Hidden: hidden, BackURL: back,
		})
		return
	}
	// The purge outlives an impatient browser: a half-done purge is finished by the next attempt anyway,
	// but there is no reason to leave it half done.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.callbackTimeout)
	defer cancel()
	rep, err := h.purge(pctx, h.env, user)
	if errors.Is(err, purge.ErrNothingToPurge) {
		logger(ctx).Info("delete asked: nothing stored")
		h.show(w, pageNothingToDelete)
		return
	}
	if err != nil {
		logger(ctx).Error("purge failed", "error", err.Error())
		h.show(w, pageDeleteFailed)
		return
	}
	logger(ctx).Info("user's data deleted at their request", "documents", rep.Documents, "objects", rep.Objects, "grant", rep.Grant)
	page := deletePage{Title: "Your data was deleted", Report: &rep, NotCancelled: len(rep.NotCancelled)}
	switch rep.Grant {
	case purge.GrantReset:
		page.GrantWords = "The app's access to your Google data was withdrawn."
	case purge.GrantAlreadyRevoked, purge.GrantNoToken:
		page.GrantWords = "The app no longer had access to your Google data."
	default:
		page.GrantWords = "Google did not confirm that the app's access was withdrawn; you can remove it yourself in your Google Account under Security, Third-party apps."
	}
	render(w, http.StatusOK, "deleted", page)
}
