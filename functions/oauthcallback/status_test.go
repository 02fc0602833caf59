package oauthcallback

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/iterate"
	"github.com/portability-pipeline/pipeline/shared/purge"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/startlink"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// statusLink signs a status link valid for ttl.
func (f *fixture) statusLink(user string, ttl time.Duration) url.Values {
	return startlink.Sign(testKey, startlink.Link{User: user, Purpose: startlink.PurposeStatus, Expires: f.expiry(ttl)})
}

// startGrant records a grant and its first round directly in the store.
func (f *fixture) startGrant(user, access string, granted, notGranted []string) *store.Round {
	f.t.Helper()
	r, err := f.env.Store.StartGrant(f.ctx, store.NewGrant{User: user, Access: access, Granted: granted, NotGranted: notGranted})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// statusLinkToGrant records a one-time grant of myactivity.search for user and signs a status link to
// it, valid five minutes.
func (f *fixture) statusLinkToGrant(user string) url.Values {
	f.t.Helper()
	f.startGrant(user, store.AccessOneTime, []string{"myactivity.search"}, nil)
	return f.statusLink(user, 5*time.Minute)
}

// set moves a resource to a state, whatever its state was: it writes the document directly, past the
// lifecycle the store enforces, since a page test needs each state without walking the steps to it.
func (f *fixture) set(rid, name string, apply func(r *store.Resource)) {
	f.t.Helper()
	r, err := f.env.Store.GetResource(f.ctx, rid, name)
	if err != nil {
		f.t.Fatalf("set %s/%s: %v", rid, name, err)
	}
	apply(r)
	r.UpdatedAt = time.Now().UTC()
	if _, err := f.env.Store.Client().Collection("rounds").Doc(rid).Collection("resources").Doc(name).Set(f.ctx, r); err != nil {
		f.t.Fatalf("set %s/%s: %v", rid, name, err)
	}
}

// openStatus opens a status link the app signed in a new browser and returns that browser, now holding
// the status session.
func (f *fixture) openStatus(user string) *browser {
	f.t.Helper()
	b := f.newBrowser()
	rec := b.do(http.MethodGet, "/status?"+f.statusLink(user, 5*time.Minute).Encode(), nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != f.publicURL()+"/status" {
		f.t.Fatalf("status link: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	return b
}

func TestStatusLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.statusLinkToGrant("stl-ana")
	edit := func(k, val string) url.Values {
		c, _ := url.ParseQuery(good.Encode())
		c.Set(k, val)
		return c
	}
	start := f.link("stl-ana", time.Hour, "myactivity.search")
	startNoResources, _ := url.ParseQuery(start.Encode())
	startNoResources.Del("resources")
	tests := []struct {
		name string
		v    url.Values
		code int
		text string
	}{
		{"forged user", edit("user", "stl-ben"), http.StatusForbidden, "This link is not valid"},
		{"forged signature", edit("sig", strings.Repeat("ab", 32)), http.StatusForbidden, "This link is not valid"},
		{"unknown key ID", edit("kid", "k9"), http.StatusForbidden, "This link is not valid"},
		{"expired", f.statusLink("stl-ana", -time.Minute), http.StatusForbidden, "This link has expired"},
		{"beyond STATUS_LINK_TTL", f.statusLink("stl-ana", 20*time.Minute), http.StatusForbidden, "This link is not valid"},
		{"start link used as status link", start, http.StatusForbidden, "This link is not valid"},
		{"start link without its resources", startNoResources, http.StatusForbidden, "This link is not valid"},
		{"reserved user ID", f.statusLink("__stl__", time.Minute), http.StatusForbidden, "account ID that cannot be used"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := f.newBrowser()
			assertPage(t, b.do(http.MethodGet, "/status?"+tc.v.Encode(), nil), tc.code, tc.text)
			if len(b.cookies()) != 0 {
				t.Errorf("a refused link set cookies: %v", b.cookies())
			}
			assertPage(t, b.do(http.MethodGet, "/status", nil), http.StatusForbidden, "Open your status page from the app")
		})
	}
	// The valid link: a session in this browser, shown at /status; nothing stored: a polite page.
	assertPage(t, f.openStatus("stl-ana").do(http.MethodGet, "/status", nil), http.StatusOK, "Your export is running")
	assertPage(t, f.openStatus("stl-nobody").do(http.MethodGet, "/status", nil), http.StatusOK, "No export to show")
	// A status link cannot open a consent.
	assertPage(t, f.do(http.MethodGet, "/start?"+good.Encode(), nil), http.StatusForbidden, "This link is not valid")
	assertPage(t, f.do(http.MethodPost, "/authorize", good), http.StatusForbidden, "This link is not valid")
}

// TestStatusSessionExpires: the session ends after STATUS_SESSION_TTL, and works only beside the browser
// cookie it was issued with.
func TestStatusSessionExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.startGrant("sse-ana", store.AccessOneTime, []string{"myactivity.search"}, nil)
	b := f.openStatus("sse-ana")
	assertPage(t, b.do(http.MethodGet, "/status", nil), http.StatusOK, "myactivity.search")

	// The session cookie copied into another browser, without its browser cookie.
	other := f.newBrowser()
	other.do(http.MethodGet, "/start?"+f.link("sse-other", time.Hour, "myactivity.search").Encode(), nil) // its own browser cookie
	u, _ := url.Parse(f.publicURL() + "/")
	for _, c := range b.cookies() {
		if strings.HasSuffix(c.Name, sessionCookie) {
			other.jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/", Secure: true}})
		}
	}
	assertPage(t, other.do(http.MethodGet, "/status", nil), http.StatusForbidden, "Open your status page from the app")

	later := time.Now().Add(f.env.Config.OAuth.SessionTTL + time.Second)
	f.h.now = func() time.Time { return later }
	// The browser would have dropped the cookie (Max-Age); the server refuses it anyway.
	req := httptest.NewRequest(http.MethodGet, "/status", nil)
	for _, c := range b.cookies() {
		req.AddCookie(c)
	}
	if _, _, ok := f.h.session(req); ok {
		t.Error("a session past STATUS_SESSION_TTL is accepted")
	}
}

func TestStatusStates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	granted := []string{"chrome.bookmarks", "chrome.history", "discover.likes", "maps.reviews", "myactivity.search", "myactivity.youtube", "youtube.subscriptions"}
	r := f.startGrant("sts-ana", store.AccessOneTime, granted, []string{"maps.starred_places"})
	rid := r.ID
	// chrome.bookmarks stays pending.
	f.set(rid, "chrome.history", func(x *store.Resource) {
		x.State, x.NotBefore = store.ResCooldown, time.Date(2031, 5, 6, 7, 8, 0, 0, time.UTC)
	})
	f.set(rid, "discover.likes", func(x *store.Resource) { x.State, x.Job = store.ResExporting, "job-likes" })
	f.set(rid, "maps.reviews", func(x *store.Resource) {
		x.State, x.Reason = store.ResFailed, "Google could not report the export: rpc error: code = Internal desc = secret detail"
	})
	f.set(rid, "myactivity.youtube", func(x *store.Resource) {
		x.State, x.Objects, x.Bytes = store.ResDone, 2, 5_200_000
		x.StartTime, x.ExportTime, x.TimeFilter = time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2031, 5, 2, 6, 30, 0, 0, time.UTC), store.TimeFilterApplied
	})
	// youtube.subscriptions: transferring, one file verified (500 bytes), one copying with 400 of 1000 bytes done.
	f.set(rid, "youtube.subscriptions", func(x *store.Resource) { x.State, x.Job = store.ResExporting, "job-subs" })
	if _, _, err := f.env.Store.PlanTransfer(f.ctx, rid, "youtube.subscriptions", "job-subs", time.Time{}, time.Now(), []store.Object{
		{Index: 0, Size: 1000, Parts: 2, PartSize: 500, State: store.ObjCopying},
		{Index: 1, Size: 500, Parts: 1, PartSize: 500, State: store.ObjVerified},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.env.Store.PartDone(f.ctx, rid, "youtube.subscriptions", 0, store.Part{Index: 0, Attempt: 0, Offset: 0, Length: 400}); err != nil {
		t.Fatal(err)
	}
	// A part of an earlier attempt does not count.
	if err := f.env.Store.PartDone(f.ctx, rid, "youtube.subscriptions", 0, store.Part{Index: 1, Attempt: 7, Offset: 500, Length: 500}); err != nil {
		t.Fatal(err)
	}

	b := f.openStatus("sts-ana")
	rec := b.do(http.MethodGet, "/status", nil)
	body := rec.Body.String()
	want := map[string][]string{
		"chrome.bookmarks":      {"Waiting", "Waiting for its turn"},
		"chrome.history":        {"Waiting", "Tuesday 6 May 2031, 07:08 UTC"},
		"discover.likes":        {"Exporting", "Google is preparing the archive"},
		"maps.reviews":          {"Failed", "Google could not report the export.</p>"},
		"myactivity.youtube":    {"Done", "2 files, 5.2 MB, copied and checked.", "Activity from Thursday 1 May 2031, 00:00 UTC to Friday 2 May 2031, 06:30 UTC."},
		"youtube.subscriptions": {"Transferring", `<progress max="1500" value="900" aria-label="youtube.subscriptions: copied">60%</progress>`, "900 bytes of 1.5 kB (60%)"},
		"maps.starred_places":   {"Not granted", "You did not allow this"},
	}
	for name, texts := range want {
		item := between(body, "<code>"+name+"</code>", "</li>")
		for _, text := range texts {
			if !strings.Contains(item, text) {
				t.Errorf("%s: %q not in\n%s", name, text, item)
			}
		}
	}
	for _, bad := range []string{"rpc error", "secret detail"} {
		if strings.Contains(body, bad) {
			t.Errorf("page shows the technical detail %q", bad)
		}
	}
	for _, w := range []string{`<meta http-equiv="refresh" content="5">`, "Your export is running", "Stop updating this page",
		`action="` + testPublicURL + `/delete"`, `name="csrf" value="`, "Stop and delete my data", "one-time access"} {
		if !strings.Contains(body, w) {
			t.Errorf("status page lacks %q", w)
		}
	}
	// The person can stop the reloading (WCAG 2.2.1).
	off := b.do(http.MethodGet, "/status?refresh=off", nil).Body.String()
	if strings.Contains(off, `http-equiv="refresh"`) || !strings.Contains(off, "Turn them on again") {
		t.Error("refresh=off still reloads")
	}

	// Everything finishes: the page stops reloading.
	for _, name := range []string{"chrome.bookmarks", "chrome.history", "discover.likes", "myactivity.search", "youtube.subscriptions"} {
		f.set(rid, name, func(x *store.Resource) { x.State, x.Objects, x.Bytes = store.ResDone, 1, 10 })
	}
	// Every resource is terminal but the round is not yet marked complete (the step that finished the last
	// one has not run rounds.CompleteIfDone yet): the page must not say "finished" and stop reloading, or the
	// person is left on a page that never shows the wrap-up.
	body = b.do(http.MethodGet, "/status", nil).Body.String()
	if !strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "being wrapped up") {
		t.Errorf("every resource done, round not yet complete:\n%s", body)
	}
	// The round completes: the page reloads until its wrap-up (the reset) is recorded.
	if _, complete, err := f.env.Store.CompleteRoundIfDone(f.ctx, rid); err != nil || !complete {
		t.Fatalf("settle: complete %v, %v", complete, err)
	}
	body = b.do(http.MethodGet, "/status", nil).Body.String()
	if !strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "being wrapped up") {
		t.Errorf("complete round, reset pending:\n%s", body)
	}
	if err := f.env.Store.CloseRound(f.ctx, rid, "reset", time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	body = b.do(http.MethodGet, "/status", nil).Body.String()
	for _, w := range []string{"Your export is finished", "access to your Google data has ended", "Finished, with problems"} {
		if !strings.Contains(body, w) {
			t.Errorf("closed round lacks %q", w)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("closed round still reloads")
	}
}

func TestStatusTimeBasedNextRound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.startGrant("stt-ana", store.AccessTimeBased, []string{"myactivity.search"}, nil)
	f.set(r.ID, "myactivity.search", func(x *store.Resource) { x.State, x.Objects, x.Bytes = store.ResDone, 1, 2048 })
	// The reset step's order: the round completes, the next round is scheduled, this round closes.
	at := time.Date(2031, 1, 2, 3, 4, 0, 0, time.UTC)
	if _, complete, err := f.env.Store.CompleteRoundIfDone(f.ctx, r.ID); err != nil || !complete {
		t.Fatalf("complete %v, %v", complete, err)
	}
	if _, err := f.env.Store.ScheduleNextRound(f.ctx, r, at); err != nil {
		t.Fatal(err)
	}
	if err := f.env.Store.CloseRound(f.ctx, r.ID, "next round scheduled", at, false); err != nil {
		t.Fatal(err)
	}
	body := f.openStatus("stt-ana").do(http.MethodGet, "/status", nil).Body.String()
	for _, w := range []string{"time-based access", "The next copy is made after", `datetime="2031-01-02T03:04:00Z"`, "Thursday 2 January 2031, 03:04 UTC",
		"One file, 2.0 kB, copied and checked.", "Finished: everything you allowed was copied."} {
		if !strings.Contains(body, w) {
			t.Errorf("status page lacks %q", w)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("the page reloads while only waiting for tomorrow's round")
	}
}

var statusHref = regexp.MustCompile(`href="(` + regexp.QuoteMeta(testPublicURL) + `/status[^"]*)"`)

func TestDeleteFlow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const user = "del-ana"
	done := f.do(http.MethodGet, f.flow(user, "one-time", []string{"myactivity.search", "youtube.subscriptions"}, []string{"myactivity.search"}), nil)
	assertPage(t, done, http.StatusOK, "See how your export is going")
	m := statusHref.FindStringSubmatch(done.Body.String())
	if m == nil || html.UnescapeString(m[1]) != testPublicURL+"/status" {
		t.Fatalf("the return page links %q, want the bare status page:\n%s", m, done.Body)
	}
	if strings.Contains(done.Body.String(), "sig=") {
		t.Error("the return page holds a signed link")
	}
	// The consent opened the status session in this browser.
	status := f.do(http.MethodGet, "/status", nil)
	assertPage(t, status, http.StatusOK, "Not granted")

	// Archives in the bucket: a final object and a temporary part.
	bkt := f.env.Storage.Bucket(testBucket)
	names := []string{copyengine.UserPrefix(f.env.Config.ObjectPrefix, user) + "r/x/j/0-a.zip", copyengine.TempUserPrefix(user) + "r/x/j/0/part-00000"}
	for _, n := range names {
		w := bkt.Object(n).NewWriter(f.ctx)
		w.Write([]byte("archive"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// Step 1: the button asks for confirmation and deletes nothing.
	action, v := f.b.form(status.Body.String())
	if action != "/delete" || v.Get("csrf") == "" || len(v) != 1 {
		t.Fatalf("delete form %s %v", action, v)
	}
	rec := f.do(http.MethodPost, action, v)
	assertPage(t, rec, http.StatusOK, "Stop and delete your data?")
	for _, w := range []string{`name="confirm" value="yes"`, "Yes, stop and delete my data", "No, keep my data", `name="csrf" value="` + v.Get("csrf") + `"`} {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("confirmation page lacks %q", w)
		}
	}
	if _, err := f.env.Store.GetUser(f.ctx, user); err != nil {
		t.Fatalf("the confirmation step deleted the user: %v", err)
	}

	// Step 2: confirmed.
	confirmed, _ := url.ParseQuery(v.Encode())
	confirmed.Set("confirm", "yes")
	rec = f.do(http.MethodPost, "/delete", confirmed)
	assertPage(t, rec, http.StatusOK, "Your data was deleted")
	for _, w := range []string{"<dt>Files deleted from storage</dt><dd>2</dd>", "<dt>Exports</dt><dd>1</dd>", "access to your Google data was withdrawn"} {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("deleted page lacks %q:\n%s", w, rec.Body)
		}
	}
	f.pub.mu.Lock()
	evs := f.pub.events
	f.pub.mu.Unlock()
	if len(evs) != 1 || !strings.Contains(string(evs[0].Data), "user.purged") {
		t.Errorf("events published: %q, want one user.purged", evs)
	}
	recs, err := f.env.Store.FindUserRecords(f.ctx, user)
	if err != nil || !recs.Empty() {
		t.Errorf("records left: %+v, %v", recs, err)
	}
	if _, err := fsClient.Collection("tokens").Doc(user).Get(f.ctx); err == nil {
		t.Error("token left")
	}
	if err := iterate.All(bkt.Objects(f.ctx, nil).Next, func(a *storage.ObjectAttrs) error {
		if strings.Contains(a.Name, user) {
			t.Errorf("object left: %s", a.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Afterwards: polite pages.
	assertPage(t, f.do(http.MethodPost, "/delete", confirmed), http.StatusOK, "Nothing to delete")
	assertPage(t, f.do(http.MethodPost, "/delete", v), http.StatusOK, "Nothing to delete")
	assertPage(t, f.do(http.MethodGet, "/status", nil), http.StatusOK, "No export to show")
}

func TestDeleteFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.startGrant("delf-ana", store.AccessOneTime, []string{"myactivity.search"}, nil)
	f.h.purge = func(ctx context.Context, env *setup.Env, user string) (purge.Report, error) {
		return purge.Report{}, errors.New("storage unavailable (injected)")
	}
	b := f.openStatus("delf-ana")
	_, v := b.form(b.do(http.MethodGet, "/status", nil).Body.String())
	v.Set("confirm", "yes")
	assertPage(t, b.do(http.MethodPost, "/delete", v), http.StatusServiceUnavailable, "could not be deleted yet")
}
