package faults

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// The task endpoints of the running stack (PollTask, InitiateTask, each in its own process) refuse any
// call without a valid OIDC token of the tasks invoker for their own URL. shared/handler's tests cover
// the wrapper in detail (expired token, alg none, unverified email...); this checks the deployed wiring.
func TestTaskEndpointsRequireOIDC(t *testing.T) {
	s := begin(t)
	invoker := "tasks-invoker@" + st.Project + ".iam.gserviceaccount.com"
	idToken := func(email, audience string) string {
		body, _ := json.Marshal(map[string]string{"email": email, "audience": audience})
		resp, err := http.Post(st.FakeURL+"/fake/v1/idtoken", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			IDToken string `json:"id_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.IDToken == "" {
			t.Fatalf("id token: %v", err)
		}
		return out.IDToken
	}
	other := map[string]string{"PollTask": "InitiateTask", "InitiateTask": "PollTask"}
	for entry, sibling := range other {
		target := st.Functions[entry].URL() + "/"
		foreignIssuer, err := st.Fake.IDToken("https://accounts.example.com", invoker, target)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"v":1,"user":"nobody","round":"nobody~1","resource":"myactivity.search","job":"job-x","check":0}`
		if entry == "InitiateTask" {
			body = `{"v":1,"user":"nobody","round":"nobody~1"}`
		}
		for _, tc := range []struct {
			name string
			auth string
			body string
			want int
		}{
			{"no token", "", body, http.StatusUnauthorized},
			{"not a JWT", "Bearer not-a-token", body, http.StatusUnauthorized},
			{"token for the other task endpoint", "Bearer " + idToken(invoker, st.Functions[sibling].URL()+"/"), body, http.StatusUnauthorized},
			{"token for another audience", "Bearer " + idToken(invoker, "https://example.com/"), body, http.StatusUnauthorized},
			{"token of another service account", "Bearer " + idToken("intruder@"+st.Project+".iam.gserviceaccount.com", target), body, http.StatusUnauthorized},
			{"token of another issuer", "Bearer " + foreignIssuer, body, http.StatusUnauthorized},
			// The control: the invoker's token for this URL passes authentication (the body is refused).
			{"valid token, malformed body", "Bearer " + idToken(invoker, target), `{"v":1}`, http.StatusBadRequest},
		} {
			req, _ := http.NewRequestWithContext(s.ctx, http.MethodPost, target, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s, %s: HTTP %d, want %d", entry, tc.name, resp.StatusCode, tc.want)
			}
		}
	}
	// Nothing reached the store.
	if _, err := st.Store().GetRound(s.ctx, store.RoundID("nobody", 1)); err == nil {
		t.Error("a refused task call created a round")
	}
}

// The raw Firestore documents of every collection, read mid-round (token stored, signed URLs sealed in
// the objects, a consent pending in oauthStates) and after the round, hold none of the secrets the fake
// handed out or received: access and refresh tokens, codes, PKCE verifiers, signed URLs.
func TestNoSecretInFirestore(t *testing.T) {
	s := begin(t)
	var midRound string
	dump := func(ctx context.Context, e *Env, users []User) error {
		if !waitStage(ctx, e, users, store.ResTransferring) {
			t.Error("never saw the round transferring")
			return nil
		}
		// A consent left pending: its oauthStates document holds the sealed PKCE verifier.
		if _, err := stack.Authorize(ctx, stack.Browser(), st.StartLink("pending", []string{search})); err != nil {
			t.Errorf("authorize: %v", err)
		}
		text, docs, err := DumpFirestore(ctx, st.FirestoreClient)
		midRound = text
		t.Logf("mid-round: %d documents", docs)
		return err
	}
	s.run(Scenario{Name: "firestore scan", Users: []User{{ID: "sec", Resources: []string{search, subs}}},
		Before: []Step{DownloadFault(KindURLExpiry, fakeportability.DownloadFault{SlowStartMs: 400, Count: 6})},
		After:  []Step{dump}})
	for _, want := range []string{"tokens/sec:", "ciphertext=", "oauthStates/", "verifier=", "/objects/", "url="} {
		if !strings.Contains(midRound, want) {
			t.Errorf("the mid-round dump lacks %q: it did not see what it should scan", want)
		}
	}
	after, _, err := DumpFirestore(s.ctx, st.FirestoreClient)
	if err != nil {
		t.Fatal(err)
	}
	issued := st.Fake.IssuedSecrets()
	kinds := map[string]bool{}
	for _, k := range issued {
		kinds[k] = true
	}
	for _, k := range []string{"access token", "refresh token", "authorization code", "PKCE verifier", "signed URL"} {
		if !kinds[k] {
			t.Errorf("the fake recorded no %s: the scan would prove nothing", k)
		}
	}
	for name, text := range map[string]string{"mid-round": midRound, "after the round": after} {
		for _, f := range FindSecrets(text, issued, map[string]string{"start link key": string(st.StartLinkKey)}) {
			t.Errorf("Firestore %s: %s", name, f)
		}
	}
}

// FindSecrets itself: a planted secret of each kind is found, in the shapes a log line would hold it.
func TestFindSecrets(t *testing.T) {
	issued := map[string]string{
		"ya29.fake-0123456789abcdef0123456789abcdef":                                                          "access token",
		"http://127.0.0.1:1/download/job-1/f.zip?expires=1&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcdefg": "signed URL",
	}
	for _, text := range []string{
		`{"msg":"x","token":"ya29.fake-0123456789abcdef0123456789abcdef"}`,
		`{"error":"Get \"http://h/download/job-1/f.zip?expires=1\u0026sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcdefg\": EOF"}`,
		`refresh 1//0gAbCdEfGhIjKlMnOp`,
		`Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.sig`,
	} {
		if len(FindSecrets(text, issued, nil)) == 0 {
			t.Errorf("no secret found in %s", text)
		}
	}
	if f := FindSecrets(`{"round":"u~4/resources/myactivity.search","path":"rounds/a~1/objects/4/parts/0"}`, issued, nil); len(f) != 0 {
		t.Errorf("false positives: %v", f)
	}
	_ = stack.Routes
}

// TestForwardedConsentURL is the attack of the security review on the running stack: Mallory turns her
// own start link into Google's consent URL and sends it to a victim, who consents in their own browser.
// The callback refuses it: no job at the fake for the victim's Google account, nothing of Mallory's in
// Firestore, no round, no event; her own browser cannot finish it either. The status link the app signs
// for Mallory works once, in the browser that opens it first, and POST /delete needs its session.
func TestForwardedConsentURL(t *testing.T) {
	s := begin(t)
	const mallory, victim = "fwd-mallory", "fwd-victim@example.com"
	malloryBrowser := stack.Browser()
	consentURL, err := stack.Authorize(s.ctx, malloryBrowser, st.StartLink(mallory, []string{search, subs}))
	if err != nil {
		t.Fatal(err)
	}
	page, err := stack.GiveConsent(s.ctx, stack.Browser(), consentURL, stack.Consent{Account: victim, Access: "one-time"})
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "started in another browser") {
		t.Fatalf("the victim's callback answered %d: %.300s", page.Status, page.Body)
	}
	// The victim's callback URL, replayed in Mallory's browser: the state is spent.
	if again, err := stack.GiveConsent(s.ctx, malloryBrowser, consentURL, stack.Consent{Account: victim, Access: "one-time"}); err == nil && again.Status == http.StatusOK {
		t.Errorf("Mallory finished the forwarded consent: %d", again.Status)
	}
	time.Sleep(2 * time.Second) // anything wrongly published would be pushed by now
	if jobs := st.Fake.Jobs(victim); len(jobs) != 0 {
		t.Errorf("the fake has %d jobs of the victim's account", len(jobs))
	}
	recs, err := st.Store().FindUserRecords(s.ctx, mallory)
	if err != nil {
		t.Fatal(err)
	}
	if recs.User || len(recs.Rounds) != 0 || len(recs.Events) != 0 {
		t.Errorf("stored for %s: %+v", mallory, recs)
	}
	if _, err := st.FirestoreClient.Collection("tokens").Doc(mallory).Get(s.ctx); err == nil {
		t.Error("a token was stored for Mallory")
	}

	// A status link: the first browser gets the session and a URL without the signature; the link found
	// later (a request log) opens nothing, and delete needs the session.
	link := st.StatusLink(mallory, 5*time.Minute)
	first := stack.Browser()
	resp, err := first.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || strings.Contains(loc, "sig=") {
		t.Errorf("status link: %d to %q", resp.StatusCode, loc)
	}
	for name, do := range map[string]func(*http.Client) (*http.Response, error){
		"status link again": func(c *http.Client) (*http.Response, error) { return c.Get(link) },
		"delete with the link's parameters": func(c *http.Client) (*http.Response, error) {
			u, _ := url.Parse(link)
			q := u.Query()
			q.Set("confirm", "yes")
			return c.PostForm(st.Functions["OAuthCallback"].URL()+"/delete", q)
		},
	} {
		resp, err := do(stack.Browser())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s in another browser: %d, want 403", name, resp.StatusCode)
		}
	}
}
