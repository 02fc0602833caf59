package fakeportability

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/googleapis/gax-go/v2/apierror"
	"golang.org/x/oauth2"
	dataportability "google.golang.org/api/dataportability/v1"
	"google.golang.org/api/option"
)

// env is one fake server under test with helpers around the official clients.
type env struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server
	ctx context.Context
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	srv := New(opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{t: t, srv: srv, ts: ts, ctx: context.Background()}
}

func (e *env) oauthConfig() *oauth2.Config {
	c := e.srv.opts.Clients[0]
	return &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret,
		Endpoint: oauth2.Endpoint{AuthURL: e.ts.URL + "/o/oauth2/v2/auth", TokenURL: e.ts.URL + "/token"}}
}

// token turns a token response into an oauth2 token (expiry on the real clock, as a client sees it).
func token(tr TokenResponse) *oauth2.Token {
	return &oauth2.Token{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, TokenType: "Bearer",
		Expiry: time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)}
}

// service returns the official client authenticated by tok through golang.org/x/oauth2.
func (e *env) service(tok *oauth2.Token) *dataportability.Service {
	e.t.Helper()
	hc := e.oauthConfig().Client(e.ctx, tok)
	svc, err := dataportability.NewService(e.ctx, option.WithEndpoint(e.ts.URL+"/"), option.WithHTTPClient(hc))
	if err != nil {
		e.t.Fatalf("NewService: %v", err)
	}
	return svc
}

// grant consents through the control API and returns a client and the token.
func (e *env) grant(user, access string, groups ...string) (*dataportability.Service, *oauth2.Token) {
	e.t.Helper()
	tr, err := e.srv.Grant(GrantRequest{User: user, Resources: groups, Access: access})
	if err != nil {
		e.t.Fatalf("Grant: %v", err)
	}
	tok := token(tr)
	return e.service(tok), tok
}

func (e *env) initiate(svc *dataportability.Service, groups ...string) (*dataportability.InitiatePortabilityArchiveResponse, error) {
	return svc.PortabilityArchive.Initiate(&dataportability.InitiatePortabilityArchiveRequest{Resources: groups}).Context(e.ctx).Do()
}

func (e *env) mustInitiate(svc *dataportability.Service, groups ...string) string {
	e.t.Helper()
	resp, err := e.initiate(svc, groups...)
	if err != nil {
		e.t.Fatalf("initiate %v: %v", groups, err)
	}
	return resp.ArchiveJobId
}

func (e *env) state(svc *dataportability.Service, job string) (*dataportability.PortabilityArchiveState, error) {
	return svc.ArchiveJobs.GetPortabilityArchiveState("archiveJobs/" + job + "/portabilityArchiveState").Context(e.ctx).Do()
}

func (e *env) mustState(svc *dataportability.Service, job string) *dataportability.PortabilityArchiveState {
	e.t.Helper()
	st, err := e.state(svc, job)
	if err != nil {
		e.t.Fatalf("state %s: %v", job, err)
	}
	return st
}

// exported grants user access to groups, starts their export and lets the job finish: the client and
// the job's ID.
func (e *env) exported(user, access string, groups ...string) (*dataportability.Service, string) {
	e.t.Helper()
	svc, _ := e.grant(user, access, groups...)
	job := e.mustInitiate(svc, groups...)
	e.finish()
	return svc, job
}

// finish advances the virtual clock past the job duration.
func (e *env) finish() { e.srv.Clock().Advance(e.srv.opts.JobDuration + time.Second) }

// wantAPIError checks the error as the pipeline must read it: the *apierror.APIError that the generated
// client wraps into its *googleapi.Error (errors.As), with HTTP code, ErrorInfo reason and metadata.
// Note: apierror.FromError(err) on the client's error does NOT expose them (see TestAPIErrorAccess).
func wantAPIError(t *testing.T, err error, code int, reason string) *apierror.APIError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want HTTP %d %s", code, reason)
	}
	var ae *apierror.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("errors.As(%v, *apierror.APIError) failed", err)
	}
	if ae.HTTPCode() != code {
		t.Fatalf("HTTPCode() = %d, want %d (%v)", ae.HTTPCode(), code, err)
	}
	if ae.Reason() != reason {
		t.Fatalf("Reason() = %q, want %q (%v)", ae.Reason(), reason, err)
	}
	return ae
}

// noRedirect is an HTTP client that returns redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// expired returns a copy of tok that the client believes expired, so its next use refreshes.
func expired(tok *oauth2.Token) *oauth2.Token {
	c := *tok
	c.Expiry = time.Now().Add(-time.Minute)
	return &c
}

func decodeResp(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", resp.Request.URL.Path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
