package oauthcallback

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// A start link's signed since limits round 1: the start page says so, and the consent carries it through
// the OAuth state into the round.
func TestStartLinkSince(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	user := "since-ann"
	asked := []string{"myactivity.search", "youtube.subscriptions"}
	since := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	link := startlink.Sign([]byte(testLinkKey), startlink.Link{User: user, Resources: asked, Purpose: startlink.PurposeStart,
		Expires: time.Now().Add(time.Hour), Since: since})
	body := f.do(http.MethodGet, "/start?"+link.Encode(), nil).Body.String()
	for _, want := range []string{`Only activity from <time datetime="2026-03-04T05:06:00Z">Wednesday 4 March 2026, 05:06 UTC</time> on`,
		`name="since" value="2026-03-04T05:06:00Z"`} {
		if !strings.Contains(body, want) {
			t.Errorf("start page lacks %q:\n%s", want, body)
		}
	}
	cb := f.consent(f.authorize(link), "google-"+user, "time-based-30d", "allow", asked...)
	assertPage(t, f.do(http.MethodGet, cb, nil), http.StatusOK, "Your export has started")
	r, err := f.env.Store.GetRound(f.ctx, store.RoundID(user, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Since.Equal(since) || r.GrantFirst != 1 {
		t.Fatalf("round since %v, grantFirst %d; want %v, 1", r.Since, r.GrantFirst, since)
	}

	// Without since nothing is said and the round has none.
	plain := f.link("since-bob", time.Hour, asked...)
	if body := f.do(http.MethodGet, "/start?"+plain.Encode(), nil).Body.String(); strings.Contains(body, "Only activity from") || strings.Contains(body, `name="since"`) {
		t.Error("a link without since shows one")
	}
}

func TestStartLinkSinceRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	asked := []string{"myactivity.search"}
	future := startlink.Sign([]byte(testLinkKey), startlink.Link{User: "since-eve", Resources: asked, Purpose: startlink.PurposeStart,
		Expires: time.Now().Add(time.Hour), Since: time.Now().Add(48 * time.Hour)})
	tampered := startlink.Sign([]byte(testLinkKey), startlink.Link{User: "since-eve", Resources: asked, Purpose: startlink.PurposeStart,
		Expires: time.Now().Add(time.Hour), Since: time.Now().Add(-48 * time.Hour)})
	tampered.Set(startlink.ParamSince, "2001-01-01T00:00:00Z")
	for _, tc := range []struct {
		name string
		v    url.Values
		code int
		text string
	}{
		{"future", future, http.StatusBadRequest, "impossible start date"},
		{"tampered", tampered, http.StatusForbidden, "This link is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.v
			assertPage(t, f.do(http.MethodGet, "/start?"+q.Encode(), nil), tc.code, tc.text)
			assertPage(t, f.do(http.MethodPost, "/authorize", q), tc.code, tc.text)
		})
	}
	if n := len(f.statesOf("since-eve")); n != 0 {
		t.Errorf("%d oauth states stored for refused links", n)
	}
}
