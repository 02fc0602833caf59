package oauthcallback

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/resources"
	"github.com/portability-pipeline/pipeline/shared/startlink"
	"github.com/portability-pipeline/pipeline/shared/store"
)

func TestStartLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res := []string{"youtube.subscriptions", "myactivity.search"}
	edit := func(v url.Values, k, val string) url.Values {
		c, _ := url.ParseQuery(v.Encode())
		if val == "" {
			c.Del(k)
		} else {
			c.Set(k, val)
		}
		return c
	}
	good := f.link("sl-alice", 10*time.Minute, res...)
	tests := []struct {
		name string
		v    url.Values
		code int
		text string
	}{
		{"valid", good, http.StatusOK, "Continue to Google"},
		{"tampered user", edit(good, "user", "sl-mallory"), http.StatusForbidden, "This link is not valid"},
		{"tampered resources", edit(good, "resources", "myactivity.search,myactivity.youtube,youtube.subscriptions"), http.StatusForbidden, "This link is not valid"},
		{"expired", f.link("sl-alice", -time.Minute, res...), http.StatusForbidden, "This link has expired"},
		{"missing sig", edit(good, "sig", ""), http.StatusForbidden, "This link is not valid"},
		{"missing exp", edit(good, "exp", ""), http.StatusForbidden, "This link is not valid"},
		{"expiry too far ahead", f.link("sl-alice", 3*time.Hour, res...), http.StatusForbidden, "This link is not valid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(http.MethodGet, "/start?"+tc.v.Encode(), nil)
			assertPage(t, rec, tc.code, tc.text)
			// /authorize verifies again: a bad link never reaches Google nor Firestore.
			if tc.code != http.StatusOK {
				assertPage(t, f.do(http.MethodPost, "/authorize", tc.v), tc.code, tc.text)
				assertPage(t, f.do(http.MethodGet, "/authorize?"+tc.v.Encode(), nil), http.StatusMethodNotAllowed, "Start from the app")
			}
		})
	}
	// The start page names the resources and posts the same signed parameters to /authorize.
	body := f.do(http.MethodGet, "/start?"+good.Encode(), nil).Body.String()
	for _, want := range []string{`action="` + testPublicURL + `/authorize"`, `method="post"`, "myactivity.search", "youtube.subscriptions",
		`name="sig" value="` + good.Get("sig") + `"`, "one-time access", "time-based access"} {
		if !strings.Contains(body, want) {
			t.Errorf("start page lacks %q", want)
		}
	}
	if n := len(f.statesOf("sl-alice")) + len(f.statesOf("sl-mallory")); n != 0 {
		t.Errorf("%d oauth states stored by start pages and refused links, want 0", n)
	}
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, target := range []string{"/", "/nope", "/delete"} {
		assertPage(t, f.do(http.MethodGet, target, nil), http.StatusNotFound, "Page not found")
	}
	assertPage(t, f.do(http.MethodGet, "/status", nil), http.StatusForbidden, "Open your status page from the app")
	assertPage(t, f.do(http.MethodGet, "/status?user=a", nil), http.StatusForbidden, "This link is not valid")
}

// TestCSP checks that the page's only style is the one the CSP admits by hash, and that the form may go
// to the consent origin (Chrome checks form-action on the redirect after the post).
func TestCSP(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := f.do(http.MethodGet, "/start?"+f.link("csp-user", time.Minute, "myactivity.search").Encode(), nil)
	csp := rec.Header().Get("Content-Security-Policy")
	sum := sha256.Sum256([]byte(between(rec.Body.String(), "<style>", "</style>")))
	for _, want := range []string{"style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
		"form-action 'self' " + f.ts.URL, "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Count(rec.Body.String(), "<style") != 1 || strings.Contains(rec.Body.String(), "style=") || strings.Contains(rec.Body.String(), "<script") {
		t.Error("page has styles or scripts the CSP does not admit")
	}
}

