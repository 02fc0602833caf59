package fakeportability

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/resources"
)

// Google sign-in, as far as the pipeline uses it: authorize with a consent page, the code grant with PKCE,
// refresh tokens and revocation.

//go:embed consent.html
var consentHTML string

var consentPage = template.Must(template.New("consent").Parse(consentHTML))

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Error {{.Code}}: {{.Error}}</title></head>
<body><h1>Access blocked: this request is invalid</h1>
<p id="error">Error {{.Code}}: {{.Error}}</p>
<p id="details">{{.Details}}</p></body></html>
`))

// authRequest is an authorize call waiting for the consent page's answer.
type authRequest struct {
	clientID    string
	redirectURI string
	state       string
	groups      []string
	challenge   string
	method      string
	offline     bool
	expiresAt   time.Time
}

// authCode is an issued authorization code: single use, short-lived.
type authCode struct {
	grant       *grant
	clientID    string
	redirectURI string
	challenge   string
	method      string
	offline     bool
	expiresAt   time.Time
}

func writeErrorPage(w http.ResponseWriter, code int, errName, details string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = errorPage.Execute(w, map[string]any{"Code": code, "Error": errName, "Details": details})
}

func (s *Server) redirectAllowed(c Client, uri string) bool {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return false
	}
	return len(c.RedirectURIs) == 0 || slices.Contains(c.RedirectURIs, uri)
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, ok := s.clients[q.Get("client_id")]
	if !ok {
		writeErrorPage(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !s.redirectAllowed(c, redirectURI) {
		writeErrorPage(w, http.StatusBadRequest, "redirect_uri_mismatch",
			fmt.Sprintf("You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. If you're the app developer, register the redirect URI in the Google Cloud Console. Request details: redirect_uri=%s", redirectURI))
		return
	}
	if rt := q.Get("response_type"); rt != "code" {
		writeErrorPage(w, http.StatusBadRequest, "unsupported_response_type", fmt.Sprintf("Invalid response_type: %q.", rt))
		return
	}
	if q.Get("include_granted_scopes") == "true" {
		writeErrorPage(w, http.StatusBadRequest, "invalid_request", "Incremental auth is not allowed for Data Portability scopes (include_granted_scopes=true).")
		return
	}
	var groups, others []string
	for _, sc := range strings.Fields(q.Get("scope")) {
		if g, ok := resources.FromScope(sc); ok {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		} else if strings.HasPrefix(sc, resources.ScopePrefix) {
			writeErrorPage(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("Some requested scopes were invalid: %s", sc))
			return
		} else {
			others = append(others, sc)
		}
	}
	switch {
	case len(groups) > 0 && len(others) > 0:
		writeErrorPage(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("Data Portability scopes cannot be requested together with other scopes: %s.", strings.Join(others, " ")))
		return
	case len(groups) == 0:
		writeErrorPage(w, http.StatusBadRequest, "invalid_scope", "Missing or unsupported scope: this server grants Data Portability scopes only.")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if method != "" && method != "S256" && method != "plain" {
		writeErrorPage(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("Invalid code_challenge_method: %q.", method))
		return
	}
	if challenge != "" && method == "" {
		method = "plain"
	}
	ar := &authRequest{clientID: c.ID, redirectURI: redirectURI, state: q.Get("state"), groups: groups,
		challenge: challenge, method: method, offline: q.Get("access_type") == "offline",
		expiresAt: s.clock.Now().Add(time.Hour)}
	id := randomID(16)
	s.mu.Lock()
	s.authReq[id] = ar
	s.mu.Unlock()
	account := q.Get("login_hint")
	if account == "" {
		account = "alice"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = consentPage.Execute(w, map[string]any{"ClientID": c.ID, "RequestID": id, "Account": account, "Resources": groups})
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeErrorPage(w, http.StatusBadRequest, "invalid_request", "Malformed form.")
		return
	}
	s.mu.Lock()
	id := r.PostForm.Get("request_id")
	ar := s.authReq[id]
	delete(s.authReq, id) // single use
	s.mu.Unlock()
	if ar == nil || !s.clock.Now().Before(ar.expiresAt) {
		writeErrorPage(w, http.StatusBadRequest, "invalid_request", "The sign-in request is unknown or has expired. Start again.")
		return
	}
	redirect := func(params url.Values) {
		u, _ := url.Parse(ar.redirectURI)
		q := u.Query()
		for k, v := range params {
			q[k] = v
		}
		if ar.state != "" {
			q.Set("state", ar.state)
		}
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	var granted []string
	for _, g := range r.PostForm["resource"] {
		if slices.Contains(ar.groups, g) && !slices.Contains(granted, g) {
			granted = append(granted, g)
		}
	}
	if r.PostForm.Get("action") != "allow" || len(granted) == 0 {
		redirect(url.Values{"error": {"access_denied"}})
		return
	}
	account := strings.TrimSpace(r.PostForm.Get("account"))
	access, err := parseAccess(r.PostForm.Get("access"))
	if account == "" || err != nil {
		writeErrorPage(w, http.StatusBadRequest, "invalid_request", "Pick an account and an access duration.")
		return
	}
	s.mu.Lock()
	g := s.consentLocked(account, ar.clientID, granted, access)
	code := "4/fake-" + randomID(20)
	s.rec.secret("authorization code", code)
	s.codes[code] = &authCode{grant: g, clientID: ar.clientID, redirectURI: ar.redirectURI, challenge: ar.challenge,
		method: ar.method, offline: ar.offline, expiresAt: s.clock.Now().Add(authCodeTTL)}
	s.mu.Unlock()
	s.log.Info("consent granted", "user", account, "client", ar.clientID, "access", string(access), "resources", strings.Join(g.resources, ","))
	redirect(url.Values{"code": {code}, "scope": {g.scope()}})
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// clientAuth authenticates the client by Basic header or form fields.
func (s *Server) clientAuth(r *http.Request) (Client, bool) {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, found := s.clients[id]
	if !found || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return Client{}, false
	}
	return c, true
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	formErr := r.ParseForm()
	s.mu.Lock()
	s.calls.add("", MethodToken)
	delay, status := s.faults.takeMethod(MethodToken, s.tokenCallerLocked(r))
	s.mu.Unlock()
	if !sleepCtx(r, delay) {
		return
	}
	switch status {
	case 0:
	case http.StatusBadRequest:
		// What Google's token endpoint answers once the person removed the app from their account.
		writeJSON(w, status, oauthError{Error: "invalid_grant", Description: "Token has been expired or revoked."})
		return
	default:
		writeJSON(w, status, oauthError{Error: "temporarily_unavailable", Description: fmt.Sprintf("injected fault: HTTP %d", status)})
		return
	}
	if formErr != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "Malformed form."})
		return
	}
	c, ok := s.clientAuth(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", Description: "The OAuth client was not found."})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		code := r.PostForm.Get("code")
		ac := s.codes[code]
		delete(s.codes, code) // single use, also on failure
		if v := r.PostForm.Get("code_verifier"); v != "" {
			s.rec.secret("PKCE verifier", v)
		}
		switch {
		case ac == nil || !now.Before(ac.expiresAt):
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", Description: "Malformed auth code."})
			return
		case ac.clientID != c.ID:
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", Description: "The code was issued to another client."})
			return
		case r.PostForm.Get("redirect_uri") != ac.redirectURI:
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "redirect_uri_mismatch", Description: "Bad Request"})
			return
		case !pkceOK(ac.challenge, ac.method, r.PostForm.Get("code_verifier")):
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", Description: "Invalid code verifier."})
			return
		case !ac.grant.alive(now):
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", Description: "Token has been expired or revoked."})
			return
		}
		writeJSON(w, http.StatusOK, s.issueLocked(ac.grant, ac.offline))
	case "refresh_token":
		g := s.refresh[r.PostForm.Get("refresh_token")]
		if g == nil || !g.alive(now) || g.clientID != c.ID {
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", Description: "Token has been expired or revoked."})
			return
		}
		// Google does not rotate refresh tokens: the answer carries none and the old one stays valid.
		writeJSON(w, http.StatusOK, s.issueLocked(g, false))
	default:
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "unsupported_grant_type", Description: fmt.Sprintf("Invalid grant_type: %s", gt)})
	}
}

// tokenCallerLocked returns the user of a token request's code or refresh token ("" if unknown).
func (s *Server) tokenCallerLocked(r *http.Request) string {
	if ac := s.codes[r.PostForm.Get("code")]; ac != nil {
		return ac.grant.user
	}
	if g := s.refresh[r.PostForm.Get("refresh_token")]; g != nil {
		return g.user
	}
	return ""
}

func pkceOK(challenge, method, verifier string) bool {
	if challenge == "" {
		return true
	}
	if verifier == "" {
		return false
	}
	if method == "plain" {
		return subtle.ConstantTimeCompare([]byte(challenge), []byte(verifier)) == 1
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(challenge), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) == 1
}

// handleRevoke revokes the grant behind an access or refresh token, as Google's revocation endpoint does.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	tok := r.Form.Get("token")
	s.mu.Lock()
	var g *grant
	if at := s.access[tok]; at != nil {
		g = at.grant
	} else {
		g = s.refresh[tok]
	}
	ok := g != nil && g.alive(s.clock.Now())
	if ok {
		g.revoked = true
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_token", Description: "Token expired or revoked"})
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
