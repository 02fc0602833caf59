// Package oauthcallback is step 1 of the pipeline: the browser-facing HTTP function that takes a person
// from a signed start link of the operator's app through Google's consent page, stores the granted
// token (sealed) and the grant, and asks the initiate step to begin the first round.
//
// Routes (below the function URL, PUBLIC_URL):
//
//	GET  /start      start page for a signed start link; sets the browser cookie
//	POST /authorize  the start page's form only (browser cookie + CSRF token): spends the link, creates the
//	                 single-use state bound to the browser and the PKCE verifier, redirects to consent
//	GET  /callback   consent answer, accepted only in the browser that began it: exchange, record the
//	                 grant, publish an InitiateRequest, open the status session (or go back to RETURN_URL)
//	GET  /status     with a signed status link: spends it, opens a same-browser session, redirects to
//	                 /status; without: the session's status page, refreshing while work runs
//	POST /delete     "Stop and delete my data" (session + CSRF token): confirmation, then the purge
package oauthcallback

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline/shared/config"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/purge"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/startlink"
	"github.com/portability-pipeline/pipeline/shared/trace"
)

// Needs is what the function uses beyond the configuration and the logger: the store, the token store
// and its encrypter, the publisher (InitiateRequest) and, for the delete action, the API and the bucket
// (shared/purge).
func Needs() setup.Needs {
	return setup.Needs{Store: true, Tokens: true, Publisher: true, Storage: true}
}

// Unavailable answers a request when the function cannot start (its configuration is incomplete): the
// page a person sees instead of a bare error.
func Unavailable(w http.ResponseWriter, _ *http.Request) {
	securityHeaders(w.Header(), defaultCSP)
	render(w, pageUnavailable.Status, "message", messagePage{message: pageUnavailable})
}

// Handler serves the routes of the function.
type Handler struct {
	env     *setup.Env
	cfg     *config.Config
	oauth   *oauth2.Config
	links   *startlink.Keyset
	cookies cookies
	// Keys derived from the link keyset, one per use (browser.go).
	stateKeys, csrfKeys, sessionKeys macKeys
	base                             string // PUBLIC_URL without trailing slash
	csp                              string
	mux                              *http.ServeMux

	// now is the clock (tests move it).
	now func() time.Time
	// httpClient makes the token exchange and the accessType.check call.
	httpClient *http.Client
	// callbackTimeout bounds the work of a callback; that work does not stop when the browser goes away,
	// since a consumed state cannot be used again.
	callbackTimeout time.Duration
	// retryDelays are the waits between attempts of a publish or an accessType.check.
	retryDelays []time.Duration
	// purge deletes a person's data for the delete action.
	purge purgeFunc
}

// NewHandler returns the function's handler; it refuses an Env without what Needs names or without the
// callback's configuration.
func NewHandler(env *setup.Env) (*Handler, error) {
	if err := env.Require("oauthcallback", Needs()); err != nil {
		return nil, err
	}
	cfg := env.Config
	if err := cfg.RequireCallback(); err != nil {
		return nil, err
	}
	links, err := startlink.ParseKeyset(cfg.OAuth.StartLinkKey)
	if err != nil {
		return nil, err
	}
	pub, err := url.Parse(cfg.OAuth.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("PUBLIC_URL: %w", err)
	}
	cks, err := newCookies(pub.Scheme)
	if err != nil {
		return nil, err
	}
	auth, err := url.Parse(cfg.OAuth.AuthURL)
	if err != nil || auth.Scheme == "" || auth.Host == "" {
		return nil, fmt.Errorf("OAUTH_AUTH_URL %q is not an absolute URL", cfg.OAuth.AuthURL)
	}
	h := &Handler{
		env:             env,
		cfg:             cfg,
		oauth:           setup.OAuthConfig(cfg),
		links:           links,
		cookies:         cks,
		base:            strings.TrimRight(cfg.OAuth.PublicURL, "/"),
		csp:             contentSecurityPolicy(auth.Scheme + "://" + auth.Host),
		now:             time.Now,
		httpClient:      &http.Client{Timeout: 30 * time.Second},
		retryDelays:     []time.Duration{250 * time.Millisecond, time.Second, 3 * time.Second},
		callbackTimeout: 2 * time.Minute,
		purge:           purge.Purge,
	}
	for _, k := range []struct {
		dst  *macKeys
		info string
	}{{&h.stateKeys, "oauth-state"}, {&h.csrfKeys, "csrf"}, {&h.sessionKeys, "status-session"}} {
		if *k.dst, err = deriveKeys(links, k.info); err != nil {
			return nil, err
		}
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /start", h.start)
	// A GET would let any page (or a forwarded link) start a consent without the start page's form.
	m.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		h.show(w, pageMethodNotAllowed)
	})
	m.HandleFunc("POST /authorize", h.authorize)
	m.HandleFunc("GET /callback", h.callback)
	m.HandleFunc("GET /status", h.status)
	m.HandleFunc("POST /delete", h.deleteData)
	m.HandleFunc("GET /delete", func(w http.ResponseWriter, r *http.Request) { h.show(w, pageNotFound) })
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { h.show(w, pageNotFound) })
	h.mux = m
	return h, nil
}

// ServeHTTP sets the headers every answer carries and routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header(), h.csp)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ctx := logging.WithLogger(r.Context(), h.env.Log)
	// The person's journey is one trace: this request's (from the platform's header) or a new one,
	// carried on by the initiate request the callback publishes. Each request is one span.
	trace.Serve(h.env.Tracer, "OAuthCallback", h.mux).ServeHTTP(w, r.WithContext(ctx))
}

// defaultCSP serves the pages written before the configuration is known (no form posts anywhere).
var defaultCSP = contentSecurityPolicy("")

func contentSecurityPolicy(authOrigin string) string {
	sum := sha256.Sum256([]byte(pageCSS))
	return strings.Join([]string{
		"default-src 'none'",
		"style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
		// Chrome applies form-action to the redirect that follows the form post, so allow the consent origin.
		strings.TrimSpace("form-action 'self' " + authOrigin),
		"base-uri 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

func securityHeaders(hd http.Header, csp string) {
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
}

func logger(ctx context.Context) *slog.Logger { return logging.FromContext(ctx) }

// errStop, joined to an error of a retried function, ends the retries at once.
var errStop = errors.New("not retried")

// retry runs f until it succeeds, fails with errStop, ctx ends or the delays run out; it returns the
// last error.
func (h *Handler) retry(ctx context.Context, what string, f func(context.Context) error) error {
	var err error
	for i := 0; ; i++ {
		if err = f(ctx); err == nil {
			return nil
		}
		if i >= len(h.retryDelays) || errors.Is(err, errStop) {
			return err
		}
		logger(ctx).Warn(what+" failed, trying again", "attempt", i+1, "error", err.Error())
		t := time.NewTimer(h.retryDelays[i])
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}