func TestFullFlow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		access     string // picked on the consent page
		wantAccess string
	}{
		{"one-time", "one-time", store.AccessOneTime},
		{"time-based", "time-based-30d", store.AccessTimeBased},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			user := "flow-" + tc.name
			asked := []string{"myactivity.search", "youtube.subscriptions", "maps.reviews"}
			link := f.link(user, time.Hour, asked...)
			assertPage(t, f.do(http.MethodGet, "/start?"+link.Encode(), nil), http.StatusOK, "Continue to Google")

			consent := f.authorize(link)
			q := consent.Query()
			if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
				t.Errorf("PKCE: method %q challenge %q", q.Get("code_challenge_method"), q.Get("code_challenge"))
			}
			if q.Get("access_type") != "offline" || q.Get("prompt") != "consent" || q.Get("response_type") != "code" {
				t.Errorf("consent URL %s", consent)
			}
			if q.Has("include_granted_scopes") {
				t.Error("include_granted_scopes sent")
			}
			if q.Get("redirect_uri") != testPublicURL+"/callback" {
				t.Errorf("redirect_uri %q", q.Get("redirect_uri"))
			}
			scopes := strings.Fields(q.Get("scope"))
			var groups []string
			for _, s := range scopes {
				g, ok := resources.FromScope(s)
				if !ok {
					t.Errorf("scope %q is not a Data Portability scope", s)
				}
				groups = append(groups, g)
			}
			if slices.Sort(groups); !slices.Equal(groups, []string{"maps.reviews", "myactivity.search", "youtube.subscriptions"}) {
				t.Errorf("scopes for %v", groups)
			}

			// The state document holds the verifier sealed; it opens only with AD "pkce:"+id and matches the challenge.
			state := q.Get("state")
			id, ok := f.h.parseState(state)
			if !ok {
				t.Fatalf("state %q does not verify", state)
			}
			snap, err := fsClient.Collection("oauthStates").Doc(id).Get(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			sealed, _ := snap.DataAt("verifier")
			verifier, err := keyset.Decrypt(f.ctx, sealed.([]byte), []byte("pkce:"+id))
			if err != nil {
				t.Fatalf("open verifier: %v", err)
			}
			if sum := sha256.Sum256(verifier); base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
				t.Error("challenge is not S256 of the stored verifier")
			}
			if strings.Contains(string(sealed.([]byte)), string(verifier)) {
				t.Error("verifier stored in plaintext")
			}

			// Tick only two of the three resources.
			cb := f.consent(consent, "google-"+user, tc.access, "allow", "myactivity.search", "youtube.subscriptions")
			code := mustQuery(t, cb).Get("code")
			rec := f.do(http.MethodGet, cb, nil)
			assertPage(t, rec, http.StatusOK, "Your export has started")
			for _, want := range []string{tc.wantAccess, "myactivity.search", "youtube.subscriptions", "maps.reviews", "You did not allow"} {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("return page lacks %q", want)
				}
			}

			// Token: stored sealed; the raw document holds no token material.
			tok, err := f.env.Tokens.Load(f.ctx, user)
			if err != nil {
				t.Fatalf("load token: %v", err)
			}
			if tok.AccessToken == "" || tok.RefreshToken == "" {
				t.Fatalf("token %v lacks access or refresh token", tok.Type())
			}
			raw, err := fsClient.Collection("tokens").Doc(user).Get(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			rawJSON, _ := json.Marshal(raw.Data())
			for k := range raw.Data() {
				if k != "ciphertext" && k != "updatedAt" {
					t.Errorf("token document has field %q", k)
				}
			}
			ct, _ := raw.DataAt("ciphertext")
			for _, secret := range []string{tok.AccessToken, tok.RefreshToken, "ya29", "1//"} {
				if strings.Contains(string(rawJSON), secret) || strings.Contains(string(ct.([]byte)), secret) {
					t.Errorf("token document holds plaintext %q", secret[:4])
				}
			}

			// Grant and round.
			u, err := f.env.Store.GetUser(f.ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			rid := store.RoundID(user, 1)
			if u.State != "active" || u.CurrentRound != rid || u.Access != tc.wantAccess {
				t.Errorf("user %+v", u)
			}
			rs, err := f.env.Store.ListResources(f.ctx, rid)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]store.ResourceState{}
			for _, r := range rs {
				got[r.Name] = r.State
			}
			want := map[string]store.ResourceState{"myactivity.search": store.ResPending, "youtube.subscriptions": store.ResPending, "maps.reviews": store.ResNotGranted}
			if !maps.Equal(got, want) {
				t.Errorf("round resources %v, want %v", got, want)
			}

			// Exactly one InitiateRequest.
			msgs := f.pub.messages()
			if len(msgs) != 1 || msgs[0].Topic != "initiate-requests" {
				t.Fatalf("published %v", msgs)
			}
			var m messages.InitiateRequest
			if err := messages.Decode(msgs[0].Data, &m); err != nil || m.User != user || m.Round != rid || m.Resource != "" {
				t.Errorf("message %+v (%v)", m, err)
			}

			// The state is gone; the same callback again is refused and changes nothing.
			if n := len(f.statesOf(user)); n != 0 {
				t.Errorf("%d states left", n)
			}
			assertPage(t, f.do(http.MethodGet, cb, nil), http.StatusBadRequest, "This sign-in link was already used or has expired. Start again from the app.")
			if len(f.pub.messages()) != 1 {
				t.Error("replayed callback published again")
			}

			// No secret reached the logs.
			logs := f.logs.String()
			for name, secret := range map[string]string{"access token": tok.AccessToken, "refresh token": tok.RefreshToken,
				"code": code, "state": state, "state id": id, "verifier": string(verifier), "client secret": "fake-client-secret", "link key": testLinkKey} {
				if strings.Contains(logs, secret) {
					t.Errorf("logs contain the %s", name)
				}
			}
			if !strings.Contains(logs, `"round":"`+rid+`"`) || !strings.Contains(logs, `"severity":"INFO"`) {
				t.Errorf("logs lack the round or severity:\n%s", logs)
			}
		})
	}
}

