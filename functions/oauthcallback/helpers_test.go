package oauthcallback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/sethvargo/go-envconfig"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/logbuffer"
	"github.com/portability-pipeline/pipeline/shared/config"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/startlink"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

const (
	testLinkSecret = "test-start-link-key-0123456789abcdef"
	testLinkKey    = "k1:" + testLinkSecret // START_LINK_KEY: a keyset of one key, ID k1
	testPublicURL  = "https://pipeline.example/fn"
	testBucket     = "oauthcallback-archives"
)

// testKey is the key the app signs with.
var testKey = startlink.Key{ID: "k1", Secret: []byte(testLinkSecret)}

// gcsClient is a client on one in-process fake-gcs-server with the test bucket, shared by the tests
// (each uses its own user IDs, so its own object names).
var gcsClient = func() func(t *testing.T) *storage.Client {
	var once sync.Once
	var client *storage.Client
	var err error
	return func(t *testing.T) *storage.Client {
		once.Do(func() {
			var srv *fakestorage.Server
			srv, err = fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", NoListener: true})
			if err != nil {
				return
			}
			srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: testBucket})
			client, err = storage.NewClient(context.Background(), option.WithHTTPClient(srv.HTTPClient()),
				option.WithoutAuthentication(), storage.WithJSONReads())
		})
		if err != nil {
			t.Fatalf("fake-gcs-server: %v", err)
		}
		return client
	}
}()

// published is one message the recording publisher got.
type published struct {
	Topic string
	Data  []byte
}

// recPublisher records messages; it fails the first failFirst calls (all calls with failFirst < 0).
type recPublisher struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	msgs      []published
	events    []published
}

func (p *recPublisher) Publish(_ context.Context, topic string, m messages.Validator) error {
	data, err := messages.Encode(m)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.failFirst < 0 || p.calls <= p.failFirst {
		return errors.New("pubsub unavailable (injected)")
	}
	p.msgs = append(p.msgs, published{topic, data})
	return nil
}

// PublishEvent takes the export events (the delete action's user.purged) and keeps them apart.
func (p *recPublisher) PublishEvent(_ context.Context, topic, _ string, data []byte, _ map[string]string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, published{topic, data})
	return nil
}

func (p *recPublisher) messages() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]published(nil), p.msgs...)
}

