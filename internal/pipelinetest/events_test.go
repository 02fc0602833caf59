package pipelinetest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/purge"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// published decodes the events the Bus recorded, checks their attributes and ordering key, and returns
// them deduplicated by id in the order of their first publication, with the number of duplicates.
func published(t *testing.T, h *pipelinetest.Harness) ([]events.Event, int) {
	t.Helper()
	var out []events.Event
	seen := map[string]string{}
	dups := 0
	for _, p := range h.Bus.Events(h.Env.Config.Topics.Events) {
		e, err := events.Decode(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		if p.OrderingKey != e.User || p.Attrs["type"] != e.Type || p.Attrs["user"] != e.User || p.Attrs["schema_version"] != "1" {
			t.Errorf("event %s: ordering key %q, attributes %v", e.ID, p.OrderingKey, p.Attrs)
		}
		if prev, ok := seen[e.ID]; ok {
			if prev != string(p.Data) {
				t.Errorf("event %s published with different bodies:\n%s\n%s", e.ID, prev, p.Data)
			}
			dups++
			continue
		}
		seen[e.ID] = string(p.Data)
		out = append(out, e)
	}
	// Each user's first publications follow (round_number, stage).
	last := map[string][2]int{}
	for _, e := range out {
		k := [2]int{e.RoundNumber, e.Stage}
		if e.Type == events.Purged {
			k[0] = 1 << 30
		}
		if p := last[e.User]; k[0] < p[0] || k[0] == p[0] && k[1] < p[1] {
			t.Errorf("event %s %s (round %d stage %d) published after round %d stage %d", e.Type, e.Resource, e.RoundNumber, e.Stage, p[0], p[1])
		}
		last[e.User] = k
	}
	return out, dups
}

// sequence renders events as "type resource/state" lines, resources sorted within each (round, stage).
func sequence(list []events.Event) []string {
	var out []string
	var group []string
	flush := func() { slices.Sort(group); out = append(out, group...); group = nil }
	for i, e := range list {
		if i > 0 && (e.RoundNumber != list[i-1].RoundNumber || e.Stage != list[i-1].Stage) {
			flush()
		}
		s := fmt.Sprintf("%d %s", e.RoundNumber, e.Type)
		switch e.Type {
		case events.ResourceExported, events.ResourceFailed:
			s += " " + e.Resource + "/" + e.State
		case events.GrantEnded:
			s += " " + e.Ending
		}
		group = append(group, s)
	}
	flush()
	return out
}

func TestEventsOfAOneTimeRoundDeliveredTwice(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2,
		Fake: fakeportability.Options{URLsPerJob: 2, ArchiveSize: 3<<20 + 12345}})
	round := h.Consent("ed", three, "one-time")
	h.Run(2000)
	list, dups := published(t, h)
	want := []string{
		"1 resource.exported myactivity.search/done",
		"1 resource.exported myactivity.youtube/done",
		"1 resource.exported youtube.subscriptions/done",
		"1 round.completed",
		"1 grant.ended one_time",
	}
	if got := sequence(list); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	jobs := map[string]fakeportability.JobInfo{}
	for _, j := range h.Fake.Jobs("ed") {
		jobs[j.ID] = j
	}
	for _, e := range list {
		if e.Round != round || e.User != "ed" {
			t.Errorf("event %s of %s/%s", e.Type, e.User, e.Round)
		}
		switch e.Type {
		case events.ResourceExported:
			if len(e.Objects) != 2 || e.Bytes == 0 || e.Manifest == "" || e.ExportTime == nil {
				t.Errorf("%s: %+v", e.Resource, e)
			}
			checkManifest(t, h, e, jobs[e.Job])
		case events.RoundCompleted:
			if len(e.Resources) != 3 || e.Resources[0].State != store.ResDone || e.Resources[0].Objects != 2 {
				t.Errorf("round summary %+v", e.Resources)
			}
		}
	}
	t.Logf("%d events, %d published again", len(list), dups)
}