func TestExpiredState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, state := f.h.newState()
	sealed, _ := keyset.Encrypt(f.ctx, []byte(oauth2.GenerateVerifier()), []byte("pkce:"+id))
	if err := f.env.Store.PutOAuthState(f.ctx, store.OAuthState{ID: id, User: "expired-user", Resources: []string{"myactivity.search"},
		Verifier: sealed, ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	rec := f.do(http.MethodGet, "/callback?"+url.Values{"state": {state}, "code": {"4/whatever"}}.Encode(), nil)
	assertPage(t, rec, http.StatusBadRequest, "This sign-in link was already used or has expired.")
	f.assertNothingStored("expired-user")
	if n := len(f.statesOf("expired-user")); n != 0 {
		t.Errorf("expired state not deleted")
	}
}

// TestForgedState uses a Firestore client whose endpoint counts connections: a state without a valid MAC
// must be refused before any Firestore call.
func TestForgedState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	// FIRESTORE_EMULATOR_HOST is set for the other tests; a connection option given later takes precedence.
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	counting, err := firestore.NewClient(f.ctx, testProject, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counting.Close() })
	env := *f.env
	env.Store = store.New(counting)
	h, err := NewHandler(&env)
	if err != nil {
		t.Fatal(err)
	}
	h.callbackTimeout = time.Second // the control below waits for the unreachable Firestore
	id, good := f.h.newState()
	other, _ := NewHandler(&env)
	otherKeys, _ := startlink.ParseKeyset("k1:another-start-link-key-0123456789abcdef")
	other.stateKeys, _ = deriveKeys(otherKeys, "oauth-state")
	_, foreign := other.newState()
	mac := good[strings.Index(good, ".")+1:]
	for name, state := range map[string]string{
		"no mac":            id,
		"bad mac":           id + "." + strings.Repeat("A", 43),
		"mac of another id": strings.Repeat("B", 43) + "." + mac,
		"other key":         foreign,
		"empty":             "",
		"garbage":           "../../etc/passwd",
		"short id":          "abc." + mac,
	} {
		rec := serve(h, "/callback?"+url.Values{"state": {state}, "code": {"4/x"}}.Encode())
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "This sign-in link is not valid") {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to Firestore for forged states, want 0", n)
	}
	// The control: a state with a valid MAC does reach Firestore.
	serve(h, "/callback?"+url.Values{"state": {good}, "code": {"4/x"}}.Encode())
	if conns.Load() == 0 {
		t.Error("a well-formed state did not reach Firestore: the counting endpoint does not work")
	}
}

