package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// userEvents waits for user's grant.ended event and returns the user's events (deduplicated by id, in
// order of first arrival), checking attributes, ordering key and the (round_number, stage) order.
func userEvents(t *testing.T, ctx context.Context, user string) []scenario.Event {
	t.Helper()
	list, err := scenario.WaitUserEvents(ctx, st, user)
	if err != nil {
		t.Fatal(err)
	}
	scenario.ExpectEvents(t, list)
	return list
}

// settledEvents waits until user's grants are closed and checks that the user's events (userEvents) are
// the lines want; it returns them for the test's own checks.
func settledEvents(t *testing.T, ctx context.Context, user string, want []string) []scenario.Event {
	t.Helper()
	settle(t, ctx, user)
	list := userEvents(t, ctx, user)
	scenario.ExpectLines(t, list, want)
	return list
}

func TestEventsOfAOneTimeRoundDeliveredTwice(t *testing.T) {
	ctx := begin(t)
	st.DeliverTwice(true)
	list := scenario.OneTimeRoundEvents(t, ctx, st, "eva", 2)
	t.Logf("%d events, %d duplicate pushes in the pipeline", len(list), st.DuplicatePushes())
}

func TestEventsOfATimeBasedGrantDeliveredTwice(t *testing.T) {
	ctx := begin(t)
	st.DeliverTwice(true)
	signIn(t, ctx, "tom", []string{search}, stack.Consent{Access: "time-based-30d"})
	// TIME_BASED_HORIZON is 72h: three rounds, then the reset.
	list := settledEvents(t, ctx, "tom", []string{
		"1 resource.exported myactivity.search/done",
		"1 round.completed",
		"2 resource.exported myactivity.search/done",
		"2 round.completed",
		"3 resource.exported myactivity.search/done",
		"3 round.completed",
		"3 grant.ended horizon",
	})
	jobs := map[string]bool{}
	for _, e := range list {
		if e.Type == outbox.ResourceExported {
			jobs[e.Job] = true
		}
	}
	if len(jobs) != 3 {
		t.Errorf("%d distinct jobs exported, want 3", len(jobs))
	}
}

func TestEventsOfAFailedResourceDeliveredTwice(t *testing.T) {
	ctx := begin(t)
	st.DeliverTwice(true)
	inject(t, fakeportability.Fault{Resource: search, FailNextJobs: 4})
	signIn(t, ctx, "flo", three, stack.Consent{Access: "one-time"})
	list := settledEvents(t, ctx, "flo", []string{
		"1 resource.exported myactivity.youtube/done",
		"1 resource.exported youtube.subscriptions/done",
		"1 resource.failed myactivity.search/failed",
		"1 round.completed",
		"1 grant.ended one_time",
	})
	for _, e := range list {
		switch e.Type {
		case outbox.ResourceFailed:
			if !strings.Contains(e.Reason, "failed 4 times") || e.Manifest != "" || len(e.Objects) != 0 {
				t.Errorf("failed event: reason %q, manifest %q, %d objects", e.Reason, e.Manifest, len(e.Objects))
			}
		case outbox.RoundCompleted:
			states := map[string]store.ResourceState{}
			for _, r := range e.Resources {
				states[r.Resource] = store.ResourceState(r.State)
			}
			if states[search] != store.ResFailed || states[youtube] != store.ResDone || states[subs] != store.ResDone {
				t.Errorf("round summary %v", states)
			}
		}
	}
}
