package oauthcallback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/resources"
	"github.com/portability-pipeline/pipeline/shared/startlink"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// maxConsentURL is the longest consent URL sent; longer resource lists are asked in batches.
const maxConsentURL = 2000

// verifyLink checks a start link; on failure it writes the 403 page and returns false.
func (h *Handler) verifyLink(w http.ResponseWriter, r *http.Request, v url.Values) (startlink.Link, bool) {
	l, err := startlink.Verify(h.linkKey, startlink.PurposeStart, v, h.now())
	if err != nil {
		logger(r.Context()).Warn("start link refused", "path", r.URL.Path, "reason", err.Error())
		if errors.Is(err, startlink.ErrExpired) {
			show(w, pageLinkExpired)
		} else if errors.Is(err, startlink.ErrSince) {
			show(w, pageSinceInvalid)
		} else {
			show(w, pageLinkInvalid)
		}
		return l, false
	}
	return l, true
}

// running reports whether the user has a round that has not closed (a new consent must wait for it).
func (h *Handler) running(ctx context.Context, user string) (bool, error) {
	u, err := h.env.Store.GetUser(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.State == "active", nil
}

// checkNotRunning writes the "already running" page (or an error page) and returns false when a new
// consent cannot start now.
func (h *Handler) checkNotRunning(w http.ResponseWriter, ctx context.Context, user string) bool {
	busy, err := h.running(ctx, user)
	if err != nil {
		logger(ctx).Error("read user", "error", err.Error())
		show(w, pageUnavailable)
		return false
	}
	if busy {
		logger(ctx).Info("consent not started: a round is running")
		show(w, pageRunning)
		return false
	}
	return true
}

// start shows what will be exported and a button that posts the same signed link to /authorize.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l, ok := h.verifyLink(w, r, q)
	if !ok {
		return
	}
	ctx := logging.With(r.Context(), "user", l.User)
	if !h.checkNotRunning(w, ctx, l.User) {
		return
	}
	hidden := map[string]string{}
	for _, k := range []string{startlink.ParamUser, startlink.ParamResources, startlink.ParamExpires, startlink.ParamSig, startlink.ParamSince} {
		if _, ok := q[k]; ok {
			hidden[k] = q.Get(k)
		}
	}
	render(w, http.StatusOK, "start", startPage{
		Title:     "Export your Google data to the app",
		Resources: l.Resources,
		Action:    h.base + "/authorize",
		Hidden:    hidden,
		Since:     newTime(l.Since),
	})
}

// authorize verifies the link again, records a single-use state with a sealed PKCE verifier and sends the
// browser to Google's consent page.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			show(w, pageLinkInvalid)
			return
		}
		v = r.PostForm
	}
	l, ok := h.verifyLink(w, r, v)
	if !ok {
		return
	}
	ctx := logging.With(r.Context(), "user", l.User)
	if !h.checkNotRunning(w, ctx, l.User) {
		return
	}
	id, state := h.newState()
	verifier := oauth2.GenerateVerifier()
	n, consent := h.consentURL(state, verifier, l.Resources)
	if n == 0 {
		logger(ctx).Error("consent URL too long even for one resource")
		show(w, pageUnavailable)
		return
	}
	sealed, err := h.env.Crypto.Encrypt(ctx, []byte(verifier), []byte("pkce:"+id))
	if err != nil {
		logger(ctx).Error("seal PKCE verifier", "error", err.Error())
		show(w, pageUnavailable)
		return
	}
	st := store.OAuthState{
		ID: id, User: l.User, Resources: l.Resources[:n], Verifier: sealed,
		ExpiresAt: h.now().Add(h.cfg.OAuth.StateTTL), Since: l.Since,
	}
	if n < len(l.Resources) {
		st.Remaining = l.Resources[n:]
	}
	if err := h.env.Store.PutOAuthState(ctx, st); err != nil {
		logger(ctx).Error("store oauth state", "error", err.Error())
		show(w, pageUnavailable)
		return
	}
	logger(ctx).Info("sent to consent", "resources", st.Resources, "remaining", len(st.Remaining))
	http.Redirect(w, r, consent, http.StatusSeeOther)
}

// consentURL returns the consent URL for the longest prefix of groups that keeps it within
// maxConsentURL, and the length of that prefix (0 when not even one fits). Only Data Portability scopes
// are asked (never openid or email, never include_granted_scopes): Google refuses to mix them.
func (h *Handler) consentURL(state, verifier string, groups []string) (int, string) {
	for n := len(groups); n > 0; n-- {
		c := *h.oauth
		c.Scopes = make([]string, n)
		for i, g := range groups[:n] {
			c.Scopes[i] = resources.Scope(g)
		}
		u := c.AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier),
			oauth2.SetAuthURLParam("prompt", "consent"))
		if len(u) <= maxConsentURL {
			return n, u
		}
	}
	return 0, ""
}

// remainingLink is a fresh signed start link for resources left for a later consent.
func (h *Handler) remainingLink(user string, rest []string, since time.Time) string {
	v := startlink.Sign(h.linkKey, startlink.Link{
		User: user, Resources: rest, Purpose: startlink.PurposeStart, Expires: h.now().Add(startlink.MaxStartTTL), Since: since,
	})
	return fmt.Sprintf("%s/start?%s", h.base, v.Encode())
}
