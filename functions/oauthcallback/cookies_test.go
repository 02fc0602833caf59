package oauthcallback

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

// TestCookieAttributes: on an https PUBLIC_URL the cookies are __Host- prefixed and Secure; on the local
// stack's plain http they are unprefixed and not Secure (a browser drops Secure cookies from http). Both:
// HttpOnly, SameSite=Lax, Path=/, no Domain, and the full journey works.
func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, publicURL, prefix string
		secure                  bool
	}{
		{"https", "https://pipeline.example/fn", "__Host-", true},
		{"http (local stack)", "http://127.0.0.1:8080", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixtureWith(t, map[string]string{"PUBLIC_URL": tc.publicURL})
			user := "cookie-" + strings.Fields(tc.name)[0]
			link := f.link(user, time.Hour, "myactivity.search")
			rec := f.do(http.MethodGet, "/start?"+link.Encode(), nil)
			got := rec.Result().Cookies()
			if len(got) != 1 {
				t.Fatalf("start page set %d cookies, want the browser cookie", len(got))
			}
			c := got[0]
			if c.Name != tc.prefix+browserCookie || c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
				c.Path != "/" || c.Domain != "" || len(c.Value) != browserIDLen || c.MaxAge <= 0 {
				t.Errorf("browser cookie %+v", c)
			}
			// Only the hash of the value is stored with the state.
			cb := f.consent(f.authorize(link), "google-"+user, "one-time", "allow", "myactivity.search")
			id, _ := f.h.parseState(mustQuery(t, cb).Get("state"))
			snap, err := fsClient.Collection("oauthStates").Doc(id).Get(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := snap.DataAt("browser"); string(b.([]byte)) != string(browserHash(c.Value)) {
				t.Error("the state does not hold the browser cookie's hash")
			}
			if strings.Contains(dump(snap.Data()), c.Value) {
				t.Error("the state holds the browser cookie's value")
			}
			rec = f.do(http.MethodGet, cb, nil)
			assertPage(t, rec, http.StatusOK, "Your export has started")
			var session *http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.Name == tc.prefix+sessionCookie {
					session = c
				}
			}
			if session == nil || session.Secure != tc.secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" ||
				session.MaxAge != int(f.env.Config.OAuth.SessionTTL/time.Second) {
				t.Errorf("session cookie %+v", session)
			}
			assertPage(t, f.do(http.MethodGet, "/status", nil), http.StatusOK, "myactivity.search")
			// No cookie value reached the logs.
			for _, c := range f.b.cookies() {
				if strings.Contains(f.logs.String(), c.Value) {
					t.Errorf("logs hold the %s cookie", c.Name)
				}
			}
		})
	}
}

func dump(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		if bs, ok := v.([]byte); ok {
			b.Write(bs)
		}
	}
	return b.String()
}

// TestCSRF: a form needs the token of this browser: missing, another browser's, or without the browser
// cookie, /authorize stores nothing.
func TestCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const user = "csrf-ana"
	link := f.link(user, time.Hour, "myactivity.search")
	ana, eve := f.newBrowser(), f.newBrowser()
	action, anaForm := ana.open(link)
	_, eveForm := eve.open(f.link("csrf-eve", time.Hour, "myactivity.search"))
	noToken, _ := urlCopy(anaForm)
	noToken.Del(fieldCSRF)
	foreign, _ := urlCopy(anaForm)
	foreign.Set(fieldCSRF, eveForm.Get(fieldCSRF))
	assertPage(t, ana.do(http.MethodPost, action, noToken), http.StatusForbidden, "This form cannot be used")
	assertPage(t, ana.do(http.MethodPost, action, foreign), http.StatusForbidden, "This form cannot be used")
	assertPage(t, f.newBrowser().do(http.MethodPost, action, anaForm), http.StatusForbidden, "allow cookies")
	if n := len(f.statesOf(user)); n != 0 {
		t.Errorf("%d states stored", n)
	}
	// The link was not spent by the refused posts.
	if rec := ana.do(http.MethodPost, action, anaForm); rec.Code != http.StatusSeeOther {
		t.Errorf("the person's own form after refused ones: %d", rec.Code)
	}
}

