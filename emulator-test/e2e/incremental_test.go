package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// TestIncrementalRoundsFromSince: a 30-day grant over 3 daily rounds from a start link with since. The
// start page shows the since; round 1 of myactivity.search starts there, rounds 2 and 3 where the round
// before ended, each holding far fewer bytes than a whole history; youtube.subscriptions is exported whole
// every round; the events carry the ranges.
func TestIncrementalRoundsFromSince(t *testing.T) {
	ctx := begin(t)
	since := st.Fake.Clock().Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	link := st.StartLinkSince("ria", []string{search, subs}, since)
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `<time datetime="` + since.Format(time.RFC3339) + `">`; resp.StatusCode != 200 || !strings.Contains(string(body), "Only activity from "+want) {
		t.Fatalf("start page (%d) does not show the since %s:\n%s", resp.StatusCode, want, body)
	}
	page, err := stack.SignIn(ctx, link, stack.Consent{Account: stack.Account("ria"), Access: "time-based-30d"})
	if err != nil || page.Status != 200 {
		t.Fatalf("sign in: %v (%+v)", err, page)
	}
	settle(t, ctx, "ria")

	var prev store.Resource
	var sub1, search1 int64
	for n := 1; n <= 3; n++ {
		rs := states(t, ctx, store.RoundID("ria", n))
		cur, s := rs[search], rs[subs]
		if cur.State != store.ResDone || s.State != store.ResDone {
			t.Fatalf("round %d: %s %s, %s %s", n, search, cur.State, subs, s.State)
		}
		want := since
		if n > 1 {
			want = prev.ExportTime
		}
		if !cur.StartTime.Equal(want) || cur.TimeFilter != store.TimeFilterApplied {
			t.Errorf("round %d %s starts %v (%s), want %v", n, search, cur.StartTime, cur.TimeFilter, want)
		}
		// 30 days of a 365-day history, then one day: a small fraction of a whole export (2 data files of 5 MiB).
		if limit := int64(5<<20) * 2 / 5; cur.Bytes > limit {
			t.Errorf("round %d %s holds %d bytes, want under %d", n, search, cur.Bytes, limit)
		}
		if n == 1 {
			sub1, search1 = s.Bytes, cur.Bytes
		} else if cur.Bytes*5 > search1 {
			t.Errorf("round %d %s holds %d bytes, round 1 (30 days) %d: want far fewer", n, search, cur.Bytes, search1)
		}
		if !s.StartTime.IsZero() || s.TimeFilter != store.TimeFilterUnsupported || s.Bytes != sub1 {
			t.Errorf("round %d %s: from %v (%s), %d bytes; want whole (%d bytes)", n, subs, s.StartTime, s.TimeFilter, s.Bytes, sub1)
		}
		prev = cur
	}
	for _, e := range userEvents(t, ctx, "ria") {
		if e.Type != outbox.ResourceExported {
			continue
		}
		r := states(t, ctx, e.Round)[e.Resource]
		if e.TimeRange == nil || !e.TimeRange.End.Equal(r.ExportTime) || e.TimeFilter != r.TimeFilter ||
			(e.TimeRange.Start == nil) != r.StartTime.IsZero() || e.TimeRange.Start != nil && !e.TimeRange.Start.Equal(r.StartTime) {
			t.Errorf("round %d %s event: time_range %+v, time_filter %q; store %v..%v %q", e.RoundNumber, e.Resource, e.TimeRange, e.TimeFilter, r.StartTime, r.ExportTime, r.TimeFilter)
		}
	}
}
