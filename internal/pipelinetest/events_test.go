package pipelinetest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/purge"
)

// published returns the events the Bus recorded (deduplicated by id, in the order of their first
// publication) and fails t for each problem scenario.CheckEvents finds.
func published(t *testing.T, h *pipelinetest.Harness) []scenario.Event {
	t.Helper()
	list, err := h.Events(h.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	scenario.ExpectEvents(t, list)
	return list
}

func TestEventsOfAOneTimeRoundDeliveredTwice(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2,
		Fake: fakeportability.Options{URLsPerJob: 2, ArchiveSize: 3<<20 + 12345}})
	list := scenario.OneTimeRoundEvents(t, h.Ctx, h, "ed", 2)
	t.Logf("%d events", len(list))
}

func TestEventsOfATimeBasedGrant(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2, Env: map[string]string{"TIME_BASED_HORIZON": "48h"},
		Fake: fakeportability.Options{URLsPerJob: 1, ArchiveSize: 64 << 10}})
	h.Consent("tim", []string{"myactivity.search"}, "time-based-30d")
	h.Run(3000)
	list := published(t, h)
	want := []string{
		"1 resource.exported myactivity.search/done",
		"1 round.completed",
		"2 resource.exported myactivity.search/done",
		"2 round.completed",
		"2 grant.ended horizon",
	}
	scenario.ExpectLines(t, list, want)
}

func TestEventsOfAFailedAndANotGrantedResource(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2, Fake: fakeportability.Options{URLsPerJob: 1, ArchiveSize: 64 << 10}})
	if err := h.Fake.InjectFault(fakeportability.Fault{Resource: "myactivity.search", FailNextJobs: 4}); err != nil {
		t.Fatal(err)
	}
	h.ConsentPartial("fia", three, []string{"myactivity.search", "myactivity.youtube"}, "one-time")
	h.Run(3000)
	list := published(t, h)
	want := []string{
		"1 resource.exported myactivity.youtube/done",
		"1 resource.failed myactivity.search/failed",
		"1 resource.failed youtube.subscriptions/not_granted",
		"1 round.completed",
		"1 grant.ended one_time",
	}
	scenario.ExpectLines(t, list, want)
	for _, e := range list {
		if e.Type == outbox.ResourceFailed && (e.Reason == "" || len(e.Objects) != 0) {
			t.Errorf("%s: reason %q, %d objects", e.Resource, e.Reason, len(e.Objects))
		}
	}
}

func TestEventOfAPurge(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Fake: fakeportability.Options{URLsPerJob: 1, ArchiveSize: 64 << 10}})
	h.Consent("pia", []string{"myactivity.search"}, "one-time")
	h.Run(1000)
	if _, err := purge.Purge(h.Ctx, h.Env, "pia"); err != nil {
		t.Fatal(err)
	}
	list := published(t, h)
	want := []string{
		"1 resource.exported myactivity.search/done",
		"1 round.completed",
		"1 grant.ended one_time",
		"0 user.purged",
	}
	scenario.ExpectLines(t, list, want)
	if n, err := h.Env.Store.DeleteEvents(h.Ctx, "pia", list[len(list)-1].ID); err != nil || n != 0 {
		t.Errorf("%d event records of the purged user left besides the purge's (%v)", n, err)
	}
}

// A resource of many archives is finished by Finish messages, each describing archives only until its
// read budget is spent, so no archive count can push one delivery past its limit; with every message
// delivered twice it still ends in one manifest listing every archive, one resource.exported event and one
// reset.
func TestFinishingManyArchivesStaysWithinTheDeliveryBudget(t *testing.T) {
	t.Parallel()
	const budget = 2500 // bytes of directories per delivery: two or three of these archives
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2,
		Fake: fakeportability.Options{URLsPerJob: 12, ArchiveSize: 200 << 10, EntrySize: 16 << 10},
		Env:  map[string]string{"FINISH_READ_BUDGET": fmt.Sprint(budget)}})
	h.Consent("fin", []string{"myactivity.search"}, "one-time")
	h.Run(4000)

	list := published(t, h)
	var exported []scenario.Event
	for _, e := range list {
		if e.Type == outbox.ResourceExported {
			exported = append(exported, e)
		}
	}
	if len(exported) != 1 || len(exported[0].Objects) != 12 {
		t.Fatalf("resource.exported events: %+v", exported)
	}
	scenario.ExpectManifest(t, h.Ctx, h.View(), exported[0], h.Fake.Jobs("fin")[0])
	if c := h.Fake.Calls(); c["reset"] != 1 {
		t.Errorf("reset calls = %v, want 1", c["reset"])
	}
	if n := h.Bus.Published[h.Env.Config.Topics.Reset]; n != 1 {
		t.Errorf("%d reset requests, want 1", n)
	}

	// Each delivery that described archives logged what it read; none went past the budget by more than
	// the one archive that crossed it.
	man := readManifest(t, h, exported[0])
	var largest int64
	for _, a := range man.Archives {
		largest = max(largest, a.BytesRead)
	}
	deliveries, described := 0, 0
	for _, line := range strings.Split(h.Logs.String(), "\n") {
		var l struct {
			Msg       string `json:"message"`
			Described int    `json:"described"`
			BytesRead int64  `json:"bytes_read"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "archives described" && l.Msg != "manifest continues in another delivery" {
			continue
		}
		deliveries++
		described += l.Described
		if l.BytesRead > budget+largest {
			t.Errorf("one delivery read %d bytes, budget %d + one archive's %d", l.BytesRead, budget, largest)
		}
	}
	if deliveries < 4 || described < 12 {
		t.Errorf("%d deliveries described %d archives; want the 12 spread over several", deliveries, described)
	}
	t.Logf("%d finishing deliveries described %d archives (largest read %d bytes, budget %d)", deliveries, described, largest, budget)
}

func readManifest(t *testing.T, h *pipelinetest.Harness, e scenario.Event) manifest.Manifest {
	t.Helper()
	m, err := scenario.ReadManifest(h.Ctx, h.View(), e)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
