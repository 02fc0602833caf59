// Package oidcauth admits HTTP calls that carry an OIDC ID token from the expected issuer, for the expected
// audience, of the expected service account: how Cloud Tasks proves a call is ours.
package oidcauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

// Verifier checks bearer ID tokens.
type Verifier struct {
	issuer   string
	audience string
	email    string

	once     sync.Once
	verifier *oidc.IDTokenVerifier
	initErr  error
}

// New returns a verifier; the issuer's keys are fetched on first use.
func New(issuer, audience, email string) *Verifier {
	return &Verifier{issuer: issuer, audience: audience, email: email}
}

func (v *Verifier) init(ctx context.Context) error {
	v.once.Do(func() {
		p, err := oidc.NewProvider(context.WithoutCancel(ctx), v.issuer)
		if err != nil {
			v.initErr = fmt.Errorf("OIDC issuer %s: %w", v.issuer, err)
			return
		}
		v.verifier = p.Verifier(&oidc.Config{ClientID: v.audience})
	})
	if v.initErr != nil {
		// Let a later call try again: the issuer may have been unreachable for a moment.
		v.once = sync.Once{}
	}
	return v.initErr
}

// Verify checks the request's bearer token.
func (v *Verifier) Verify(r *http.Request) error {
	if err := v.init(r.Context()); err != nil {
		return err
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return fmt.Errorf("no bearer token")
	}
	tok, err := v.verifier.Verify(r.Context(), raw)
	if err != nil {
		return fmt.Errorf("invalid ID token: %w", err)
	}
	var claims struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
	}
	if err := tok.Claims(&claims); err != nil {
		return fmt.Errorf("ID token claims: %w", err)
	}
	if !claims.Verified || claims.Email != v.email {
		return fmt.Errorf("ID token of %q, want %q", claims.Email, v.email)
	}
	return nil
}

// Require wraps h so that only verified calls reach it; others get 401 (or 503 if the issuer is down).
func (v *Verifier) Require(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := v.Verify(r); err != nil {
			logging.FromContext(r.Context()).Warn("refused call without a valid OIDC token", "reason", err.Error(), "path", r.URL.Path)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
