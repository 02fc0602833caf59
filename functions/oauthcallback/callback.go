package oauthcallback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/resources"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// callback handles Google's answer. Order: state MAC (no I/O), consume the state (single use), the
// browser that began it, consent error, running round, PKCE exchange, granted scopes, access type,
// token, grant and round, publish, status session.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, ok := h.parseState(q.Get("state"))
	if !ok {
		logger(r.Context()).Warn("callback with a forged or malformed state")
		h.show(w, pageStateInvalid)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.callbackTimeout)
	defer cancel()
	st, err := h.env.Store.ConsumeOAuthState(ctx, id)
	if errors.Is(err, store.ErrConsumed) {
		logger(ctx).Warn("callback with a used or expired state")
		h.show(w, pageStateUsed)
		return
	}
	if err != nil {
		h.unavailable(ctx, w, "consume oauth state", err) // not consumed: reloading the page may work
		return
	}
	ctx = logging.With(ctx, "user", st.User)
	log := logger(ctx)
	// The state is spent whatever happens next: a consent URL forwarded to another person, or a callback
	// URL replayed in another browser, is refused here and cannot be completed anywhere afterwards.
	browser := h.browserID(r)
	if !sameBrowser(browser, st.Browser) {
		log.Warn("callback refused: not the browser that began the consent", "browser_cookie", browser != "")
		h.show(w, pageOtherBrowser)
		return
	}

	if e := q.Get("error"); e != "" {
		log.Info("consent not given", "oauth_error", oauthErrorCode(e))
		if e == "access_denied" {
			h.show(w, pageDenied)
		} else {
			h.show(w, pageConsentError)
		}
		return
	}
	code := q.Get("code")
	if code == "" {
		log.Warn("callback without code or error")
		h.show(w, pageConsentError)
		return
	}
	// Check before the exchange and long before saving the token: a running round keeps its token.
	if !h.checkNotRunning(w, ctx, st.User) {
		return
	}
	verifier, err := h.env.Crypto.Decrypt(ctx, st.Verifier, []byte("pkce:"+st.ID))
	if err != nil {
		log.Error("open PKCE verifier", "error", err.Error())
		h.show(w, pageFailedNothing)
		return
	}
	tok, err := h.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, h.httpClient), code,
		oauth2.VerifierOption(string(verifier)))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			log.Warn("code exchange refused", "status", re.Response.StatusCode, "oauth_error", oauthErrorCode(re.ErrorCode))
			h.show(w, pageCodeRefused)
			return
		}
		log.Error("code exchange failed", "error", redactExchange(err))
		h.show(w, pageGoogleDown)
		return
	}
	if tok.RefreshToken == "" {
		// Without offline access, exports that outlive the access token (one hour) would fail.
		log.Error("token without refresh token (access_type=offline and prompt=consent were asked)")
		h.show(w, pageCodeRefused)
		return
	}

	granted, notGranted, foreign := grantedResources(scopeOf(tok), st.Resources)
	if len(foreign) > 0 {
		log.Warn("code refused: it grants scopes that were not asked", "scopes", foreign)
		h.show(w, pageWrongScopes)
		return
	}
	if len(granted) == 0 {
		log.Info("consent granted none of the resources", "not_granted", notGranted)
		h.show(w, pageNoneGranted)
		return
	}
	access, err := h.accessType(ctx, tok, granted)
	if err != nil {
		log.Error("accessType.check failed", "error", err.Error())
		h.show(w, pageGoogleDown)
		return
	}

	if err := h.env.Tokens.Save(ctx, st.User, tok); err != nil {
		log.Error("save token", "error", err.Error())
		h.show(w, pageFailedNothing)
		return
	}
	round, err := h.env.Store.StartGrant(ctx, store.NewGrant{User: st.User, Access: access, Granted: granted, NotGranted: notGranted, Since: st.Since})
	if errors.Is(err, store.ErrRoundRunning) {
		// A concurrent callback of the same user won between our check and here (see README).
		log.Warn("round started concurrently; this consent is not used")
		h.show(w, pageRunning)
		return
	}
	if err != nil {
		log.Error("record grant", "error", err.Error())
		h.show(w, pageFailedNothing)
		return
	}
	ctx = logging.With(ctx, "round", round.ID)
	log = logger(ctx)
	log.Info("grant recorded", "access", access, "granted", granted, "not_granted", notGranted, "remaining", len(st.Remaining))

	req := messages.InitiateRequest{V: messages.Version, User: st.User, Round: round.ID}
	if err := h.retry(ctx, "publish initiate request", func(ctx context.Context) error {
		return h.env.Publisher.Publish(ctx, h.cfg.Topics.Initiate, &req)
	}); err != nil {
		// The round is recorded with every resource pending; only the message is missing. Replay it with
		// the operator CLI (publish InitiateRequest{user, round}); the initiate step is idempotent.
		log.Error("initiate request not published: replay it for this round", "topic", h.cfg.Topics.Initiate,
			"error", err.Error(), "action", "replay-initiate")
		h.show(w, pageNotStarted)
		return
	}
	// The status page opens in this browser only; the page holds no link that works elsewhere.
	h.startSession(w, st.User, browser)
	if h.cfg.OAuth.ReturnURL != "" {
		http.Redirect(w, r, h.cfg.OAuth.ReturnURL, http.StatusSeeOther)
		return
	}
	page := donePage{
		Title: "Your export has started", Access: access, TimeBased: access == store.AccessTimeBased,
		Granted: granted, NotGranted: notGranted, Remaining: st.Remaining, StatusURL: h.base + "/status",
	}
	if len(st.Remaining) > 0 {
		page.RemainingURL = h.remainingLink(st.User, st.Remaining, st.Since)
	}
	render(w, http.StatusOK, "done", page)
}

