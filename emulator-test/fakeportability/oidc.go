package fakeportability

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// An OIDC issuer for service-account ID tokens (the Cloud Tasks stand-in asks for them; the pipeline verifies
// them with go-oidc). ID tokens use real time, since verifiers do.

const idTokenTTL = time.Hour

type oidcKeys struct {
	once sync.Once
	key  *rsa.PrivateKey
	kid  string
}

func (k *oidcKeys) get() (*rsa.PrivateKey, string) {
	k.once.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("generate RSA key: %v", err))
		}
		k.key, k.kid = key, "fake-"+randomID(8)
	})
	return k.key, k.kid
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	base := s.baseURL(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                base + "/o/oauth2/v2/auth",
		"token_endpoint":                        base + "/token",
		"revocation_endpoint":                   base + "/revoke",
		"jwks_uri":                              base + "/oauth2/v3/certs",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"plain", "S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	})
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	key, kid := s.oidc.get()
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
}

// IDToken signs an ID token for a service account email and audience, issued by issuer (the base URL).
func (s *Server) IDToken(issuer, email, audience string) (string, error) {
	if email == "" || audience == "" {
		return "", fmt.Errorf("email and audience are required")
	}
	key, kid := s.oidc.get()
	now := time.Now()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss": issuer, "aud": audience, "sub": "fake-sa-" + fmt.Sprintf("%x", sha256.Sum256([]byte(email)))[:21],
		"azp": email, "email": email, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(idTokenTTL).Unix(),
	})
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	tok := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	s.mu.Lock()
	s.rec.secret("ID token", tok)
	s.mu.Unlock()
	return tok, nil
}

func (s *Server) handleIDToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Audience string `json:"audience"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		controlError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	tok, err := s.IDToken(s.baseURL(r), req.Email, req.Audience)
	if err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id_token": tok})
}
