package oauthcallback

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
)

// The attacks of the security review (issue 13), one test each. Every one of them succeeded before the
// flow was bound to the browser.

// tokenCalls counts the token endpoint calls the fake answered (code exchanges and refreshes).
func (f *fixture) tokenCalls() int {
	n, _ := f.fake.Calls()[fakeportability.MethodToken].(int)
	return n
}

// TestForwardedConsentURL: Mallory turns her own start link into Google's consent URL and sends it to a
// victim, who consents in their own browser. The callback refuses it: no code exchange, no job at the
// fake for the victim's Google account, nothing stored under Mallory, nothing published. Mallory cannot
// finish it either.
func TestForwardedConsentURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mallory, victim := f.newBrowser(), f.newBrowser()
	consent := mallory.authorize(f.link("fwd-mallory", time.Hour, "myactivity.search"))
	cb := f.consent(consent, "google-fwd-victim", "one-time", "allow", "myactivity.search")
	assertPage(t, victim.do(http.MethodGet, cb, nil), http.StatusForbidden, "started in another browser")
	f.assertNothingStored("fwd-mallory")
	if n := f.tokenCalls(); n != 0 {
		t.Errorf("%d calls to the token endpoint, want none", n)
	}
	if jobs := f.fake.Jobs("google-fwd-victim"); len(jobs) != 0 {
		t.Errorf("jobs at the fake for the victim's account: %v", jobs)
	}
	// The refused state is spent: the callback URL is worth nothing to Mallory either.
	assertPage(t, mallory.do(http.MethodGet, cb, nil), http.StatusBadRequest, "already used or has expired")
	f.assertNothingStored("fwd-mallory")
	if n := f.tokenCalls(); n != 0 {
		t.Errorf("%d calls to the token endpoint, want none", n)
	}
}

// TestReplayedCallback: the callback URL (state and code) copied from the person's browser, a log or a
// history, and opened in another browser before the person's own redirect lands: refused, nothing
// exchanged, and the person's page says the sign-in cannot be used (the state is spent); replayed in the
// same browser after it succeeded: refused.
func TestReplayedCallback(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const user = "replay-ana"
	ana, thief := f.newBrowser(), f.newBrowser()
	cb := f.consent(ana.authorize(f.link(user, time.Hour, "myactivity.search")), "google-replay-ana", "one-time", "allow", "myactivity.search")
	assertPage(t, thief.do(http.MethodGet, cb, nil), http.StatusForbidden, "started in another browser")
	f.assertNothingStored(user)
	if n := f.tokenCalls(); n != 0 {
		t.Errorf("%d calls to the token endpoint, want none", n)
	}
	assertPage(t, ana.do(http.MethodGet, cb, nil), http.StatusBadRequest, "already used or has expired")

	// A fresh flow completes in Ana's browser; its replay there is refused and publishes nothing more.
	cb = f.consent(ana.authorize(f.link(user, time.Hour, "myactivity.search")), "google-replay-ana", "one-time", "allow", "myactivity.search")
	assertPage(t, ana.do(http.MethodGet, cb, nil), http.StatusOK, "Your export has started")
	assertPage(t, ana.do(http.MethodGet, cb, nil), http.StatusBadRequest, "already used or has expired")
	assertPage(t, thief.do(http.MethodGet, cb, nil), http.StatusBadRequest, "already used or has expired")
	if n := len(f.pub.messages()); n != 1 {
		t.Errorf("%d messages published, want 1", n)
	}
}

// TestStartLinkSingleUse: the first /authorize spends the link; a second use, from another browser or
// the same one, is refused with a page that sends the person back to the app.
func TestStartLinkSingleUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const user = "once-ana"
	link := f.link(user, time.Hour, "myactivity.search")
	ana, other := f.newBrowser(), f.newBrowser()
	otherAction, otherForm := other.open(link) // opened before Ana used the link
	ana.authorize(link)
	assertPage(t, other.do(http.MethodPost, otherAction, otherForm), http.StatusForbidden, "already used")
	assertPage(t, other.do(http.MethodGet, "/start?"+link.Encode(), nil), http.StatusForbidden, "already used")
	assertPage(t, ana.do(http.MethodGet, "/start?"+link.Encode(), nil), http.StatusForbidden, "already used")
	if n := len(f.statesOf(user)); n != 1 {
		t.Errorf("%d oauth states, want the first use's only", n)
	}
}

