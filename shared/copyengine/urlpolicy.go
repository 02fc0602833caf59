package copyengine

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/portability-pipeline/pipeline/shared/sameorigin"
)

// ErrURLRefused: a signed URL (or a redirect it answered with) is not one the pipeline may fetch: not
// https, or not a host of the allow-list. Permanent: a URL from outside is hostile until checked, and the
// archive's bytes must come from Google's storage, nowhere else.
var ErrURLRefused = errors.New("signed URL refused")

// DefaultURLHosts is the allow-list of production: the Data Portability API serves its archives from Cloud
// Storage's XML API host.
var DefaultURLHosts = []string{"storage.googleapis.com"}

// URLPolicy decides which signed URLs may be fetched. Entries are hosts ("storage.googleapis.com",
// "host:port"), fetched over https only; an entry written "http://host:port" also allows plain http for
// that one host (the local stack, whose stand-in has no TLS).
type URLPolicy struct {
	https map[string]bool
	http  map[string]bool
}

// NewURLPolicy builds a policy from allow-list entries (see URLPolicy); an empty list is an error.
func NewURLPolicy(entries []string) (*URLPolicy, error) {
	p := &URLPolicy{https: map[string]bool{}, http: map[string]bool{}}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
			continue
		case strings.HasPrefix(e, "http://"):
			h := strings.TrimSuffix(strings.TrimPrefix(e, "http://"), "/")
			if h == "" || strings.ContainsAny(h, "/?#@") {
				return nil, fmt.Errorf("archive URL host %q: want http://host[:port]", e)
			}
			p.http[h] = true
		case strings.HasPrefix(e, "https://"):
			h := strings.TrimSuffix(strings.TrimPrefix(e, "https://"), "/")
			if h == "" || strings.ContainsAny(h, "/?#@") {
				return nil, fmt.Errorf("archive URL host %q: want host[:port]", e)
			}
			p.https[h] = true
		case strings.ContainsAny(e, "/?#@"):
			return nil, fmt.Errorf("archive URL host %q: want host[:port]", e)
		default:
			p.https[e] = true
		}
	}
	if len(p.https)+len(p.http) == 0 {
		return nil, errors.New("archive URL allow-list is empty")
	}
	return p, nil
}

// Check refuses a URL that is not https on an allowed host (or http on a host allowed so), or that carries
// user info. The error names scheme and host only (the query is a credential).
func (p *URLPolicy) Check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("unparsable URL: %w", ErrURLRefused)
	}
	return p.check(u)
}

func (p *URLPolicy) check(u *url.URL) error {
	host := strings.ToLower(u.Host)
	switch {
	case u.User != nil:
		return fmt.Errorf("URL with user info on %s: %w", host, ErrURLRefused)
	case u.Scheme == "https" && p.https[host]:
		return nil
	case u.Scheme == "http" && p.http[host]:
		return nil
	case u.Scheme == "http" && p.https[host]:
		return fmt.Errorf("plain http to %s (https required): %w", host, ErrURLRefused)
	}
	return fmt.Errorf("%s URL on host %q, not on the allow-list: %w", u.Scheme, host, ErrURLRefused)
}

// Client returns a copy of base (http.DefaultClient when nil) that refuses every redirect to another
// scheme or host than the request it answers, and to any URL the policy refuses: a signed URL's answer
// must come from the storage host it names.
func (p *URLPolicy) Client(base *http.Client) *http.Client {
	if base == nil {
		base = http.DefaultClient
	}
	c := *base
	c.CheckRedirect = sameorigin.CheckRedirect(ErrURLRefused, func(req *http.Request, via []*http.Request) error {
		if err := p.check(req.URL); err != nil {
			return err
		}
		if len(via) >= 5 {
			return fmt.Errorf("%d redirects on %s: %w", len(via), via[0].URL.Host, ErrURLRefused)
		}
		return nil
	})
	return &c
}

// ObjectPath is the file a signed URL names: its escaped path, without the query. Fresh URLs from a new
// state call are matched to the planned files by it (nothing documents that their order is stable).
func ObjectPath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" {
		return "", fmt.Errorf("signed URL without a path: %w", ErrURLRefused)
	}
	return u.EscapedPath(), nil
}
