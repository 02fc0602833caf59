package oauthcallback

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/iterator"

	"github.com/portability-pipeline/pipeline/shared/purge"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/startlink"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/transfer"
)

// statusLink signs a status link valid for ttl.
func (f *fixture) statusLink(user string, ttl time.Duration) url.Values {
	return startlink.Sign([]byte(testLinkKey), startlink.Link{User: user, Purpose: startlink.PurposeStatus, Expires: time.Now().Add(ttl)})
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

// set puts a resource in a state, whatever its state was: written directly, since the store's
// transitions refuse the jumps (pending -> done) a status page fixture needs.
func (f *fixture) set(rid, name string, apply func(r *store.Resource)) {
	f.t.Helper()
	r, err := f.env.Store.GetResource(f.ctx, rid, name)
	if err != nil {
		f.t.Fatalf("set %s/%s: %v", rid, name, err)
	}
	apply(r)
	r.UpdatedAt = time.Now()
	if _, err := f.env.Store.Client().Collection("rounds").Doc(rid).Collection("resources").Doc(name).Set(f.ctx, r); err != nil {
		f.t.Fatalf("set %s/%s: %v", rid, name, err)
	}
}

func TestStatusLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.startGrant("stl-ana", store.AccessOneTime, []string{"myactivity.search"}, nil)
	good := f.statusLink("stl-ana", 31*24*time.Hour)
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
		{"valid", good, http.StatusOK, "Your export is running"},
		{"forged user", edit("user", "stl-ben"), http.StatusForbidden, "This link is not valid"},
		{"forged signature", edit("sig", strings.Repeat("ab", 32)), http.StatusForbidden, "This link is not valid"},
		{"expired", f.statusLink("stl-ana", -time.Minute), http.StatusForbidden, "This link has expired"},
		{"too far ahead", f.statusLink("stl-ana", 40*24*time.Hour), http.StatusForbidden, "This link is not valid"},
		{"start link used as status link", start, http.StatusForbidden, "This link is not valid"},
		{"start link without its resources", startNoResources, http.StatusForbidden, "This link is not valid"},
		{"valid, nothing stored", f.statusLink("stl-nobody", time.Hour), http.StatusOK, "No export to show"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertPage(t, f.do(http.MethodGet, "/status?"+tc.v.Encode(), nil), tc.code, tc.text)
			if tc.code == http.StatusForbidden { // the delete action refuses the same links
				assertPage(t, f.do(http.MethodPost, "/delete", tc.v), tc.code, tc.text)
				c, _ := url.ParseQuery(tc.v.Encode())
				c.Set("confirm", "yes")
				assertPage(t, f.do(http.MethodPost, "/delete", c), tc.code, tc.text)
			}
		})
	}
	// A status link cannot open a consent.
	assertPage(t, f.do(http.MethodGet, "/start?"+good.Encode(), nil), http.StatusForbidden, "This link is not valid")
	assertPage(t, f.do(http.MethodPost, "/authorize", good), http.StatusForbidden, "This link is not valid")
	if _, err := f.env.Store.GetUser(f.ctx, "stl-ana"); err != nil {
		t.Errorf("refused delete links touched the user: %v", err)
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
	if _, _, err := f.env.Store.PlanTransfer(f.ctx, rid, "youtube.subscriptions", "job-subs", time.Now(), []store.Object{
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

	link := f.statusLink("sts-ana", time.Hour)
	rec := f.do(http.MethodGet, "/status?"+link.Encode(), nil)
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
		`action="` + testPublicURL + `/delete"`, `name="sig" value="` + link.Get("sig") + `"`, "Stop and delete my data", "one-time access"} {
		if !strings.Contains(body, w) {
			t.Errorf("status page lacks %q", w)
		}
	}
	// The person can stop the reloading (WCAG 2.2.1).
	off := f.do(http.MethodGet, "/status?"+link.Encode()+"&refresh=off", nil).Body.String()
	if strings.Contains(off, `http-equiv="refresh"`) || !strings.Contains(off, "Turn them on again") {
		t.Error("refresh=off still reloads")
	}

	// Everything finishes: the page stops reloading.
	for _, name := range []string{"chrome.bookmarks", "chrome.history", "discover.likes", "myactivity.search", "youtube.subscriptions"} {
		f.set(rid, name, func(x *store.Resource) { x.State, x.Objects, x.Bytes = store.ResDone, 1, 10 })
	}
	// The round completes: the page reloads until its wrap-up (the reset) is recorded.
	if _, complete, err := f.env.Store.SettleRound(f.ctx, rid); err != nil || !complete {
		t.Fatalf("settle: complete %v, %v", complete, err)
	}
	body = f.do(http.MethodGet, "/status?"+link.Encode(), nil).Body.String()
	if !strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "being wrapped up") {
		t.Errorf("complete round, reset pending:\n%s", body)
	}
	if err := f.env.Store.CloseRound(f.ctx, rid, "reset", time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	body = f.do(http.MethodGet, "/status?"+link.Encode(), nil).Body.String()
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
	at := time.Date(2031, 1, 2, 3, 4, 0, 0, time.UTC)
	if _, err := f.env.Store.ScheduleNextRound(f.ctx, r, at); err != nil {
		t.Fatal(err)
	}
	body := f.do(http.MethodGet, "/status?"+f.statusLink("stt-ana", time.Hour).Encode(), nil).Body.String()
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

var statusHref = regexp.MustCompile(`href="(` + regexp.QuoteMeta(testPublicURL) + `/status\?[^"]+)"`)

func TestDeleteFlow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const user = "del-ana"
	done := f.do(http.MethodGet, f.flow(user, "one-time", []string{"myactivity.search", "youtube.subscriptions"}, []string{"myactivity.search"}), nil)
	assertPage(t, done, http.StatusOK, "See how your export is going")
	m := statusHref.FindStringSubmatch(done.Body.String())
	if m == nil {
		t.Fatalf("no status link on the return page:\n%s", done.Body)
	}
	status, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	v := status.Query()
	if l, err := startlink.Verify([]byte(testLinkKey), startlink.PurposeStatus, v, time.Now()); err != nil || l.User != user ||
		time.Until(l.Expires) < 30*24*time.Hour {
		t.Fatalf("status link %v: %+v, %v", v, l, err)
	}
	assertPage(t, f.do(http.MethodGet, "/status?"+v.Encode(), nil), http.StatusOK, "Not granted")

	// Archives in the bucket: a final object and a temporary part.
	bkt := f.env.Storage.Bucket(testBucket)
	names := []string{transfer.UserPrefix(f.env.Config.ObjectPrefix, user) + "r/x/j/0-a.zip", transfer.TempUserPrefix(user) + "r/x/j/0/part-00000"}
	for _, n := range names {
		w := bkt.Object(n).NewWriter(f.ctx)
		w.Write([]byte("archive"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// Step 1: the button asks for confirmation and deletes nothing.
	rec := f.do(http.MethodPost, "/delete", v)
	assertPage(t, rec, http.StatusOK, "Stop and delete your data?")
	for _, w := range []string{`name="confirm" value="yes"`, "Yes, stop and delete my data", "No, keep my data", `name="sig" value="` + v.Get("sig") + `"`} {
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
	it := bkt.Objects(f.ctx, nil)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(a.Name, user) {
			t.Errorf("object left: %s", a.Name)
		}
	}

	// Afterwards: polite pages.
	assertPage(t, f.do(http.MethodPost, "/delete", confirmed), http.StatusOK, "Nothing to delete")
	assertPage(t, f.do(http.MethodPost, "/delete", v), http.StatusOK, "Nothing to delete")
	assertPage(t, f.do(http.MethodGet, "/status?"+v.Encode(), nil), http.StatusOK, "No export to show")
}

func TestDeleteFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.startGrant("delf-ana", store.AccessOneTime, []string{"myactivity.search"}, nil)
	f.h.purge = func(ctx context.Context, env *setup.Env, user string) (purge.Report, error) {
		return purge.Report{}, errors.New("storage unavailable (injected)")
	}
	v := f.statusLink("delf-ana", time.Hour)
	v.Set("confirm", "yes")
	assertPage(t, f.do(http.MethodPost, "/delete", v), http.StatusServiceUnavailable, "could not be deleted yet")
}