// TestGetAuthorize: /authorize takes only the start page's POST.
func TestGetAuthorize(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := f.newBrowser()
	link := f.link("get-ana", time.Hour, "myactivity.search")
	b.open(link)
	rec := b.do(http.MethodGet, "/authorize?"+link.Encode(), nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Location") != "" {
		t.Fatalf("GET /authorize: %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	if n := len(f.statesOf("get-ana")); n != 0 {
		t.Errorf("%d states stored by a GET", n)
	}
}

// TestStatusLinkOtherBrowser: a status link the app signed opens a session in the browser that uses it
// first, and redirects to a URL without the signature; the same link in another browser (found in a
// request log), a link older than its lifetime, a link signed for longer than STATUS_LINK_TTL, or the
// status page without a session show nothing.
func TestStatusLinkOtherBrowser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const user = "stlo-ana"
	link := f.statusLinkToGrant(user)
	ana, eve := f.newBrowser(), f.newBrowser()
	rec := ana.do(http.MethodGet, "/status?"+link.Encode(), nil)
	if rec.Code != http.StatusSeeOther || strings.Contains(rec.Header().Get("Location"), "sig=") {
		t.Fatalf("status link: %d to %q, want a redirect to a URL without the signature", rec.Code, rec.Header().Get("Location"))
	}
	assertPage(t, ana.do(http.MethodGet, "/status", nil), http.StatusOK, "myactivity.search")

	assertPage(t, eve.do(http.MethodGet, "/status?"+link.Encode(), nil), http.StatusForbidden, "already used")
	assertPage(t, eve.do(http.MethodGet, "/status", nil), http.StatusForbidden, "Open your status page from the app")
	assertPage(t, eve.do(http.MethodGet, "/status?"+f.statusLink(user, -time.Second).Encode(), nil), http.StatusForbidden, "expired")
	assertPage(t, eve.do(http.MethodGet, "/status?"+f.statusLink(user, 31*24*time.Hour).Encode(), nil), http.StatusForbidden, "not valid")
	if body := eve.do(http.MethodGet, "/status", nil).Body.String(); strings.Contains(body, "myactivity.search") {
		t.Error("another browser sees the status")
	}
}

// TestDeleteNeedsSession: POST /delete deletes only with the same-browser session and its CSRF token;
// the signed parameters of a status link, posted or in the query, delete nothing.
func TestDeleteNeedsSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const user = "dns-ana"
	link := f.statusLinkToGrant(user)
	confirmed, _ := url.ParseQuery(link.Encode())
	confirmed.Set("confirm", "yes")
	eve := f.newBrowser()
	for name, rec := range map[string]func() int{
		"signed parameters posted":   func() int { return eve.do(http.MethodPost, "/delete", confirmed).Code },
		"signed parameters in query": func() int { return eve.do(http.MethodPost, "/delete?"+confirmed.Encode(), url.Values{}).Code },
	} {
		if code := rec(); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	// Ana's own session, but a form without its CSRF token (a cross-site post would lack it).
	ana := f.newBrowser()
	ana.do(http.MethodGet, "/status?"+link.Encode(), nil)
	if code := ana.do(http.MethodPost, "/delete", url.Values{"confirm": {"yes"}}).Code; code != http.StatusForbidden {
		t.Errorf("session without CSRF token: %d, want 403", code)
	}
	if _, err := f.env.Store.GetUser(f.ctx, user); err != nil {
		t.Fatalf("the user was deleted: %v", err)
	}
}