// scopeOf returns the scopes of a token response ("scope", space separated).
func scopeOf(tok *oauth2.Token) []string {
	s, _ := tok.Extra("scope").(string)
	return strings.Fields(s)
}

// grantedResources splits the asked groups by the granted scopes. foreign lists granted scopes that were
// not asked (any other scope, or a Data Portability scope outside the request).
func grantedResources(scopes, asked []string) (granted, notGranted, foreign []string) {
	got := map[string]bool{}
	for _, s := range scopes {
		g, ok := resources.FromScope(s)
		if !ok || !slices.Contains(asked, g) {
			foreign = append(foreign, s)
			continue
		}
		got[g] = true
	}
	for _, g := range asked {
		if got[g] {
			granted = append(granted, g)
		} else {
			notGranted = append(notGranted, g)
		}
	}
	return granted, notGranted, foreign
}

// accessType asks the API whether the grant is one-time or time-based: time-based only when every
// granted resource is.
func (h *Handler) accessType(ctx context.Context, tok *oauth2.Token, granted []string) (string, error) {
	hctx := context.WithValue(ctx, oauth2.HTTPClient, h.httpClient)
	api, err := portability.New(ctx, h.cfg.PortabilityEndpoint, oauth2.NewClient(hctx, oauth2.StaticTokenSource(tok)))
	if err != nil {
		return "", err
	}
	var a portability.Access
	err = h.retry(ctx, "accessType.check", func(ctx context.Context) error {
		var err error
		a, err = api.CheckAccess(ctx)
		if err != nil && portability.KindOf(err) != portability.KindRetry {
			return errors.Join(err, errStop)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	for _, g := range granted {
		if !slices.Contains(a.TimeBased, g) {
			return store.AccessOneTime, nil
		}
	}
	return store.AccessTimeBased, nil
}

// oauthErrorCode keeps an OAuth error code fit for a log line (it comes from the query string).
func oauthErrorCode(s string) string {
	if len(s) > 40 || strings.IndexFunc(s, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) >= 0 {
		return "(other)"
	}
	return s
}

// redactExchange describes an exchange failure without the response body.
func redactExchange(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return fmt.Sprintf("token endpoint answered HTTP %d %s", re.Response.StatusCode, oauthErrorCode(re.ErrorCode))
	}
	return err.Error()
}
