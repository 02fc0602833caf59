package faults

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
		link, _ := url.Parse(st.StartLink("pending", []string{search}))
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.PostForm(st.Functions["OAuthCallback"].URL()+"/authorize", link.Query())
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			t.Errorf("authorize answered %d, want a redirect to the consent page", resp.StatusCode)
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
