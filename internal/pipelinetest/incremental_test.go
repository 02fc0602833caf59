package pipelinetest_test

import (
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

const (
	search = "myactivity.search"
	subs   = "youtube.subscriptions"
)

// TestIncrementalRounds: a 30-day grant over 3 daily rounds. Each later round of myactivity.search starts
// exactly where the previous one ended (no gap, no overlap) and holds far fewer bytes; youtube.subscriptions
// (no time filters) is exported whole each round; the store, events and manifests carry the ranges.
func TestIncrementalRounds(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2, Env: map[string]string{"TIME_BASED_HORIZON": "72h"},
		Fake: fakeportability.Options{URLsPerJob: 2, ArchiveSize: 365 * 2000}})
	h.Consent("ivy", []string{search, subs}, "time-based-30d")
	h.Run(6000)

	res := func(n int, name string) *store.Resource {
		r, err := h.Env.Store.GetResource(h.Ctx, store.RoundID("ivy", n), name)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != store.ResDone || r.ExportTime.IsZero() {
			t.Fatalf("round %d %s: %s, export time %v", n, name, r.State, r.ExportTime)
		}
		return r
	}
	if u, _ := h.Env.Store.GetUser(h.Ctx, "ivy"); u == nil || u.Rounds != 3 {
		t.Fatalf("user after the grant: %+v, want 3 rounds", u)
	}
	first := res(1, search)
	if !first.StartTime.IsZero() || first.TimeFilter != store.TimeFilterNone {
		t.Errorf("round 1 %s: start %v, filter %q; want the whole history", search, first.StartTime, first.TimeFilter)
	}
	for n := 2; n <= 3; n++ {
		prev, cur := res(n-1, search), res(n, search)
		if !cur.StartTime.Equal(prev.ExportTime) || cur.TimeFilter != store.TimeFilterApplied {
			t.Errorf("round %d %s starts %v (%s), want round %d's export time %v", n, search, cur.StartTime, cur.TimeFilter, n-1, prev.ExportTime)
		}
		if cur.Bytes*10 > first.Bytes {
			t.Errorf("round %d %s holds %d bytes, round 1 %d: want far fewer", n, search, cur.Bytes, first.Bytes)
		}
		s := res(n, subs)
		if !s.StartTime.IsZero() || s.TimeFilter != store.TimeFilterUnsupported || s.Bytes != res(1, subs).Bytes {
			t.Errorf("round %d %s: start %v, filter %q, %d bytes; want whole each round (%d bytes)", n, subs, s.StartTime, s.TimeFilter, s.Bytes, res(1, subs).Bytes)
		}
	}
	// The fake was asked exactly these start times.
	var starts []string
	for _, j := range h.Fake.Jobs("") {
		if j.Resources[0] == search {
			starts = append(starts, j.StartTime)
		}
	}
	if len(starts) != 3 || starts[0] != "" || starts[1] != res(1, search).ExportTime.UTC().Format(time.RFC3339Nano) ||
		starts[2] != res(2, search).ExportTime.UTC().Format(time.RFC3339Nano) {
		t.Errorf("start times sent: %q", starts)
	}

	list := published(t, h)
	exported := 0
	for _, e := range list {
		if e.Type != outbox.ResourceExported {
			continue
		}
		exported++
		r := res(e.RoundNumber, e.Resource)
		if e.TimeRange == nil || !e.TimeRange.End.Equal(r.ExportTime) || e.TimeFilter != r.TimeFilter {
			t.Fatalf("round %d %s: time_range %+v, time_filter %q; want end %v, filter %q", e.RoundNumber, e.Resource, e.TimeRange, e.TimeFilter, r.ExportTime, r.TimeFilter)
		}
		if (e.TimeRange.Start == nil) != r.StartTime.IsZero() || e.TimeRange.Start != nil && !e.TimeRange.Start.Equal(r.StartTime) {
			t.Errorf("round %d %s: time_range.start %v, want %v", e.RoundNumber, e.Resource, e.TimeRange.Start, r.StartTime)
		}
		m := readManifest(t, h, e)
		if !m.TimeRange.End.Equal(r.ExportTime) || (m.TimeRange.Start == nil) != r.StartTime.IsZero() ||
			m.TimeRange.Start != nil && !m.TimeRange.Start.Equal(r.StartTime) || m.TimeFilter != r.TimeFilter {
			t.Errorf("round %d %s manifest: time_range %+v, time_filter %q; want %v..%v, %q", e.RoundNumber, e.Resource, m.TimeRange, m.TimeFilter, r.StartTime, r.ExportTime, r.TimeFilter)
		}
	}
	if exported != 6 {
		t.Errorf("%d resource.exported events, want 6", exported)
	}
	if n := h.VerifyExports("ivy"); n == 0 {
		t.Error("nothing verified")
	}
}

// TestIncrementalRoundsOverlapSinceAndGaps: ROUND_OVERLAP moves later starts back; round 1 starts at the
// grant's since; a round whose export of a resource failed is skipped over, so the next one starts from the last
// export that reached the bucket (no gap).
func TestIncrementalRoundsOverlapSinceAndGaps(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Env: map[string]string{"TIME_BASED_HORIZON": "72h", "ROUND_OVERLAP": "10m"},
		Fake: fakeportability.Options{URLsPerJob: 1, ArchiveSize: 365 * 1000}})
	since := h.Fake.Clock().Now().Add(-5 * 24 * time.Hour).UTC().Truncate(time.Second)
	// myactivity.youtube keeps every round exporting something (a round that exports nothing ends the grant).
	h.ConsentSince("sam", []string{search, "myactivity.youtube"}, "time-based-30d", since)
	// Round 2's job fails every time (4 jobs: the original and 3 retries).
	failed := false
	h.BeforeDeliver = func(d *pipelinetest.Delivery) {
		if !failed {
			if u, _ := h.Env.Store.GetUser(h.Ctx, "sam"); u != nil && u.Rounds == 2 {
				failed = true
				if err := h.Fake.InjectFault(fakeportability.Fault{Resource: search, FailNextJobs: 4}); err != nil {
					t.Error(err)
				}
			}
		}
	}
	h.Run(6000)
	get := func(n int) *store.Resource {
		x, err := h.Env.Store.GetResource(h.Ctx, store.RoundID("sam", n), search)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	r1, r2, r3 := get(1), get(2), get(3)
	if !r1.StartTime.Equal(since) || r1.State != store.ResDone {
		t.Errorf("round 1: %s from %v, want done from since %v", r1.State, r1.StartTime, since)
	}
	if r2.State != store.ResFailed {
		t.Fatalf("round 2: %s, want failed (fault)", r2.State)
	}
	if want := r1.ExportTime.Add(-10 * time.Minute); r3.State != store.ResDone || !r3.StartTime.Equal(want) {
		t.Errorf("round 3: %s from %v, want done from round 1's export time minus the overlap, %v", r3.State, r3.StartTime, want)
	}
}
