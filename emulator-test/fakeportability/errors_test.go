package fakeportability

import (
	"net/http"
	"testing"
)

// The pipeline classifies a fault by its google.rpc status and reason, so each injected HTTP code must
// carry the status Google pairs with it.
func TestErrInjectedCarriesGoogleStatus(t *testing.T) {
	cases := []struct {
		code           int
		status, reason string
	}{
		{http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED"},
		{http.StatusServiceUnavailable, "UNAVAILABLE", ""},
		{http.StatusInternalServerError, "INTERNAL", ""},
		{http.StatusGatewayTimeout, "DEADLINE_EXCEEDED", ""},
		{http.StatusBadRequest, "INVALID_ARGUMENT", ""},
		{http.StatusForbidden, "PERMISSION_DENIED", ""},
		{http.StatusUnauthorized, "UNAUTHENTICATED", ""},
		{http.StatusNotFound, "NOT_FOUND", ""},
		{http.StatusConflict, "ALREADY_EXISTS", ""},
		{http.StatusTeapot, "UNKNOWN", ""},
	}
	for _, c := range cases {
		e := errInjected(c.code)
		if e.code != c.code || e.status != c.status || e.reason != c.reason {
			t.Errorf("errInjected(%d) = code %d status %q reason %q, want status %q reason %q",
				c.code, e.code, e.status, e.reason, c.status, c.reason)
		}
	}
}