// TestStartPageNamesAccount: the start page says which app account receives the data: the signed
// display name with the ID beside it, else the ID.
func TestStartPageNamesAccount(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	named := startlink.Sign(testKey, startlink.Link{User: "name-mallory", Name: "Mallory <m@example.com>", Resources: []string{"myactivity.search"},
		Purpose: startlink.PurposeStart, Expires: time.Now().Add(time.Hour)})
	body := f.do(http.MethodGet, "/start?"+named.Encode(), nil).Body.String()
	for _, want := range []string{"<strong>Mallory &lt;m@example.com&gt;</strong> (<code>name-mallory</code>)", "If that is not your account"} {
		if !strings.Contains(body, want) {
			t.Errorf("start page lacks %q", want)
		}
	}
	// The display name travels signed to /authorize.
	if _, v := f.b.form(body); v.Get(startlink.ParamName) != "Mallory <m@example.com>" {
		t.Errorf("form %v", v)
	}
	body = f.do(http.MethodGet, "/start?"+f.link("name-ana", time.Hour, "myactivity.search").Encode(), nil).Body.String()
	if !strings.Contains(body, "for the app account <strong>name-ana</strong>") {
		t.Error("start page without a display name does not name the user ID")
	}
	// Firestore's reserved IDs are refused at the link with their own page.
	assertPage(t, f.do(http.MethodGet, "/start?"+f.link("__name__", time.Hour, "myactivity.search").Encode(), nil),
		http.StatusForbidden, "account ID that cannot be used")
}

// TestReturnURL: with RETURN_URL the callback sends the person back to the app (still opening the
// same-browser session), and refusal pages link back to it.
func TestReturnURL(t *testing.T) {
	t.Parallel()
	f := newFixtureWith(t, map[string]string{"RETURN_URL": "https://app.example/imports"})
	cb := f.flow("ret-ana", "one-time", []string{"myactivity.search"}, []string{"myactivity.search"})
	rec := f.do(http.MethodGet, cb, nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://app.example/imports" {
		t.Fatalf("return: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	assertPage(t, f.do(http.MethodGet, "/status", nil), http.StatusOK, "myactivity.search")
	assertPage(t, f.do(http.MethodGet, cb, nil), http.StatusBadRequest, `href="https://app.example/imports">Back to the app`)
}

// TestKeyRotation: during a rotation (START_LINK_KEY = new,old) links of both keys work, and a consent
// begun before the rotation (state and form of the old current key) completes after it.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const user = "rot-ana"
	consent := f.authorize(f.link(user, time.Hour, "myactivity.search")) // state of k1, the current key
	rotated := *f.env
	cfg := *f.env.Config
	cfg.OAuth.StartLinkKey = "k2:a-brand-new-secret-of-more-than-32-chars," + testLinkKey
	rotated.Config = &cfg
	h, err := NewHandler(&rotated)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	cb := f.consent(consent, "google-"+user, "one-time", "allow", "myactivity.search")
	assertPage(t, f.do(http.MethodGet, cb, nil), http.StatusOK, "Your export has started")
	// A start link of the new key.
	newKey := startlink.Key{ID: "k2", Secret: []byte("a-brand-new-secret-of-more-than-32-chars")}
	v := startlink.Sign(newKey, startlink.Link{User: "rot-ben", Resources: []string{"myactivity.search"}, Purpose: startlink.PurposeStart, Expires: time.Now().Add(time.Hour)})
	assertPage(t, f.do(http.MethodGet, "/start?"+v.Encode(), nil), http.StatusOK, "Continue to Google")
	// A keyset without an ID is refused at construction, with a message that says how to fix it.
	cfg.OAuth.StartLinkKey = testLinkSecret
	if _, err := NewHandler(&rotated); err == nil || !strings.Contains(err.Error(), "ID:SECRET") || strings.Contains(err.Error(), testLinkSecret) {
		t.Errorf("single key without ID: %v", err)
	}
	// So is a key too short to sign with (ParseKeyset checks every secret of the set).
	cfg.OAuth.StartLinkKey = "k2:short," + testLinkKey
	if _, err := NewHandler(&rotated); err == nil || !strings.Contains(err.Error(), "at least 32") || strings.Contains(err.Error(), "short") {
		t.Errorf("short key: %v", err)
	}
	if u, err := f.env.Store.GetUser(f.ctx, user); err != nil || u.State != "active" {
		t.Errorf("user %+v %v", u, err)
	}
}
