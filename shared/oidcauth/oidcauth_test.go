package oidcauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/shared/oidcauth"
)

const (
	audience = "https://poll.example/PollTask"
	email    = "invoker@p.iam.gserviceaccount.com"
)

// flakyIssuer is the fake's OIDC issuer behind a switch: while down, its discovery document and its keys
// answer 503, as an issuer does during an outage.
type flakyIssuer struct {
	url        string
	fake       *fakeportability.Server
	discovery  atomic.Bool // discovery document down
	keys       atomic.Bool // JWKS down
	discovered atomic.Int32
	failFirst  atomic.Int32 // the first failFirst discovery fetches fail, whatever the switch says
}

// newFlakyIssuer starts an issuer, up, and returns it with a Verifier of the task calls it signs (issuer,
// audience and email): a cold instance that has not fetched the discovery document yet.
func newFlakyIssuer(t *testing.T) (*flakyIssuer, *oidcauth.Verifier) {
	t.Helper()
	is := &flakyIssuer{fake: fakeportability.New(fakeportability.Options{})}
	h := is.fake.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/openid-configuration"):
			if n := is.discovered.Add(1); is.discovery.Load() || n <= is.failFirst.Load() {
				// Slow as well as failing, so that concurrent first calls overlap.
				time.Sleep(20 * time.Millisecond)
				http.Error(w, "issuer down", http.StatusServiceUnavailable)
				return
			}
		case strings.HasSuffix(r.URL.Path, "/certs") && is.keys.Load():
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	is.url = srv.URL
	return is, oidcauth.New(is.url, audience, email)
}

func (is *flakyIssuer) token(t *testing.T) string {
	t.Helper()
	tok, err := is.fake.IDToken(is.url, email, audience)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends one task call through Require and returns the status it got.
func call(v *oidcauth.Verifier, token string) int {
	h := v.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	req := httptest.NewRequest(http.MethodPost, audience, strings.NewReader("{}"))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

// callTogether makes n calls at once (held back until all are started, so that they overlap) and returns
// the status of each.
func callTogether(v *oidcauth.Verifier, token string, n int) []int {
	got := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i] = call(v, token)
		})
	}
	close(start)
	wg.Wait()
	return got
}

// TestRecoversAfterIssuerOutage: a failed discovery is not remembered. While the issuer is down a call is
// answered 503 (Cloud Tasks tries again), and once it is back the same instance admits valid tokens.
func TestRecoversAfterIssuerOutage(t *testing.T) {
	t.Parallel()
	is, v := newFlakyIssuer(t)
	tok := is.token(t)

	is.discovery.Store(true)
	for range 2 {
		if got := call(v, tok); got != http.StatusServiceUnavailable {
			t.Errorf("issuer down: status %d, want 503", got)
		}
	}
	is.discovery.Store(false)
	if got := call(v, tok); got != http.StatusNoContent {
		t.Fatalf("issuer back: status %d, want 204", got)
	}
	if got := call(v, "not.a.jwt"); got != http.StatusUnauthorized {
		t.Errorf("bad token with the issuer up: status %d, want 401", got)
	}
	// Discovery succeeded once and is kept: later calls do not fetch it again.
	before := is.discovered.Load()
	for range 3 {
		call(v, tok)
	}
	if n := is.discovered.Load() - before; n != 0 {
		t.Errorf("discovery fetched %d more times after it succeeded", n)
	}
}

// TestKeysDown: the discovery document is cached but the issuer's keys cannot be fetched (a key rotation
// during an outage): that is issuer trouble, not a bad token.
func TestKeysDown(t *testing.T) {
	t.Parallel()
	is, v := newFlakyIssuer(t)
	is.keys.Store(true)
	if got := call(v, is.token(t)); got != http.StatusServiceUnavailable {
		t.Errorf("keys down: status %d, want 503", got)
	}
	is.keys.Store(false)
	if got := call(v, is.token(t)); got != http.StatusNoContent {
		t.Errorf("keys back: status %d, want 204", got)
	}
}

// TestConcurrentFirstCalls: many calls arrive on a cold instance while the issuer fails for its first fetch;
// run with -race. Every call gets 503 or 204, and once the issuer is up every call is admitted.
func TestConcurrentFirstCalls(t *testing.T) {
	t.Parallel()
	is, v := newFlakyIssuer(t)
	is.failFirst.Store(1)
	tok := is.token(t)

	for i, got := range callTogether(v, tok, 32) {
		if got != http.StatusServiceUnavailable && got != http.StatusNoContent {
			t.Errorf("call %d: status %d, want 503 or 204", i, got)
		}
	}
	if got := call(v, tok); got != http.StatusNoContent {
		t.Errorf("after the outage: status %d, want 204", got)
	}
}

// TestOutageSharesOneFetch: calls that queue behind a failing discovery share its answer instead of each
// fetching again in turn (an issuer that hangs would otherwise cost one timeout per queued task).
func TestOutageSharesOneFetch(t *testing.T) {
	t.Parallel()
	is, v := newFlakyIssuer(t)
	tok := is.token(t)
	is.discovery.Store(true)
	for _, got := range callTogether(v, tok, 16) {
		if got != http.StatusServiceUnavailable {
			t.Errorf("issuer down: status %d, want 503", got)
		}
	}
	// Each failing fetch takes 20 ms; the 16 calls arrive within a few of them.
	if n := is.discovered.Load(); n > 4 {
		t.Errorf("%d discovery fetches for 16 concurrent calls during an outage, want at most 4", n)
	}
}

// TestBadTokens: with the issuer up, every kind of bad token is 401, never 503.
func TestBadTokens(t *testing.T) {
	t.Parallel()
	is, v := newFlakyIssuer(t)
	other, _ := newFlakyIssuer(t)
	wrongAud, err := is.fake.IDToken(is.url, email, "https://other.example/")
	if err != nil {
		t.Fatal(err)
	}
	wrongEmail, err := is.fake.IDToken(is.url, "intruder@p.iam.gserviceaccount.com", audience)
	if err != nil {
		t.Fatal(err)
	}
	// Signed by another key, claiming our issuer: its key ID is unknown, so the keys are fetched again
	// and still do not match.
	forged, err := other.fake.IDToken(is.url, email, audience)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"none": "", "garbage": "not.a.jwt", "audience": wrongAud,
		"email": wrongEmail, "other issuer": other.token(t), "forged": forged} {
		if got := call(v, tok); got != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, got)
		}
	}
}