// TestStateBindsUser: the grant goes to the user the state was made for, whoever completes the callback
// and whatever else the URL says; and a code cannot be paired with another flow's state (PKCE).
func TestStateBindsUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	asked := []string{"myactivity.search"}
	cbA := f.flow("bind-alice", "one-time", asked, asked)
	cbB := f.flow("bind-bob", "one-time", asked, asked)
	qa, qb := mustQuery(t, cbA), mustQuery(t, cbB)

	// Bob's code with Alice's state: Alice's verifier does not match Bob's challenge.
	swapped := url.Values{"state": {qa.Get("state")}, "code": {qb.Get("code")}}
	assertPage(t, f.do(http.MethodGet, "/callback?"+swapped.Encode(), nil), http.StatusBadRequest, "Google did not accept this sign-in")
	f.assertNothingStored("bind-alice")
	f.assertNothingStored("bind-bob")

	// The failed exchange used up Bob's code (as Google does). Bob's fresh callback, with an added user
	// parameter naming Alice: the round is Bob's.
	qb = mustQuery(t, f.flow("bind-bob", "one-time", asked, asked))
	qb.Set("user", "bind-alice")
	assertPage(t, f.do(http.MethodGet, "/callback?"+qb.Encode(), nil), http.StatusOK, "Your export has started")
	if _, err := f.env.Store.GetRound(f.ctx, store.RoundID("bind-bob", 1)); err != nil {
		t.Errorf("bob's round: %v", err)
	}
	if _, err := f.env.Store.GetUser(f.ctx, "bind-alice"); err == nil {
		t.Error("alice got a grant from bob's consent")
	}
}

// callbackCase is one row of the callback tables: a person of their own fixture consents to
// myactivity.search, before acts on what the callback will find, and the callback answers code with text.
type callbackCase struct {
	name   string
	before func(f *fixture, cb string)
	code   int
	text   string
	// after checks what the callback stored for user; nil: nothing.
	after func(t *testing.T, f *fixture, user string)
}

// runCallbacks runs each case in parallel; a case's user is prefix, a dash and its name.
func runCallbacks(t *testing.T, prefix string, tests []callbackCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			user := prefix + "-" + strings.ReplaceAll(tc.name, " ", "-")
			cb := f.flow(user, "one-time", []string{"myactivity.search"}, []string{"myactivity.search"})
			tc.before(f, cb)
			assertPage(t, f.do(http.MethodGet, cb, nil), tc.code, tc.text)
			if tc.after == nil {
				f.assertNothingStored(user)
				return
			}
			tc.after(t, f, user)
		})
	}
}