// checkManifest reads the event's manifest and compares its files with the fake's zip entries.
func checkManifest(t *testing.T, h *pipelinetest.Harness, e events.Event, job fakeportability.JobInfo) {
	t.Helper()
	name := strings.TrimPrefix(e.Manifest, "gs://"+pipelinetest.Bucket+"/")
	r, err := h.Env.Storage.Bucket(pipelinetest.Bucket).Object(name).NewReader(h.Ctx)
	if err != nil {
		t.Fatalf("manifest of %s: %v", e.Resource, err)
	}
	defer r.Close()
	data, _ := io.ReadAll(r)
	var m manifest.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Archives) != len(job.Files) {
		t.Fatalf("%s: %d archives in the manifest, the job has %d files", e.Resource, len(m.Archives), len(job.Files))
	}
	for i, f := range job.Files {
		a := m.Archives[i]
		if a.Object != e.Objects[i].Name || a.Size != f.Size || a.CRC32C != f.CRC32C || a.Kind != f.Kind {
			t.Errorf("%s archive %d: %s %d %s %s, fake %d %s %s", e.Resource, i, a.Object, a.Size, a.CRC32C, a.Kind, f.Size, f.CRC32C, f.Kind)
		}
		if a.Kind == manifest.KindZip && (a.BytesRead <= 0 || a.BytesRead > a.Size) {
			t.Errorf("%s archive %d: %d bytes read of %d", e.Resource, i, a.BytesRead, a.Size)
		}
		var got, want []string
		for _, x := range a.Files {
			got = append(got, fmt.Sprintf("%s %d %08x", x.Path, x.Size, x.CRC32))
		}
		for _, x := range f.Entries {
			want = append(want, fmt.Sprintf("%s %d %08x", x.Path, x.Size, x.CRC32))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s archive %d files:\n%s\nfake:\n%s", e.Resource, i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if len(m.Services) == 0 {
		t.Errorf("%s: no services from archive_browser.json", e.Resource)
	}
}

func TestEventsOfATimeBasedGrant(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2, Env: map[string]string{"TIME_BASED_HORIZON": "48h"},
		Fake: fakeportability.Options{URLsPerJob: 1, ArchiveSize: 64 << 10}})
	h.Consent("tim", []string{"myactivity.search"}, "time-based-30d")
	h.Run(3000)
	list, _ := published(t, h)
	want := []string{
		"1 resource.exported myactivity.search/done",
		"1 round.completed",
		"2 resource.exported myactivity.search/done",
		"2 round.completed",
		"2 grant.ended horizon",
	}
	if got := sequence(list); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEventsOfAFailedAndANotGrantedResource(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2, Fake: fakeportability.Options{URLsPerJob: 1, ArchiveSize: 64 << 10}})
	if err := h.Fake.InjectFault(fakeportability.Fault{Resource: "myactivity.search", FailNextJobs: 4}); err != nil {
		t.Fatal(err)
	}
	h.ConsentPartial("fia", three, []string{"myactivity.search", "myactivity.youtube"}, "one-time")
	h.Run(3000)
	list, _ := published(t, h)
	want := []string{
		"1 resource.exported myactivity.youtube/done",
		"1 resource.failed myactivity.search/failed",
		"1 resource.failed youtube.subscriptions/not_granted",
		"1 round.completed",
		"1 grant.ended one_time",
	}
	if got := sequence(list); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range list {
		if e.Type == events.ResourceFailed && (e.Reason == "" || len(e.Objects) != 0) {
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
	list, _ := published(t, h)
	want := []string{
		"1 resource.exported myactivity.search/done",
		"1 round.completed",
		"1 grant.ended one_time",
		"0 user.purged",
	}
	if got := sequence(list); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
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

	list, _ := published(t, h)
	var exported []events.Event
	for _, e := range list {
		if e.Type == events.ResourceExported {
			exported = append(exported, e)
		}
	}
	if len(exported) != 1 || len(exported[0].Objects) != 12 {
		t.Fatalf("resource.exported events: %+v", exported)
	}
	checkManifest(t, h, exported[0], h.Fake.Jobs("fin")[0])
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

func readManifest(t *testing.T, h *pipelinetest.Harness, e events.Event) manifest.Manifest {
	t.Helper()
	name := strings.TrimPrefix(e.Manifest, "gs://"+pipelinetest.Bucket+"/")
	r, err := h.Env.Storage.Bucket(pipelinetest.Bucket).Object(name).NewReader(h.Ctx)
	if err != nil {
		t.Fatalf("manifest of %s: %v", e.Resource, err)
	}
	defer r.Close()
	var m manifest.Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
