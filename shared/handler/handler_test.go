package handler_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/oidcauth"
	"github.com/portability-pipeline/pipeline/shared/setup"
)

func newReset() *messages.ResetRequest { return &messages.ResetRequest{} }

// withLog gives env a logger that discards, unless it has one.
func withLog(env *setup.Env) *setup.Env {
	if env.Log == nil {
		env.Log = logging.New(io.Discard, "DEBUG")
	}
	return env
}

var errStep = errors.New("firestore unavailable")

func push(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestPubSub(t *testing.T) {
	t.Parallel()
	valid := messages.PushBody("s", "m-1", []byte(`{"v":1,"user":"u","round":"u~1"}`), nil)
	tests := []struct {
		name   string
		body   []byte
		step   error
		status int // 204: acknowledged; anything else: Pub/Sub delivers again, finally dead-letters
		ran    bool
	}{
		{"step succeeds", valid, nil, http.StatusNoContent, true},
		{"step drops", valid, handler.Drop("round %s is gone", "u~1"), http.StatusNoContent, true},
		{"wrapped drop", valid, errors.Join(errors.New("x"), handler.Drop("stale")), http.StatusNoContent, true},
		{"step fails", valid, errStep, http.StatusServiceUnavailable, true},
		{"malformed message", messages.PushBody("s", "m-2", []byte(`{"v":9,"user":"u","round":"r"}`), nil), nil, http.StatusBadRequest, false},
		{"unknown field", messages.PushBody("s", "m-3", []byte(`{"v":1,"user":"u","round":"r","job":"j"}`), nil), nil, http.StatusBadRequest, false},
		{"not a Pub/Sub push", []byte(`{"name":"object"}`), nil, http.StatusBadRequest, false},
		{"empty body", nil, nil, http.StatusBadRequest, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ran bool
			h := handler.PubSub(withLog(&setup.Env{}), "reset", newReset, func(ctx context.Context, m *messages.ResetRequest) error {
				ran = true
				if m.User != "u" || m.Round != "u~1" {
					t.Errorf("step got %+v", m)
				}
				return tc.step
			})
			w := httptest.NewRecorder()
			h(w, push(tc.body))
			if w.Code != tc.status {
				t.Errorf("answered %d, want %d", w.Code, tc.status)
			}
			if ran != tc.ran {
				t.Errorf("step ran: %v, want %v", ran, tc.ran)
			}
		})
	}
	t.Run("GET refused", func(t *testing.T) {
		w := httptest.NewRecorder()
		handler.PubSub(withLog(&setup.Env{}), "reset", newReset, nil)(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET answered %d", w.Code)
		}
	})
}

