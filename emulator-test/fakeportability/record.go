package fakeportability

import (
	"net/url"
	"slices"
	"time"
)

// A record of what the fake handed out, for the fault and security suites: the bearer secrets it issued
// (access, refresh and ID tokens, authorization codes, signed download URLs), so a scan can look for them in
// logs and stored documents, and the wall-clock times of successful authorization resets, so a suite can
// compare them with the pipeline's own timestamps. The secrets record survives Reset (a scan covers a whole
// test binary); reset times are cleared with the rest of the state.

type record struct {
	secrets map[string]string // secret -> kind
	resets  map[string][]time.Time
}

func (r *record) secret(kind, v string) {
	if r.secrets == nil {
		r.secrets = map[string]string{}
	}
	r.secrets[v] = kind
}

// recordSignedURL keeps a signed URL and its signature (the part that makes it a credential).
func (r *record) signedURL(u string) {
	r.secret("signed URL", u)
	if p, err := url.Parse(u); err == nil {
		if sig := p.Query().Get("X-Goog-Signature"); sig != "" {
			r.secret("signed URL signature", sig)
		}
	}
}

// IssuedSecrets returns every bearer secret the fake handed out since it was created (kind by secret):
// access and refresh tokens, authorization codes, PKCE verifiers received, OIDC ID tokens, signed URLs
// and their signatures.
func (s *Server) IssuedSecrets() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.rec.secrets))
	for k, v := range s.rec.secrets {
		out[k] = v
	}
	return out
}

// ResetTimes returns the wall-clock times (time.Now, not the virtual clock) of the user's successful
// authorization:reset calls since the last ClearData of the fake, in order.
func (s *Server) ResetTimes(user string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rec.resets[user])
}