func TestVerifierProblems(t *testing.T) {
	t.Parallel()
	// seal replaces the PKCE verifier stored with the callback's state by what sealed gives for its ID.
	seal := func(sealed func(id string) []byte) func(f *fixture, cb string) {
		return func(f *fixture, cb string) {
			id, _ := f.h.parseState(mustQuery(f.t, cb).Get("state"))
			if _, err := fsClient.Collection("oauthStates").Doc(id).Update(f.ctx, []firestore.Update{{Path: "verifier", Value: sealed(id)}}); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	runCallbacks(t, "pkce", []callbackCase{
		{name: "wrong verifier", before: seal(func(id string) []byte {
			b, _ := keyset.Encrypt(t.Context(), []byte(oauth2.GenerateVerifier()), []byte("pkce:"+id))
			return b
		}), code: http.StatusBadRequest, text: "Google did not accept this sign-in"},
		{name: "verifier sealed for another state", before: seal(func(id string) []byte {
			b, _ := keyset.Encrypt(t.Context(), []byte(oauth2.GenerateVerifier()), []byte("pkce:other"))
			return b
		}), code: http.StatusServiceUnavailable, text: "Nothing was exported"},
		{name: "missing verifier", before: seal(func(string) []byte { return nil }), code: http.StatusServiceUnavailable, text: "Nothing was exported"},
	})
}

func TestConsentDenied(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cb := f.consent(f.authorize(f.link("deny-user", time.Hour, "myactivity.search")), "google-deny", "one-time", "deny")
	if mustQuery(t, cb).Get("error") != "access_denied" {
		t.Fatalf("callback %s", cb)
	}
	assertPage(t, f.do(http.MethodGet, cb, nil), http.StatusOK, "You did not allow access. Nothing was exported.")
	f.assertNothingStored("deny-user")
	// The state was consumed with the refusal.
	assertPage(t, f.do(http.MethodGet, cb, nil), http.StatusBadRequest, "already used or has expired")
}

func TestTokenForOtherScopes(t *testing.T) {
	t.Parallel()
	// granting adds extra to the scopes the token endpoint says it granted.
	granting := func(extra string) func(f *fixture, cb string) {
		return func(f *fixture, cb string) {
			f.tamperToken = func(m map[string]any) { m["scope"] = m["scope"].(string) + " " + extra }
		}
	}
	runCallbacks(t, "scope", []callbackCase{
		{name: "openid", before: granting("openid https://www.googleapis.com/auth/userinfo.email"), code: http.StatusBadRequest, text: "did not ask for"},
		{name: "portability scope not asked", before: granting(resources.Scope("maps.reviews")), code: http.StatusBadRequest, text: "did not ask for"},
		{name: "other API", before: granting("https://www.googleapis.com/auth/drive"), code: http.StatusBadRequest, text: "did not ask for"},
	})
}

func TestRunningRound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	asked := []string{"myactivity.search"}

	// A consent begun before the round started: the callback refuses it and keeps the running round's token.
	cb := f.flow("busy-user", "one-time", asked, asked)
	running := &oauth2.Token{AccessToken: "ya29.running-round", RefreshToken: "1//running-round", Expiry: time.Now().Add(time.Hour)}
	if err := f.env.Tokens.Save(f.ctx, "busy-user", running); err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Store.StartGrant(f.ctx, store.NewGrant{User: "busy-user", Access: store.AccessOneTime, Granted: asked}); err != nil {
		t.Fatal(err)
	}
	assertPage(t, f.do(http.MethodGet, cb, nil), http.StatusConflict, "An export is already running")
	tok, err := f.env.Tokens.Load(f.ctx, "busy-user")
	if err != nil || tok.RefreshToken != running.RefreshToken {
		t.Errorf("running round's token replaced (%v)", err)
	}
	if len(f.pub.messages()) != 0 {
		t.Error("published for a refused consent")
	}

	// New links are stopped before Google.
	link := f.link("busy-user", time.Hour, asked...)
	assertPage(t, f.do(http.MethodGet, "/start?"+link.Encode(), nil), http.StatusConflict, "An export is already running")
	// The start page's form never shows, so a post of the bare link lacks its CSRF token: refused too.
	if rec := f.do(http.MethodPost, "/authorize", link); rec.Code != http.StatusForbidden {
		t.Errorf("authorize for a user with a running round: %d", rec.Code)
	}
	if n := len(f.statesOf("busy-user")); n != 0 {
		t.Errorf("%d states stored for a user with a running round", n)
	}
}

// TestScopeBatching asks for all 73 groups: the consent URL takes the first batch that fits in 2000
// characters, and the return page offers a signed link for the rest.
func TestScopeBatching(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	all := resources.All()
	if len(all) != 73 {
		t.Fatalf("%d groups", len(all))
	}
	consent := f.authorize(f.link("batch-user", time.Hour, all...))
	if n := len(consent.String()); n > maxConsentURL {
		t.Errorf("consent URL has %d characters", n)
	}
	var batch []string
	for _, s := range strings.Fields(consent.Query().Get("scope")) {
		g, _ := resources.FromScope(s)
		batch = append(batch, g)
	}
	if len(batch) == 0 || len(batch) >= len(all) || !slices.Equal(batch, all[:len(batch)]) {
		t.Fatalf("batch %v is not a proper prefix of the groups", batch)
	}
	rest := all[len(batch):]
	states := f.statesOf("batch-user")
	if len(states) != 1 || len(states[0]["remaining"].([]any)) != len(rest) {
		t.Fatalf("state %v", states)
	}
	cb := f.consent(consent, "google-batch", "one-time", "allow", batch...)
	rec := f.do(http.MethodGet, cb, nil)
	assertPage(t, rec, http.StatusOK, "Continue with the remaining "+strconv.Itoa(len(rest))+" resources")
	rs, _ := f.env.Store.ListResources(f.ctx, store.RoundID("batch-user", 1))
	if len(rs) != len(batch) {
		t.Errorf("round has %d resources, want the batch of %d", len(rs), len(batch))
	}
	// The link on the page is a valid start link for exactly the remaining groups.
	href := testPublicURL + "/start?" + between(rec.Body.String(), `href="`+testPublicURL+"/start?", `"`)
	u, err := url.Parse(strings.ReplaceAll(href, "&amp;", "&"))
	if err != nil || !strings.HasPrefix(href, testPublicURL+"/start?") {
		t.Fatalf("link %q", href)
	}
	ks, _ := startlink.ParseKeyset(testLinkKey)
	l, err := startlink.Verify(ks, startlink.PurposeStart, u.Query(), time.Now(), startlink.MaxStartTTL)
	if err != nil || l.User != "batch-user" || !slices.Equal(l.Resources, rest) {
		t.Errorf("remaining link: %+v %v", l, err)
	}
}

// TestCallbackDependencyFails: the callback's publish of the initiate request and its access check at
// Google are retried; past the retries the person is told what happened, and what was stored says so:
// the round, ready for a replay, once the permission is recorded; nothing before.
func TestCallbackDependencyFails(t *testing.T) {
	t.Parallel()
	publishFails := func(first int) func(f *fixture, cb string) {
		return func(f *fixture, cb string) { f.pub.failFirst = first }
	}
	checkFails := func(count int) func(f *fixture, cb string) {
		return func(f *fixture, cb string) {
			if err := f.fake.InjectFault(fakeportability.Fault{Method: fakeportability.MethodCheck, Status: 503, Count: count}); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	// recorded: the round is recorded with its resource pending, ready for a replay, after published
	// initiate requests; with none, an ERROR log names the round for the operator's replay.
	recorded := func(published int) func(t *testing.T, f *fixture, user string) {
		return func(t *testing.T, f *fixture, user string) {
			if n := len(f.pub.messages()); n != published {
				t.Errorf("published %d, want %d", n, published)
			}
			r, err := f.env.Store.GetRound(f.ctx, store.RoundID(user, 1))
			if err != nil || r.State != store.RoundExporting {
				t.Fatalf("round %+v %v", r, err)
			}
			if published > 0 {
				return
			}
			logs := f.logs.String()
			if !strings.Contains(logs, `"severity":"ERROR"`) || !strings.Contains(logs, `"round":"`+store.RoundID(user, 1)+`"`) ||
				!strings.Contains(logs, "replay-initiate") {
				t.Errorf("no ERROR log naming the round:\n%s", logs)
			}
		}
	}
	runCallbacks(t, "dep", []callbackCase{
		{name: "publish transient", before: publishFails(2), code: http.StatusOK, text: "Your export has started", after: recorded(1)},
		{name: "publish down", before: publishFails(-1), code: http.StatusInternalServerError, text: "Your permission was recorded", after: recorded(0)},
		{name: "check transient", before: checkFails(1), code: http.StatusOK, text: "Your export has started", after: recorded(1)},
		{name: "check down", before: checkFails(10), code: http.StatusBadGateway, text: "Google could not be reached"},
	})
}

// --- small helpers -------------------------------------------------------------------------------

func serve(h http.Handler, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func mustQuery(t *testing.T, pathWithQuery string) url.Values {
	t.Helper()
	u, err := url.Parse(pathWithQuery)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// TestUnavailable: while its configuration is incomplete the function answers a clear 503 page (the root
// package serves it when NewHandler fails; its test checks that).
func TestUnavailable(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	Unavailable(rec, httptest.NewRequest(http.MethodGet, "/start", nil))
	assertPage(t, rec, http.StatusServiceUnavailable, "Please try again")
	if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("headers %v", rec.Header())
	}
}
