package faketasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// TokenSource mints the OIDC ID token sent as "Authorization: Bearer" for a task with an oidc_token.
type TokenSource interface {
	Token(ctx context.Context, email, audience string) (string, error)
}

// TokenFunc adapts a function to TokenSource.
type TokenFunc func(ctx context.Context, email, audience string) (string, error)

// Token calls f.
func (f TokenFunc) Token(ctx context.Context, email, audience string) (string, error) {
	return f(ctx, email, audience)
}

// IssuerTokens mints tokens from the Data Portability fake's OIDC issuer:
// POST {issuerBase}/fake/v1/idtoken {"email","audience"} answers {"id_token"}. client nil: a default client.
func IssuerTokens(issuerBase string, client *http.Client) TokenSource {
	if client == nil {
		client = http.DefaultClient
	}
	endpoint := strings.TrimSuffix(issuerBase, "/") + "/fake/v1/idtoken"
	return TokenFunc(func(ctx context.Context, email, audience string) (string, error) {
		body, err := json.Marshal(map[string]string{"email": email, "audience": audience})
		if err != nil {
			return "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return "", fmt.Errorf("issuer %s: %w", endpoint, err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return "", fmt.Errorf("issuer %s: %w", endpoint, err)
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("issuer %s: HTTP %d: %.200s", endpoint, resp.StatusCode, data)
		}
		var out struct {
			IDToken string `json:"id_token"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			return "", fmt.Errorf("issuer %s: decode answer: %w", endpoint, err)
		}
		if out.IDToken == "" {
			return "", errors.New("issuer " + endpoint + ": answer has no id_token")
		}
		return out.IDToken, nil
	})
}
