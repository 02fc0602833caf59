package fakeportability

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
	dataportability "google.golang.org/api/dataportability/v1"

	"github.com/portability-pipeline/pipeline/shared/resources"
)

// consentForm is the consent page's form as a browser sees it.
type consentForm struct {
	action     string
	hidden     url.Values
	account    string
	resources  []string // checkbox values
	accesses   []string // radio values
	buttons    []string // action button values
	buttonName string
}

func parseConsent(t *testing.T, body io.Reader) consentForm {
	t.Helper()
	doc, err := html.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	f := consentForm{hidden: url.Values{}}
	attr := func(n *html.Node, k string) string {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val
			}
		}
		return ""
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				f.action = attr(n, "action")
			case "input":
				switch attr(n, "type") {
				case "hidden":
					f.hidden.Add(attr(n, "name"), attr(n, "value"))
				case "text":
					if attr(n, "name") == "account" {
						f.account = attr(n, "value")
					}
				case "checkbox":
					f.resources = append(f.resources, attr(n, "value"))
				case "radio":
					f.accesses = append(f.accesses, attr(n, "value"))
				}
			case "button":
				f.buttonName = attr(n, "name")
				f.buttons = append(f.buttons, attr(n, "value"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return f
}

// authorize opens the consent page of the auth URL and returns its form.
func (e *env) authorize(authURL string) consentForm {
	e.t.Helper()
	resp, err := http.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("authorize: %d %s", resp.StatusCode, b)
	}
	return parseConsent(e.t, resp.Body)
}

// submit posts the consent form and returns the redirect's query.
func (e *env) submit(f consentForm, account string, groups []string, access, button string) url.Values {
	e.t.Helper()
	form := url.Values{}
	for k, v := range f.hidden {
		form[k] = v
	}
	form.Set("account", account)
	form["resource"] = groups
	form.Set("access", access)
	form.Set(f.buttonName, button)
	resp, err := noRedirect.PostForm(e.ts.URL+f.action, form)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("consent answer = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), "http://app.example/callback") {
		e.t.Fatalf("redirect to %q", resp.Header.Get("Location"))
	}
	return loc.Query()
}

func (e *env) appConfig(scopes ...string) *oauth2.Config {
	c := e.oauthConfig()
	c.RedirectURL = "http://app.example/callback"
	c.Scopes = scopes
	return c
}

func TestConsentPageFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	groups := []string{"myactivity.search", "myactivity.youtube", "chrome.history"}
	var scopes []string
	for _, g := range groups {
		scopes = append(scopes, resources.Scope(g))
	}
	conf := e.appConfig(scopes...)
	verifier := oauth2.GenerateVerifier()
	f := e.authorize(conf.AuthCodeURL("st4te", oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)))
	if f.account == "" || !slices.Equal(f.resources, groups) ||
		!slices.Equal(f.accesses, []string{"one-time", "time-based-30d", "time-based-180d"}) ||
		!slices.Contains(f.buttons, "allow") || !slices.Contains(f.buttons, "deny") {
		t.Fatalf("consent form = %+v", f)
	}

	// Partial consent: two of three, time-based for 30 days.
	q := e.submit(f, "alice", []string{"myactivity.search", "chrome.history"}, "time-based-30d", "allow")
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("redirect query = %v", q)
	}
	if got := strings.Fields(q.Get("scope")); !slices.Equal(got, []string{resources.Scope("chrome.history"), resources.Scope("myactivity.search")}) {
		t.Fatalf("granted scope = %q", q.Get("scope"))
	}
	// A wrong verifier is refused (and burns the code, as single use).
	if _, err := conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("exchange with a wrong verifier: %v", err)
	}

	f = e.authorize(conf.AuthCodeURL("s2", oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)))
	q = e.submit(f, "alice", []string{"myactivity.search", "chrome.history"}, "time-based-30d", "allow")
	tok, err := conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" || time.Until(tok.Expiry) < 50*time.Minute {
		t.Fatalf("token = %+v", tok)
	}
	// The code is single use.
	if _, err := conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("second exchange: %v", err)
	}
	svc := e.service(tok)
	check, err := svc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(check.OneTimeResources) != 0 || !slices.Equal(check.TimeBasedResources, []string{"chrome.history", "myactivity.search"}) {
		t.Fatalf("check = %+v", check)
	}
	_, err = e.initiate(svc, "myactivity.youtube")
	wantAPIError(t, err, http.StatusForbidden, "")
	resp, err := e.initiate(svc, "myactivity.search")
	if err != nil || resp.AccessType != "ACCESS_TYPE_TIME_BASED" {
		t.Fatalf("initiate = %+v, %v", resp, err)
	}

	// An expired code is refused too.
	f = e.authorize(conf.AuthCodeURL("s3", oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)))
	q = e.submit(f, "bob", []string{"myactivity.youtube"}, "one-time", "allow")
	e.srv.Clock().Advance(11 * time.Minute)
	if _, err := conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("expired code accepted")
	}
}

