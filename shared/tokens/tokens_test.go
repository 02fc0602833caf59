package tokens_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/crypto"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// These tests need the Firestore emulator (FIRESTORE_EMULATOR_HOST, see pipelinetest.Main).
func TestMain(m *testing.M) { os.Exit(pipelinetest.Main(m)) }

// env is one isolated token store: its own Firestore project, keyset and fake (the token endpoint).
type env struct {
	ctx        context.Context
	fs         *firestore.Client
	store      *tokens.Store
	fake       *fakeportability.Server
	url        string
	tokenCalls atomic.Int32
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{ctx: ctx, fake: fakeportability.New(fakeportability.Options{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			e.tokenCalls.Add(1)
		}
		e.fake.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	fs, err := firestore.NewClient(ctx, fmt.Sprintf("tokens-%x", rand.Uint64()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	e.fs = fs
	enc, _, err := crypto.GenerateLocal()
	if err != nil {
		t.Fatal(err)
	}
	e.store = tokens.NewStore(fs, enc, &oauth2.Config{ClientID: "fake-client-id", ClientSecret: "fake-client-secret",
		Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}})
	return e
}

// grant consents at the fake and returns the token as the pipeline stores it, expiring at expiry.
func (e *env) grant(t *testing.T, user string, expiry time.Time) *oauth2.Token {
	t.Helper()
	tr, err := e.fake.Grant(fakeportability.GrantRequest{User: user, Resources: []string{"myactivity.search"}, Access: "one-time"})
	if err != nil {
		t.Fatal(err)
	}
	return &oauth2.Token{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, TokenType: "Bearer", Expiry: expiry}
}

func (e *env) save(t *testing.T, user string, tok *oauth2.Token) {
	t.Helper()
	if err := e.store.Save(e.ctx, user, tok); err != nil {
		t.Fatal(err)
	}
}

func (e *env) load(t *testing.T, user string) *oauth2.Token {
	t.Helper()
	tok, err := e.store.Load(e.ctx, user)
	if err != nil {
		t.Fatalf("Load(%s): %v", user, err)
	}
	return tok
}

func TestSaveLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := e.grant(t, "alice", time.Now().Add(time.Hour).Round(time.Second))
	e.save(t, "alice", want)
	got := e.load(t, "alice")
	if got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken || got.TokenType != want.TokenType || !got.Expiry.Equal(want.Expiry) {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	// Save replaces.
	next := &oauth2.Token{AccessToken: "ya29.next", RefreshToken: want.RefreshToken, Expiry: want.Expiry}
	e.save(t, "alice", next)
	if got := e.load(t, "alice"); got.AccessToken != "ya29.next" {
		t.Errorf("after a second Save: access token %q", got.AccessToken)
	}
}

// TestNoPlaintext reads the raw document: neither token may appear in it.
func TestNoPlaintext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.grant(t, "bob", time.Now().Add(time.Hour))
	e.save(t, "bob", tok)
	snap, err := e.fs.Collection(tokens.Collection).Doc("bob").Get(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw := snap.Data()
	ct, ok := raw["ciphertext"].([]byte)
	if !ok || len(ct) == 0 {
		t.Fatalf("document has no ciphertext bytes: %v", raw)
	}
	dump, err := json.Marshal(raw) // []byte fields come out as base64, strings as themselves
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	all.Write(ct)
	all.Write(dump)
	fmt.Fprintf(&all, "%v", raw)
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken, "ya29.", "1//"} {
		if bytes.Contains(all.Bytes(), []byte(secret)) {
			t.Errorf("the stored document holds %q in plaintext", secret)
		}
	}
	for k := range raw {
		if k != "ciphertext" && k != "updatedAt" {
			t.Errorf("unexpected field %q in the token document", k)
		}
	}
}

// TestBoundToUser copies alice's ciphertext to carol's document: it must not decrypt as carol's.
func TestBoundToUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.save(t, "alice", e.grant(t, "alice", time.Now().Add(time.Hour)))
	e.save(t, "carol", e.grant(t, "carol", time.Now().Add(time.Hour)))
	snap, err := e.fs.Collection(tokens.Collection).Doc("alice").Get(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fs.Collection(tokens.Collection).Doc("carol").Set(e.ctx, map[string]any{"ciphertext": snap.Data()["ciphertext"], "updatedAt": time.Now()}); err != nil {
		t.Fatal(err)
	}
	if tok, err := e.store.Load(e.ctx, "carol"); err == nil {
		t.Fatalf("alice's ciphertext loaded as carol's token %q", tok.AccessToken)
	} else if errors.Is(err, tokens.ErrNoToken) {
		t.Fatalf("Load = %v, want a decryption error", err)
	}
	if _, err := e.store.Client(e.ctx, "carol"); err == nil {
		t.Error("Client built from a foreign ciphertext")
	}
	e.load(t, "alice") // still fine where it belongs
}

func TestNoToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.store.Load(e.ctx, "nobody"); !errors.Is(err, tokens.ErrNoToken) {
		t.Errorf("Load = %v, want ErrNoToken", err)
	}
	if _, err := e.store.Client(e.ctx, "nobody"); !errors.Is(err, tokens.ErrNoToken) {
		t.Errorf("Client = %v, want ErrNoToken", err)
	}
}

func TestDeleteIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.save(t, "dave", e.grant(t, "dave", time.Now().Add(time.Hour)))
	for i := range 3 {
		if err := e.store.Delete(e.ctx, "dave"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		if _, err := e.store.Load(e.ctx, "dave"); !errors.Is(err, tokens.ErrNoToken) {
			t.Fatalf("Load after Delete #%d = %v, want ErrNoToken", i+1, err)
		}
	}
	if err := e.store.Delete(e.ctx, "never-stored"); err != nil {
		t.Errorf("Delete of a user without a token: %v", err)
	}
}

// TestExpiredTokenRefreshed: a locally expired token is refreshed before the call, and the new token is
// stored (the refresh token kept, since Google does not rotate it).
func TestExpiredTokenRefreshed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old := e.grant(t, "erin", time.Now().Add(-time.Minute))
	e.save(t, "erin", old)
	hc, err := e.store.Client(e.ctx, "erin")
	if err != nil {
		t.Fatal(err)
	}
	api, err := portability.New(e.ctx, e.url+"/", hc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CheckAccess(e.ctx); err != nil {
		t.Fatalf("call with a refreshed token: %v", err)
	}
	if n := e.tokenCalls.Load(); n != 1 {
		t.Errorf("%d token calls, want 1 refresh", n)
	}
	got := e.load(t, "erin")
	if got.AccessToken == old.AccessToken {
		t.Error("the refreshed access token was not stored")
	}
	if got.RefreshToken != old.RefreshToken {
		t.Errorf("refresh token %q stored, want the original one kept", got.RefreshToken)
	}
	if !got.Valid() {
		t.Errorf("stored token is not valid: expiry %v", got.Expiry)
	}
	// The next calls use the refreshed token without refreshing again.
	for range 3 {
		if _, err := api.CheckAccess(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.tokenCalls.Load(); n != 1 {
		t.Errorf("%d token calls after more requests, want still 1", n)
	}
}

// TestExpiredWithoutRefreshToken: an expired token without a refresh token fails the call.
func TestExpiredWithoutRefreshToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.save(t, "finn", &oauth2.Token{AccessToken: "ya29.old", Expiry: time.Now().Add(-time.Minute)})
	hc, err := e.store.Client(e.ctx, "finn")
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := hc.Get(e.url + "/v1/whatever"); err == nil {
		resp.Body.Close()
		t.Fatal("request went out with an expired token")
	}
}

// apiServer answers 401 to the tokens it refuses and records who called with which body.
type apiServer struct {
	refuse func(auth string) bool
	mu     sync.Mutex
	calls  []string // "Authorization body"
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	a.mu.Lock()
	a.calls = append(a.calls, auth+" "+string(body))
	a.mu.Unlock()
	if a.refuse(auth) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{}`)
}

// TestRefreshOn401: a token still valid locally but refused by the API (revoked early, clock skew) is
// refreshed once, the request repeated once with the same body, and the new token stored; a refusal of
// the new token too goes back to the caller (no loop).
func TestRefreshOn401(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		refuseAll bool // the API refuses the refreshed token too
		wantCode  int
	}{
		{"replay succeeds", false, http.StatusOK},
		{"replay refused too", true, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			old := e.grant(t, "gina", time.Now().Add(time.Hour))
			e.save(t, "gina", old)
			api := &apiServer{refuse: func(auth string) bool { return tc.refuseAll || auth == "Bearer "+old.AccessToken }}
			srv := httptest.NewServer(api)
			t.Cleanup(srv.Close)
			hc, err := e.store.Client(e.ctx, "gina")
			if err != nil {
				t.Fatal(err)
			}
			const body = `{"resources":["x"]}`
			resp, err := hc.Post(srv.URL+"/v1/portabilityArchive:initiate", "application/json", bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if n := e.tokenCalls.Load(); n != 1 {
				t.Errorf("%d refreshes, want exactly 1", n)
			}
			api.mu.Lock()
			calls := append([]string(nil), api.calls...)
			api.mu.Unlock()
			if len(calls) != 2 {
				t.Fatalf("API saw %d requests, want 2 (the request and one replay): %q", len(calls), calls)
			}
			if calls[0] != "Bearer "+old.AccessToken+" "+body {
				t.Errorf("first request %q", calls[0])
			}
			stored := e.load(t, "gina")
			if stored.AccessToken == old.AccessToken {
				t.Error("the refreshed token was not stored")
			}
			if calls[1] != "Bearer "+stored.AccessToken+" "+body {
				t.Errorf("replay %q, want the stored new token and the same body", calls[1])
			}
		})
	}
}

// TestRefreshFailedLogged: a refused refresh (the person removed the app: invalid_grant) logs one
// "token.refresh_failed" line with reason="invalid_grant", the name a log-based metric counts, and never
// the token; the call fails as unauthorized, so the step ends the resource instead of retrying.
func TestRefreshFailedLogged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old := e.grant(t, "gail", time.Now().Add(-time.Minute))
	e.save(t, "gail", old)
	if err := e.fake.InjectFault(fakeportability.Fault{Method: fakeportability.MethodToken, Status: 400}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ctx := logging.WithLogger(e.ctx, logging.New(&logs, "DEBUG"))
	hc, err := e.store.Client(ctx, "gail")
	if err != nil {
		t.Fatal(err)
	}
	api, err := portability.New(ctx, e.url+"/", hc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.CheckAccess(ctx)
	if portability.KindOf(err) != portability.KindUnauthorized {
		t.Fatalf("call after invalid_grant: %v (kind %v), want unauthorized", err, portability.KindOf(err))
	}
	var found int
	for _, line := range bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["message"] == "token.refresh_failed" {
			found++
			if rec["reason"] != "invalid_grant" {
				t.Errorf("token.refresh_failed reason = %v, want invalid_grant", rec["reason"])
			}
		}
	}
	if found != 1 {
		t.Errorf("%d token.refresh_failed lines, want 1:\n%s", found, logs.String())
	}
	if bytes.Contains(logs.Bytes(), []byte(old.RefreshToken)) || bytes.Contains(logs.Bytes(), []byte(old.AccessToken)) {
		t.Error("a token reached the log")
	}
}
