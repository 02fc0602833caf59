// Package sameorigin is the pipeline's one rule for following HTTP redirects: a redirect may not leave the
// scheme and host of the first request. Both outbound clients use it: the Data Portability client (its
// transport adds the user's bearer token to every request, which a redirect elsewhere would hand to that
// host, or send in clear text) and the copy engine's signed-URL client (an archive must come from the
// storage host its signed URL names).
package sameorigin

import (
	"fmt"
	"net/http"
	"strings"
)

// CheckRedirect returns an http.Client CheckRedirect that refuses a redirect to another scheme or host than
// the first request's, with an error wrapping refused; a redirect that stays goes on to next (the client's
// own limits and checks), which must not be nil. The error names only the hosts: a redirect's query may
// hold credentials of its own.
func CheckRedirect(refused error, next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if first := via[0].URL; req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
			return fmt.Errorf("redirect from %s to %s://%s: %w", first.Host, req.URL.Scheme, req.URL.Host, refused)
		}
		return next(req, via)
	}
}