func TestConsentDeny(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	conf := e.appConfig(resources.Scope("myactivity.search"))
	for _, tc := range []struct {
		button string
		groups []string
	}{{"deny", []string{"myactivity.search"}}, {"allow", nil}} {
		f := e.authorize(conf.AuthCodeURL("xyz"))
		q := e.submit(f, "alice", tc.groups, "one-time", tc.button)
		if q.Get("error") != "access_denied" || q.Get("state") != "xyz" || q.Get("code") != "" {
			t.Fatalf("%s with %v: redirect query = %v", tc.button, tc.groups, q)
		}
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Clients: []Client{{ID: "app", Secret: "s", RedirectURIs: []string{"http://app.example/callback"}}}})
	dp := resources.Scope("myactivity.search")
	base := url.Values{"client_id": {"app"}, "redirect_uri": {"http://app.example/callback"}, "response_type": {"code"}, "scope": {dp}, "state": {"s"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range base {
			q[kk] = vv
		}
		q.Set(k, v)
		return q
	}
	tests := []struct {
		name  string
		query url.Values
		code  int
		want  string
	}{
		{"mixed with openid", with("scope", dp+" openid"), 400, "Error 400: invalid_request"},
		{"mixed with email", with("scope", "email "+dp), 400, "cannot be requested together"},
		{"incremental auth", with("include_granted_scopes", "true"), 400, "Incremental auth is not allowed"},
		{"unknown client", with("client_id", "other"), 401, "invalid_client"},
		{"unregistered redirect", with("redirect_uri", "http://evil.example/cb"), 400, "redirect_uri_mismatch"},
		{"unknown portability scope", with("scope", resources.ScopePrefix+"nope.nope"), 400, "invalid_scope"},
		{"no portability scope", with("scope", "openid"), 400, "invalid_scope"},
		{"bad PKCE method", with("code_challenge_method", "S512"), 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := noRedirect.Get(e.ts.URL + "/o/oauth2/v2/auth?" + tt.query.Encode())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.want) {
				t.Fatalf("got %d %s, want %d containing %q", resp.StatusCode, b, tt.code, tt.want)
			}
		})
	}
	resp, err := http.Get(e.ts.URL + "/o/oauth2/v2/auth?" + base.Encode())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("valid request: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestRefreshAndRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	_, tok := e.grant("alice", "one-time", "myactivity.search")
	// The access token dies after an hour of virtual time; a refresh gives a new one and keeps the refresh token.
	e.srv.Clock().Advance(61 * time.Minute)
	_, err := e.service(tok).AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do()
	wantAPIError(t, err, http.StatusUnauthorized, "ACCESS_TOKEN_EXPIRED")
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		conf := e.oauthConfig()
		conf.Endpoint.AuthStyle = style
		nt, err := conf.TokenSource(e.ctx, expired(tok)).Token()
		if err != nil {
			t.Fatalf("refresh (style %d): %v", style, err)
		}
		if nt.RefreshToken != tok.RefreshToken || nt.AccessToken == tok.AccessToken {
			t.Fatalf("refreshed token = %+v", nt)
		}
		if _, err := e.service(nt).AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do(); err != nil {
			t.Fatalf("with the refreshed token: %v", err)
		}
	}
	// Wrong client secret.
	conf := e.oauthConfig()
	conf.ClientSecret = "wrong"
	if _, err := conf.TokenSource(e.ctx, expired(tok)).Token(); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("refresh with a wrong secret: %v", err)
	}
	// A token endpoint fault (count 2: with AuthStyleAutoDetect x/oauth2 tries header auth, then form auth).
	e.srv.InjectFault(Fault{Method: MethodToken, Status: 503, Count: 2})
	if _, err := e.oauthConfig().TokenSource(e.ctx, expired(tok)).Token(); err == nil {
		t.Fatal("token fault not applied")
	}
	// Revocation kills the grant: refresh gives invalid_grant.
	resp, err := http.PostForm(e.ts.URL+"/revoke", url.Values{"token": {tok.RefreshToken}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := e.oauthConfig().TokenSource(e.ctx, expired(tok)).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after revoke: %v", err)
	}
	resp, _ = http.PostForm(e.ts.URL+"/revoke", url.Values{"token": {tok.RefreshToken}})
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("second revoke = %d, want 400", resp.StatusCode)
	}
}

func TestOIDCIDTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	resp, err := http.Post(e.ts.URL+"/fake/v1/idtoken", "application/json",
		strings.NewReader(`{"email":"invoker@p.iam.gserviceaccount.com","audience":"http://127.0.0.1:9/poll"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		IDToken string `json:"id_token"`
	}
	decodeResp(t, resp, &body)
	provider, err := oidc.NewProvider(e.ctx, e.ts.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	v := provider.Verifier(&oidc.Config{ClientID: "http://127.0.0.1:9/poll"})
	idt, err := v.Verify(e.ctx, body.IDToken)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Email != "invoker@p.iam.gserviceaccount.com" || !claims.EmailVerified {
		t.Fatalf("claims = %+v, %v", claims, err)
	}
	if time.Until(idt.Expiry) < 55*time.Minute {
		t.Fatalf("expiry = %v", idt.Expiry)
	}
	if _, err := provider.Verifier(&oidc.Config{ClientID: "http://other"}).Verify(e.ctx, body.IDToken); err == nil {
		t.Fatal("wrong audience accepted")
	}
	// A configured BaseURL is the issuer regardless of the Host header.
	e2 := newEnv(t, Options{BaseURL: "http://fake.example:8090"})
	tok, _ := e2.srv.IDToken("http://fake.example:8090", "a@b", "aud")
	if _, err := provider.Verifier(&oidc.Config{ClientID: "aud"}).Verify(e.ctx, tok); err == nil {
		t.Fatal("token of another issuer accepted")
	}
}
