// Package oidcauth admits HTTP calls that carry an OIDC ID token from the expected issuer, for the expected
// audience, of the expected service account: how Cloud Tasks proves a call is ours.
package oidcauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

// ErrIssuerUnavailable marks a refusal that says nothing about the token: the issuer's discovery document
// or its keys could not be fetched. The caller should try again later.
var ErrIssuerUnavailable = errors.New("OIDC issuer unavailable")

// discoveryTimeout bounds the discovery fetch, which holds the lock every other first call waits on.
const discoveryTimeout = 10 * time.Second

// Verifier checks bearer ID tokens.
type Verifier struct {
	issuer   string
	audience string
	email    string

	// mu guards verifier. A failed discovery leaves it nil, so the next call tries again: the issuer may
	// have been unreachable for a moment, and the instance must not refuse every task until it is recycled.
	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

// New returns a verifier; the issuer's keys are fetched on first use.
func New(issuer, audience, email string) *Verifier {
	return &Verifier{issuer: issuer, audience: audience, email: email}
}

func (v *Verifier) idTokenVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifier != nil {
		return v.verifier, nil
	}
	dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(dctx, v.issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrIssuerUnavailable, v.issuer, err)
	}
	var meta struct {
		JWKS string   `json:"jwks_uri"`
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		return nil, fmt.Errorf("%w: %s: discovery document without jwks_uri (%v)", ErrIssuerUnavailable, v.issuer, err)
	}
	// Our own key set around go-oidc's, so that a failure to fetch the keys can be told apart from a bad
	// signature (go-oidc flattens both into one error string). The key set outlives this call.
	keys := &keySet{remote: oidc.NewRemoteKeySet(context.WithoutCancel(ctx), meta.JWKS)}
	v.verifier = oidc.NewVerifier(v.issuer, keys, &oidc.Config{ClientID: v.audience, SupportedSigningAlgs: supported(meta.Algs)})
	return v.verifier, nil
}

// supported keeps the signing algorithms go-oidc can check, as Provider.Verifier does; none means RS256.
func supported(algs []string) []string {
	known := map[string]bool{oidc.RS256: true, oidc.RS384: true, oidc.RS512: true, oidc.ES256: true, oidc.ES384: true,
		oidc.ES512: true, oidc.PS256: true, oidc.PS384: true, oidc.PS512: true, oidc.EdDSA: true}
	var out []string
	for _, a := range algs {
		if known[a] {
			out = append(out, a)
		}
	}
	return out
}

// fetchErrKey carries, per call, where keySet records a failure to fetch the issuer's keys.
type fetchErrKey struct{}

type keySet struct{ remote *oidc.RemoteKeySet }

func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.remote.VerifySignature(ctx, jwt)
	// RemoteKeySet wraps an error (%w) only when it could not fetch the keys (or the call's context ended
	// while it waited for them); a signature that matches no key is a plain error.
	if err != nil && errors.Unwrap(err) != nil {
		if slot, ok := ctx.Value(fetchErrKey{}).(*error); ok {
			*slot = err
		}
	}
	return payload, err
}

// Verify checks the request's bearer token. An error wrapping ErrIssuerUnavailable means the token could
// not be checked; any other error means it is not acceptable.
func (v *Verifier) Verify(r *http.Request) error {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return fmt.Errorf("no bearer token")
	}
	verifier, err := v.idTokenVerifier(r.Context())
	if err != nil {
		return err
	}
	var fetchErr error
	tok, err := verifier.Verify(context.WithValue(r.Context(), fetchErrKey{}, &fetchErr), raw)
	if fetchErr != nil {
		return fmt.Errorf("%w: keys of %s: %v", ErrIssuerUnavailable, v.issuer, fetchErr)
	}
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

// Require wraps h so that only verified calls reach it. A bad or missing token gets 401; trouble with the
// issuer gets 503, so Cloud Tasks tries the task again instead of the instance refusing it for good.
func (v *Verifier) Require(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := v.Verify(r); err != nil {
			if errors.Is(err, ErrIssuerUnavailable) {
				logging.FromContext(r.Context()).Error("cannot check the OIDC token: issuer unavailable", "reason", err.Error(), "path", r.URL.Path)
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
			logging.FromContext(r.Context()).Warn("refused call without a valid OIDC token", "reason", err.Error(), "path", r.URL.Path)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
