package portability_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline/shared/portability"
)

const userToken = "ya29.user-access-token"

// recorder is a server that notes the Authorization header of every request it gets.
type recorder struct {
	mu    sync.Mutex
	auths []string
	srv   *httptest.Server
}

func newRecorder(t *testing.T, h http.Handler) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.auths = append(rec.auths, r.Header.Get("Authorization"))
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) seen() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.auths...)
}

// bearerClient adds the user's token on every request it sends, as the token store's client and the
// callback's oauth2 client do.
func bearerClient() *http.Client {
	return oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: userToken}))
}

var answerEmpty = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
})

// TestRedirectToAnotherHostKeepsTheToken: an API answer that redirects to another host is not followed,
// so that host never receives the user's bearer token; the call fails with a retryable error that names
// neither the token nor the redirect's query.
func TestRedirectToAnotherHostKeepsTheToken(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			other := newRecorder(t, answerEmpty)
			api := newRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.srv.URL+r.URL.Path+"?sig=secret", code)
			}))
			c := newClient(t, api.srv.URL+"/", bearerClient())
			err := c.Reset(context.Background())
			if got := other.seen(); len(got) != 0 {
				t.Errorf("the other host got %d requests (Authorization %q)", len(got), got)
			}
			if err == nil {
				t.Fatal("reset through a cross-host redirect succeeded")
			}
			if got := api.seen(); len(got) != 1 || got[0] != "Bearer "+userToken {
				t.Errorf("the API got Authorization %q, want one request with the token", got)
			}
			if e := asError(t, err); e.Kind != portability.KindRetry || !strings.Contains(e.Message, "redirect") {
				t.Errorf("got %s %q, want retry naming the redirect", e.Kind, e.Message)
			}
			noQuery(t, err)
			if strings.Contains(err.Error(), userToken) {
				t.Errorf("error %q holds the token", err)
			}
		})
	}
}

// TestRedirectSameHost: a redirect within the API's own host is followed with the token, as before.
func TestRedirectSameHost(t *testing.T) {
	t.Parallel()
	var api *recorder
	api = newRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/moved/") {
			http.Redirect(w, r, api.srv.URL+"/moved"+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		answerEmpty(w, r)
	}))
	c := newClient(t, api.srv.URL+"/", bearerClient())
	if err := c.Reset(context.Background()); err != nil {
		t.Fatalf("reset through a same-host redirect: %v", err)
	}
	if got := api.seen(); len(got) != 2 || got[0] != "Bearer "+userToken || got[1] != "Bearer "+userToken {
		t.Errorf("the API got Authorization %q, want the token twice", got)
	}
}