// TestPubSubConcurrentBurst: every push of a concurrent burst runs its step once and is answered. The
// functions framework's CloudEvent path can fail this (cloudevents/sdk-go#1224: a burst's last message can
// be left unhandled until another request comes), which is why the steps are registered through PubSub.
func TestPubSubConcurrentBurst(t *testing.T) {
	t.Parallel()
	const n = 2000
	var ran [n]atomic.Int32
	h := handler.PubSub(withLog(&setup.Env{}), "reset", newReset, func(ctx context.Context, m *messages.ResetRequest) error {
		i, err := strconv.Atoi(strings.TrimPrefix(m.User, "u"))
		if err != nil {
			return err
		}
		ran[i].Add(1)
		time.Sleep(time.Duration(i%3) * time.Millisecond)
		return nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			body := messages.PushBody("s", strconv.Itoa(i), fmt.Appendf(nil, `{"v":1,"user":"u%d","round":"u%d~1"}`, i, i), nil)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, bytes.NewReader(body))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Errorf("push %d: %v", i, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("push %d answered %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	for i := range ran {
		if got := ran[i].Load(); got != 1 {
			t.Errorf("push %d ran its step %d times", i, got)
		}
	}
}

// issuer is a minimal OIDC issuer with a key of the test's own, so it can sign tokens the fake will not
// (expired ones).
type issuer struct {
	url string
	key *rsa.PrivateKey
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.url, "jwks_uri": is.url + "/certs",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /certs", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	is.url = srv.URL
	return is
}

func (is *issuer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, is.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (is *issuer) token(t *testing.T, email, audience string, iat, exp time.Time) string {
	return is.sign(t, map[string]any{"iss": is.url, "aud": audience, "sub": "1234", "email": email, "email_verified": true,
		"iat": iat.Unix(), "exp": exp.Unix()})
}

func TestTask(t *testing.T) {
	t.Parallel()
	const (
		audience = "https://poll.example/PollTask"
		email    = "invoker@p.iam.gserviceaccount.com"
		body     = `{"v":1,"user":"u","round":"u~1"}`
	)
	fake := fakeportability.New(fakeportability.Options{})
	fakeSrv := httptest.NewServer(fake.Handler())
	t.Cleanup(fakeSrv.Close)
	other := fakeportability.New(fakeportability.Options{})
	otherSrv := httptest.NewServer(other.Handler())
	t.Cleanup(otherSrv.Close)
	own := newIssuer(t)

	fakeToken := func(iss, email, aud string) string {
		tok, err := fake.IDToken(iss, email, aud)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// A token through the fake's HTTP endpoint, as the Cloud Tasks stand-in gets it.
	resp, err := http.Post(fakeSrv.URL+"/fake/v1/idtoken", "application/json",
		strings.NewReader(`{"email":"`+email+`","audience":"`+audience+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		IDToken string `json:"id_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.IDToken == "" {
		t.Fatalf("idtoken endpoint: %v %+v", err, got)
	}
	otherTok, err := other.IDToken(otherSrv.URL, email, audience)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	tests := []struct {
		name   string
		issuer string // default: the fake
		method string
		auth   string
		body   string
		step   error
		want   int
		ran    bool
	}{
		{name: "valid token from the HTTP endpoint", auth: "Bearer " + got.IDToken, body: body, want: http.StatusNoContent, ran: true},
		{name: "valid token", auth: "Bearer " + fakeToken(fakeSrv.URL, email, audience), body: body, want: http.StatusNoContent, ran: true},
		{name: "step drops", auth: "Bearer " + got.IDToken, body: body, step: handler.Drop("stale job"), want: http.StatusNoContent, ran: true},
		{name: "step fails", auth: "Bearer " + got.IDToken, body: body, step: errStep, want: http.StatusServiceUnavailable, ran: true},
		{name: "malformed body", auth: "Bearer " + got.IDToken, body: `{"v":1,"user":"u"}`, want: http.StatusBadRequest},
		{name: "empty body", auth: "Bearer " + got.IDToken, body: ``, want: http.StatusBadRequest},
		{name: "GET", method: http.MethodGet, auth: "Bearer " + got.IDToken, want: http.StatusMethodNotAllowed},
		{name: "no Authorization", body: body, want: http.StatusUnauthorized},
		{name: "not a bearer token", auth: "Basic dTpw", body: body, want: http.StatusUnauthorized},
		{name: "empty bearer token", auth: "Bearer ", body: body, want: http.StatusUnauthorized},
		{name: "garbage token", auth: "Bearer not.a.jwt", body: body, want: http.StatusUnauthorized},
		{name: "token of another issuer", auth: "Bearer " + otherTok, body: body, want: http.StatusUnauthorized},
		{name: "token claiming our issuer, signed by another", auth: "Bearer " + mustIDToken(t, other, fakeSrv.URL, email, audience), body: body, want: http.StatusUnauthorized},
		{name: "wrong audience", auth: "Bearer " + fakeToken(fakeSrv.URL, email, "https://initiate.example/InitiateTask"), body: body, want: http.StatusUnauthorized},
		{name: "other service account", auth: "Bearer " + fakeToken(fakeSrv.URL, "intruder@p.iam.gserviceaccount.com", audience), body: body, want: http.StatusUnauthorized},
		{name: "own issuer: valid", issuer: own.url, auth: "Bearer " + own.token(t, email, audience, now, now.Add(time.Hour)), body: body, want: http.StatusNoContent, ran: true},
		{name: "own issuer: expired", issuer: own.url, auth: "Bearer " + own.token(t, email, audience, now.Add(-2*time.Hour), now.Add(-time.Hour)), body: body, want: http.StatusUnauthorized},
		{name: "own issuer: email not verified", issuer: own.url, auth: "Bearer " + own.sign(t, map[string]any{"iss": own.url, "aud": audience, "sub": "1",
			"email": email, "email_verified": false, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}), body: body, want: http.StatusUnauthorized},
		{name: "own issuer: alg none", issuer: own.url, auth: "Bearer " + unsigned(map[string]any{"iss": own.url, "aud": audience, "sub": "1",
			"email": email, "email_verified": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}), body: body, want: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			iss := tc.issuer
			if iss == "" {
				iss = fakeSrv.URL
			}
			var ran atomic.Bool
			h := handler.Task(withLog(&setup.Env{TaskAuth: oidcauth.New(iss, audience, email)}), "poll", newReset,
				func(ctx context.Context, m *messages.ResetRequest) error {
					ran.Store(true)
					if m.Round != "u~1" {
						t.Errorf("step got %+v", m)
					}
					return tc.step
				})
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, audience, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Errorf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.want)
			}
			if ran.Load() != tc.ran {
				t.Errorf("step ran: %v, want %v", ran.Load(), tc.ran)
			}
		})
	}
}

func mustIDToken(t *testing.T, s *fakeportability.Server, iss, email, aud string) string {
	t.Helper()
	tok, err := s.IDToken(iss, email, aud)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func unsigned(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// TestTaskIssuerDown: an unreachable issuer refuses the call; the task is tried again later.
func TestTaskIssuerDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := handler.Task(withLog(&setup.Env{TaskAuth: oidcauth.New(url, "aud", "e@x")}), "poll", newReset,
		func(context.Context, *messages.ResetRequest) error { t.Error("step ran"); return nil })
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"v":1,"user":"u","round":"r"}`))
	req.Header.Set("Authorization", "Bearer x.y.z")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code < 400 {
		t.Errorf("status %d with the issuer down", w.Code)
	}
}
