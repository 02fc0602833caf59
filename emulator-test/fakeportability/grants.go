package fakeportability

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/resources"
)

// accessKind is what the user picked on the consent page.
type accessKind string

const (
	accessOneTime   accessKind = "one-time"
	accessTime30d   accessKind = "time-based-30d"
	accessTime180d  accessKind = "time-based-180d"
	authCodeTTL                = 10 * time.Minute
	timeBasedWindow            = 24 * time.Hour
)

func parseAccess(s string) (accessKind, error) {
	switch a := accessKind(s); a {
	case accessOneTime, accessTime30d, accessTime180d:
		return a, nil
	}
	return "", fmt.Errorf("access %q: want one-time, time-based-30d or time-based-180d", s)
}

func (a accessKind) timeBased() bool { return a != accessOneTime }

// lifetime is how long a grant of this kind lives after consent (0: until reset or revocation).
func (a accessKind) lifetime() time.Duration {
	switch a {
	case accessTime30d:
		return 30 * 24 * time.Hour
	case accessTime180d:
		return 180 * 24 * time.Hour
	}
	return 0
}

// user is one Google account as the API sees it.
type user struct {
	name string
	// access is the access kind of each resource since the last reset: set by the first consent that
	// includes the resource (switching needs a reset and a new consent).
	access map[string]accessKind
	// epoch counts resets; jobs of earlier epochs no longer exhaust resources.
	epoch int
}

// grant is one consent: what a refresh token and its access tokens stand for.
type grant struct {
	id           string
	user         string
	clientID     string
	resources    []string // sorted groups
	access       accessKind
	consentAt    time.Time
	expiresAt    time.Time // zero: no expiry
	revoked      bool
	refreshToken string // empty until issued
}

func (g *grant) alive(now time.Time) bool {
	return !g.revoked && (g.expiresAt.IsZero() || now.Before(g.expiresAt))
}

func (g *grant) has(resource string) bool {
	_, ok := slices.BinarySearch(g.resources, resource)
	return ok
}

func (g *grant) scope() string {
	scopes := make([]string, len(g.resources))
	for i, r := range g.resources {
		scopes[i] = resources.Scope(r)
	}
	return strings.Join(scopes, " ")
}

type accessToken struct {
	grant     *grant
	expiresAt time.Time
}

// TokenResponse is the token endpoint's answer (and that of POST /fake/v1/grants).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	TokenType    string `json:"token_type"`
}

func (s *Server) userLocked(name string) *user {
	u := s.users[name]
	if u == nil {
		u = &user{name: name, access: map[string]accessKind{}}
		s.users[name] = u
	}
	return u
}

// consentLocked records a consent of user for groups with access, as the consent page does.
func (s *Server) consentLocked(userName, clientID string, groups []string, access accessKind) *grant {
	now := s.clock.Now()
	u := s.userLocked(userName)
	for _, r := range groups {
		if _, ok := u.access[r]; !ok {
			u.access[r] = access
		}
	}
	g := &grant{id: randomID(8), user: userName, clientID: clientID, resources: slices.Sorted(slices.Values(groups)),
		access: access, consentAt: now}
	if d := access.lifetime(); d > 0 {
		g.expiresAt = now.Add(d)
	}
	s.grants[g.id] = g
	return g
}

// issueLocked gives a new access token for g, and a refresh token if asked and none was issued yet.
func (s *Server) issueLocked(g *grant, withRefresh bool) TokenResponse {
	now := s.clock.Now()
	tok := "ya29.fake-" + randomID(24)
	s.rec.secret("access token", tok)
	s.access[tok] = &accessToken{grant: g, expiresAt: now.Add(s.opts.AccessTokenTTL)}
	resp := TokenResponse{AccessToken: tok, ExpiresIn: int64(s.opts.AccessTokenTTL / time.Second), Scope: g.scope(), TokenType: "Bearer"}
	if withRefresh {
		if g.refreshToken == "" {
			g.refreshToken = "1//fake-" + randomID(24)
			s.refresh[g.refreshToken] = g
			s.rec.secret("refresh token", g.refreshToken)
		}
		resp.RefreshToken = g.refreshToken
	}
	return resp
}

// revokeUserLocked kills every grant of the user (reset, or the user revoking consent).
func (s *Server) revokeUserLocked(userName string) {
	for _, g := range s.grants {
		if g.user == userName {
			g.revoked = true
		}
	}
}

// authenticateLocked resolves the bearer token of r to a live grant.
// callerLocked returns the user of the request's bearer token, valid or not ("" if unknown); it picks
// the faults scoped to that user.
func (s *Server) callerLocked(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if at := s.access[tok]; at != nil {
		return at.grant.user
	}
	return ""
}

func (s *Server) authenticateLocked(r *http.Request) (*grant, *apiError) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil, errUnauthenticated("CREDENTIALS_MISSING")
	}
	at := s.access[tok]
	if at == nil {
		return nil, errUnauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED")
	}
	now := s.clock.Now()
	if !now.Before(at.expiresAt) || !at.grant.alive(now) {
		return nil, errUnauthenticated("ACCESS_TOKEN_EXPIRED")
	}
	return at.grant, nil
}

// GrantRequest is the body of POST /fake/v1/grants.
type GrantRequest struct {
	User      string   `json:"user"`
	Resources []string `json:"resources"`
	Access    string   `json:"access"`
	ClientID  string   `json:"client_id,omitempty"`
}

// Grant records a consent as if given on the consent page and returns the tokens a code exchange gives.
func (s *Server) Grant(req GrantRequest) (TokenResponse, error) {
	if req.User == "" {
		return TokenResponse{}, fmt.Errorf("user is required")
	}
	groups, err := resources.Validate(req.Resources)
	if err != nil {
		return TokenResponse{}, err
	}
	if req.Access == "" {
		req.Access = string(accessOneTime)
	}
	access, err := parseAccess(req.Access)
	if err != nil {
		return TokenResponse{}, err
	}
	if req.ClientID == "" {
		req.ClientID = s.opts.Clients[0].ID
	} else if _, ok := s.clients[req.ClientID]; !ok {
		return TokenResponse{}, fmt.Errorf("unknown client %q", req.ClientID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.consentLocked(req.User, req.ClientID, groups, access)
	return s.issueLocked(g, true), nil
}

// RevokeUser revokes every grant of the user, as if the user withdrew consent.
func (s *Server) RevokeUser(name string) {
	s.mu.Lock()
	s.revokeUserLocked(name)
	s.mu.Unlock()
}