// fixture is one handler under test, wired to the shared Firestore emulator, a fresh Data Portability
// fake (OAuth server and API) and a recording publisher.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	h    *Handler
	env  *setup.Env
	fake *fakeportability.Server
	ts   *httptest.Server
	pub  *recPublisher
	logs *logbuffer.Buffer
	// b is the browser f.do and f.authorize use.
	b *browser
	// exps are the expiry times of the links signed.
	exps map[int64]bool
	// tamperToken, when set, edits the token endpoint's JSON answer.
	tamperToken func(map[string]any)
	mu          sync.Mutex
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with environment variables added or replaced.
func newFixtureWith(t *testing.T, env map[string]string) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), fake: fakeportability.New(fakeportability.Options{}), pub: &recPublisher{}, logs: &logbuffer.Buffer{}}
	f.ts = httptest.NewServer(http.HandlerFunc(f.serveFake))
	t.Cleanup(f.ts.Close)
	vars := map[string]string{
		"PROJECT_ID":           testProject,
		"OAUTH_CLIENT_ID":      "fake-client-id",
		"OAUTH_CLIENT_SECRET":  "fake-client-secret",
		"OAUTH_AUTH_URL":       f.ts.URL + "/o/oauth2/v2/auth",
		"OAUTH_TOKEN_URL":      f.ts.URL + "/token",
		"PORTABILITY_ENDPOINT": f.ts.URL + "/",
		"PUBLIC_URL":           testPublicURL,
		"START_LINK_KEY":       testLinkKey,
		"BUCKET":               testBucket,
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.LoadFrom(f.ctx, envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(fsClient)
	f.env = &setup.Env{
		Config: cfg, Log: logging.New(f.logs, "DEBUG"), Store: st, Crypto: keyset, Publisher: f.pub,
		Tokens: tokens.NewStore(fsClient, keyset, setup.OAuthConfig(cfg)), Storage: gcsClient(t),
	}
	f.env.API = setup.APIWithTokens(cfg.PortabilityEndpoint, f.env.Tokens)
	if f.h, err = NewHandler(f.env); err != nil {
		t.Fatal(err)
	}
	f.h.retryDelays = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	f.b = f.newBrowser()
	return f
}

// publicURL is the function's PUBLIC_URL in this fixture.
func (f *fixture) publicURL() string { return strings.TrimRight(f.env.Config.OAuth.PublicURL, "/") }

// serveFake passes requests to the fake, letting a test edit the token answer.
func (f *fixture) serveFake(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	tamper := f.tamperToken
	f.mu.Unlock()
	if r.URL.Path != "/token" || tamper == nil {
		f.fake.Handler().ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	f.fake.Handler().ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &body) == nil {
		tamper(body)
		b, _ := json.Marshal(body)
		rec.Body = bytes.NewBuffer(b)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// link signs a start link valid for about ttl.
func (f *fixture) link(user string, ttl time.Duration, res ...string) url.Values {
	return startlink.Sign(testKey, startlink.Link{User: user, Resources: res, Purpose: startlink.PurposeStart, Expires: f.expiry(ttl)})
}

// expiry is now+ttl, a few seconds earlier when a link of the fixture already expires then: a link is
// spent by its signature, and two links of one user signed in the same second would be the same link.
func (f *fixture) expiry(ttl time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exps == nil {
		f.exps = map[int64]bool{}
	}
	exp := time.Now().Add(ttl).Unix()
	for f.exps[exp] {
		exp--
	}
	f.exps[exp] = true
	return time.Unix(exp, 0)
}

// do serves one request by the handler in the fixture's browser and checks the headers every answer
// must carry.
func (f *fixture) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	f.t.Helper()
	rec := f.b.do(method, target, form)
	for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := rec.Header().Get(k); got != want {
			f.t.Errorf("%s %s: header %s = %q, want %q", method, target, k, got, want)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		f.t.Errorf("%s %s: CSP %q", method, target, csp)
	}
	return rec
}

// authorize opens a start link's page in the fixture's browser, presses Continue, and returns the
// consent URL /authorize redirects to.
func (f *fixture) authorize(v url.Values) *url.URL {
	f.t.Helper()
	return f.b.authorize(v)
}

var requestIDField = regexp.MustCompile(`name="request_id" value="([^"]+)"`)

// consent opens the fake's consent page, as a browser would, and posts its form with the given choice.
// It returns the callback path (with query) the fake redirects to.
func (f *fixture) consent(consentURL *url.URL, account, access, action string, tick ...string) string {
	f.t.Helper()
	resp, err := http.Get(consentURL.String())
	if err != nil {
		f.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("consent page: %d %s", resp.StatusCode, page)
	}
	m := requestIDField.FindSubmatch(page)
	if m == nil {
		f.t.Fatalf("no request_id on the consent page:\n%s", page)
	}
	form := url.Values{"request_id": {string(m[1])}, "account": {account}, "access": {access}, "action": {action}, "resource": tick}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.PostForm(f.ts.URL+"/o/oauth2/v2/auth/consent", form)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		f.t.Fatalf("consent answer: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.HasPrefix(loc.String(), f.publicURL()+"/callback?") {
		f.t.Fatalf("redirect to %s, want the callback", loc)
	}
	return "/callback?" + loc.RawQuery
}

// flow runs start link → authorize → consent and returns the callback path.
func (f *fixture) flow(user, access string, asked, tick []string) string {
	f.t.Helper()
	return f.consent(f.authorize(f.link(user, time.Hour, asked...)), "google-"+user, access, "allow", tick...)
}

// statesOf returns the pending oauthStates documents of a user.
func (f *fixture) statesOf(user string) []map[string]any {
	f.t.Helper()
	snaps, err := fsClient.Collection("oauthStates").Where("user", "==", user).Documents(f.ctx).GetAll()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []map[string]any
	for _, s := range snaps {
		out = append(out, s.Data())
	}
	return out
}

// assertNothingStored checks that no token, user or round exists for user and nothing was published.
func (f *fixture) assertNothingStored(user string) {
	f.t.Helper()
	if _, err := fsClient.Collection("tokens").Doc(user).Get(f.ctx); err == nil {
		f.t.Errorf("a token was stored for %s", user)
	}
	if _, err := f.env.Store.GetUser(f.ctx, user); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("user %s: %v, want not found", user, err)
	}
	if _, err := f.env.Store.GetRound(f.ctx, store.RoundID(user, 1)); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("round of %s: %v, want not found", user, err)
	}
	if n := len(f.pub.messages()); n != 0 {
		f.t.Errorf("%d messages published, want none", n)
	}
}

func assertPage(t *testing.T, rec *httptest.ResponseRecorder, code int, text string) {
	t.Helper()
	if rec.Code != code || !strings.Contains(rec.Body.String(), text) {
		t.Fatalf("got %d, want %d with %q:\n%s", rec.Code, code, text, rec.Body)
	}
}
