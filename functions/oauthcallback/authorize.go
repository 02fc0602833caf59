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

// verifyLink checks a start link; on failure it writes the refusal page and returns false.
func (h *Handler) verifyLink(w http.ResponseWriter, r *http.Request, v url.Values) (startlink.Link, bool) {
	return h.verified(w, r, v, startlink.PurposeStart, startlink.MaxStartTTL, pageLinkExpired)
}

// verified checks a signed link of purpose (start or status); on failure it logs why, writes the
// refusal page (expired: the page for an expired link of that purpose) and returns false.
func (h *Handler) verified(w http.ResponseWriter, r *http.Request, v url.Values, purpose string, ttl time.Duration, expired message) (startlink.Link, bool) {
	l, err := startlink.Verify(h.links, purpose, v, h.now(), ttl)
	if err == nil {
		return l, true
	}
	logger(r.Context()).Warn(purpose+" link refused", "path", r.URL.Path, "reason", err.Error())
	switch {
	case errors.Is(err, startlink.ErrExpired):
		h.show(w, expired)
	case errors.Is(err, startlink.ErrSince) && purpose == startlink.PurposeStart:
		h.show(w, pageSinceInvalid)
	case errors.Is(err, startlink.ErrUserID):
		h.show(w, pageUserRefused)
	default:
		h.show(w, pageLinkInvalid)
	}
	return l, false
}

// spent answers the spending of a single-use link of purpose (start or status), err being the store's
// answer, and reports whether this request spent it (err is nil). A link spent before gets the "already
// used" page; a failure of the store (doing names the call in the log) gets the unavailable page, and the
// link stays unspent.
func (h *Handler) spent(ctx context.Context, w http.ResponseWriter, purpose, doing string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrLinkUsed):
		logger(ctx).Warn(purpose + " link used again")
		h.show(w, pageLinkUsed)
	default:
		h.unavailable(ctx, w, doing, err)
	}
	return false
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
		h.unavailable(ctx, w, "read user", err)
		return false
	}
	if busy {
		logger(ctx).Info("consent not started: a round is running")
		h.show(w, pageRunning)
		return false
	}
	return true
}

// start shows what will be exported and for which app account, sets the browser cookie, and offers a
// button that posts the signed link with a CSRF token to /authorize.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l, ok := h.verifyLink(w, r, q)
	if !ok {
		return
	}
	ctx := logging.With(r.Context(), "user", l.User)
	// A used link is refused here too, before the person reads a page whose button cannot work.
	used, err := h.env.Store.LinkUsed(ctx, startlink.ID(startlink.PurposeStart, q))
	if err != nil {
		h.unavailable(ctx, w, "read used link", err)
		return
	}
	if used {
		logger(ctx).Warn("start link used again")
		h.show(w, pageLinkUsed)
		return
	}
	if !h.checkNotRunning(w, ctx, l.User) {
		return
	}
	browser := h.ensureBrowser(w, r)
	hidden := map[string]string{fieldCSRF: h.csrfToken("authorize", browser)}
	for _, k := range startlink.Params {
		if q.Has(k) {
			hidden[k] = q.Get(k)
		}
	}
	account := l.Name
	if account == "" {
		account = l.User
	}
	render(w, http.StatusOK, "start", startPage{
		Title:     "Export your Google data to the app",
		Resources: l.Resources,
		Action:    h.base + "/authorize",
		Hidden:    hidden,
		Since:     newTime(l.Since),
		Account:   account,
		User:      l.User,
		ShowID:    l.Name != "",
	})
}

// authorize takes the start page's form: it verifies the link again, checks that the form comes from
// the start page in this browser (cookie and CSRF token), spends the link and records a single-use state
// bound to the browser, with a sealed PKCE verifier, and sends the browser to Google's consent page.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.show(w, pageLinkInvalid)
		return
	}
	v := r.PostForm // never the query: a link's parameters alone start nothing
	l, ok := h.verifyLink(w, r, v)
	if !ok {
		return
	}
	ctx := logging.With(r.Context(), "user", l.User)
	browser := h.browserID(r)
	if browser == "" {
		logger(ctx).Warn("authorize without the browser cookie")
		h.show(w, pageNoCookie)
		return
	}
	if !h.validCSRF("authorize", browser, v.Get(fieldCSRF)) {
		logger(ctx).Warn("authorize with a missing or foreign CSRF token")
		h.show(w, pageFormInvalid)
		return
	}
	if !h.checkNotRunning(w, ctx, l.User) {
		return
	}
	id, state := h.newState()
	verifier := oauth2.GenerateVerifier()
	n, consent := h.consentURL(state, verifier, l.Resources)
	if n == 0 {
		logger(ctx).Error("consent URL too long even for one resource")
		h.show(w, pageUnavailable)
		return
	}
	sealed, err := h.env.Crypto.Encrypt(ctx, []byte(verifier), []byte("pkce:"+id))
	if err != nil {
		h.unavailable(ctx, w, "seal PKCE verifier", err)
		return
	}
	st := store.OAuthState{
		ID: id, User: l.User, Resources: l.Resources[:n], Verifier: sealed, Browser: browserHash(browser),
		ExpiresAt: h.now().Add(h.cfg.OAuth.StateTTL), Since: l.Since,
	}
	if n < len(l.Resources) {
		st.Remaining = l.Resources[n:]
	}
	used := store.UsedLink{Purpose: startlink.PurposeStart, ExpiresAt: l.Expires}
	err = h.env.Store.BeginConsent(ctx, startlink.ID(startlink.PurposeStart, v), used, st)
	if !h.spent(ctx, w, startlink.PurposeStart, "store oauth state", err) {
		return
	}
	logger(ctx).Info("sent to consent", "resources", st.Resources, "remaining", len(st.Remaining), "key", l.KeyID)
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
	v := startlink.Sign(h.links.Current(), startlink.Link{
		User: user, Resources: rest, Purpose: startlink.PurposeStart, Expires: h.now().Add(startlink.MaxStartTTL), Since: since,
	})
	return fmt.Sprintf("%s/start?%s", h.base, v.Encode())
}
