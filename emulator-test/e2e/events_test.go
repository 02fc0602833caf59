package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// userEvents waits for user's grant.ended event and returns the user's events (deduplicated by id, in
// order of first arrival), checking attributes, ordering key and the (round_number, stage) order.
func userEvents(t *testing.T, ctx context.Context, user string) []stack.Event {
	t.Helper()
	mine := func(list []stack.Event) []stack.Event {
		var out []stack.Event
		for _, e := range list {
			if e.User == user {
				out = append(out, e)
			}
		}
		return out
	}
	list, err := st.WaitEvents(ctx, func(list []stack.Event) bool {
		return slices.ContainsFunc(mine(list), func(e stack.Event) bool { return e.Type == events.GrantEnded })
	})
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	out := mine(list)
	var last [2]int
	for _, e := range out {
		if e.OrderingKey != user || e.Attrs["type"] != e.Type || e.Attrs["user"] != user || e.Attrs["schema_version"] != "1" {
			t.Errorf("%s %s: ordering key %q, attributes %v", e.Type, e.ID, e.OrderingKey, e.Attrs)
		}
		k := [2]int{e.RoundNumber, e.Stage}
		if k[0] < last[0] || k[0] == last[0] && k[1] < last[1] {
			t.Errorf("%s %s (round %d stage %d) arrived after round %d stage %d", e.Type, e.Resource, k[0], k[1], last[0], last[1])
		}
		last = k
	}
	return out
}

// lines renders events as "round type resource/state", sorted within each (round, stage).
func lines(list []stack.Event) []string {
	var out, group []string
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

func expectLines(t *testing.T, got []stack.Event, want []string) {
	t.Helper()
	if g := lines(got); !slices.Equal(g, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
}

func TestEventsOfAOneTimeRoundDeliveredTwice(t *testing.T) {
	ctx := begin(t)
	st.DeliverTwice(true)
	signIn(t, ctx, "eva", three, stack.Consent{Access: "one-time"})
	settle(t, ctx, "eva")
	list := userEvents(t, ctx, "eva")
	expectLines(t, list, []string{
		"1 resource.exported myactivity.search/done",
		"1 resource.exported myactivity.youtube/done",
		"1 resource.exported youtube.subscriptions/done",
		"1 round.completed",
		"1 grant.ended one_time",
	})
	jobs := map[string]fakeportability.JobInfo{}
	for _, j := range st.Fake.Jobs(account("eva")) {
		jobs[j.ID] = j
	}
	for _, e := range list {
		if e.Type != events.ResourceExported {
			continue
		}
		j := jobs[e.Job]
		if len(e.Objects) != len(j.Files) || len(j.Files) != 2 {
			t.Errorf("%s: %d objects, the job has %d files", e.Resource, len(e.Objects), len(j.Files))
			continue
		}
		for i, f := range j.Files {
			if o := e.Objects[i]; o.Size != f.Size || o.CRC32C != f.CRC32C {
				t.Errorf("%s object %d: %d bytes crc32c %s, fake %d %s", e.Resource, i, o.Size, o.CRC32C, f.Size, f.CRC32C)
			}
		}
		expectManifest(t, ctx, e, j)
	}
	if rep := verified(t, ctx, "eva"); rep.Manifests != 3 {
		t.Errorf("%d manifests stored, want 3", rep.Manifests)
	}
	t.Logf("%d events, %d duplicate pushes in the pipeline", len(list), st.DuplicatePushes())
}

// expectManifest reads the event's manifest.json and compares every archive's files with the zip
// entries the fake put in the job's files.
func expectManifest(t *testing.T, ctx context.Context, e stack.Event, j fakeportability.JobInfo) {
	t.Helper()
	name, ok := strings.CutPrefix(e.Manifest, "gs://"+st.Bucket+"/")
	if !ok {
		t.Fatalf("%s: manifest at %q", e.Resource, e.Manifest)
	}
	r, err := st.StorageClient.Bucket(st.Bucket).Object(name).NewReader(ctx)
	if err != nil {
		t.Fatalf("%s: read manifest: %v", e.Resource, err)
	}
	defer r.Close()
	data, _ := io.ReadAll(r)
	var m manifest.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Job != e.Job || m.Resource != e.Resource || len(m.Archives) != len(j.Files) || m.ExportTime.IsZero() {
		t.Fatalf("%s: manifest of job %s/%s with %d archives, fake job %s with %d files", e.Resource, m.Job, m.Resource, len(m.Archives), j.ID, len(j.Files))
	}
	for i, f := range j.Files {
		a := m.Archives[i]
		if a.Kind != f.Kind || a.Size != f.Size || a.Object != e.Objects[i].Name {
			t.Errorf("%s archive %d: %s %s %d, fake %s %d", e.Resource, i, a.Object, a.Kind, a.Size, f.Kind, f.Size)
		}
		var got, want []string
		for _, x := range a.Files {
			got = append(got, fmt.Sprintf("%s %d %08x", x.Path, x.Size, x.CRC32))
		}
		for _, x := range f.Entries {
			want = append(want, fmt.Sprintf("%s %d %08x", x.Path, x.Size, x.CRC32))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s archive %d lists:\n%s\nthe fake put in it:\n%s", e.Resource, i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if !slices.ContainsFunc(m.Services, func(s manifest.Service) bool {
		return slices.ContainsFunc(s.Folders, func(f manifest.Folder) bool { return f.Resource == e.Resource })
	}) {
		t.Errorf("%s: archive_browser.json services %+v do not name the resource", e.Resource, m.Services)
	}
}

func TestEventsOfATimeBasedGrantDeliveredTwice(t *testing.T) {
	ctx := begin(t)
	st.DeliverTwice(true)
	signIn(t, ctx, "tom", []string{search}, stack.Consent{Access: "time-based-30d"})
	settle(t, ctx, "tom")
	list := userEvents(t, ctx, "tom")
	// TIME_BASED_HORIZON is 72h: three rounds, then the reset.
	expectLines(t, list, []string{
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
		if e.Type == events.ResourceExported {
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
	if err := st.Fake.InjectFault(fakeportability.Fault{Resource: search, FailNextJobs: 4}); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, "flo", three, stack.Consent{Access: "one-time"})
	settle(t, ctx, "flo")
	list := userEvents(t, ctx, "flo")
	expectLines(t, list, []string{
		"1 resource.exported myactivity.youtube/done",
		"1 resource.exported youtube.subscriptions/done",
		"1 resource.failed myactivity.search/failed",
		"1 round.completed",
		"1 grant.ended one_time",
	})
	for _, e := range list {
		switch e.Type {
		case events.ResourceFailed:
			if !strings.Contains(e.Reason, "failed 4 times") || e.Manifest != "" || len(e.Objects) != 0 {
				t.Errorf("failed event: reason %q, manifest %q, %d objects", e.Reason, e.Manifest, len(e.Objects))
			}
		case events.RoundCompleted:
			states := map[string]string{}
			for _, r := range e.Resources {
				states[r.Resource] = r.State
			}
			if states[search] != store.ResFailed || states[youtube] != store.ResDone || states[subs] != store.ResDone {
				t.Errorf("round summary %v", states)
			}
		}
	}
}
