package sameorigin_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/sameorigin"
)

var errRefused = errors.New("refused")

func request(t *testing.T, raw string) *http.Request {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Request{URL: u}
}

func TestCheckRedirect(t *testing.T) {
	errNext := errors.New("next said no")
	for _, tc := range []struct {
		name, first, to string
		next            error
		want            error // nil: followed
	}{
		{"same host", "https://api.example.com/v1/a", "https://api.example.com/v1/b", nil, nil},
		{"host differs only in case", "https://api.example.com/a", "https://API.example.com/b", nil, nil},
		{"same host, next refuses", "https://api.example.com/a", "https://api.example.com/b", errNext, errNext},
		{"other host", "https://api.example.com/a", "https://evil.example.net/a?token=secret", nil, errRefused},
		{"other port", "https://api.example.com/a", "https://api.example.com:8443/a", nil, errRefused},
		{"down to http", "https://api.example.com/a", "http://api.example.com/a", nil, errRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := false
			check := sameorigin.CheckRedirect(errRefused, func(*http.Request, []*http.Request) error {
				asked = true
				return tc.next
			})
			err := check(request(t, tc.to), []*http.Request{request(t, tc.first)})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("redirect %s -> %s: %v, want %v", tc.first, tc.to, err, tc.want)
			}
			if refused := errors.Is(err, errRefused); asked == refused {
				t.Errorf("next asked: %v, refused: %v (next is asked exactly when the origin stays)", asked, refused)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("the error carries the redirect's query: %v", err)
			}
		})
	}
}
