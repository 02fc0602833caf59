package scenario

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// The Expect functions run a check and fail t for each problem it finds.

// ExpectExports verifies user's exports (VerifyExports) and returns the report.
func ExpectExports(t testing.TB, ctx context.Context, v View, user string) Report {
	t.Helper()
	rep, err := VerifyExports(ctx, v, user)
	if err != nil {
		t.Fatalf("verify the exports of %s: %v", user, err)
	}
	for _, p := range rep.Mismatches() {
		t.Errorf("%s: %s", user, p)
	}
	return rep
}

// ExpectNothingOf fails t for every document and object left of user (Leftovers), and when the walk saw
// no document at all while documents were expected (some other person's).
func ExpectNothingOf(t testing.TB, ctx context.Context, v View, user string, othersStored bool) {
	t.Helper()
	left, err := Leftovers(ctx, v, user)
	if err != nil {
		t.Fatalf("what is left of %s: %v", user, err)
	}
	for _, p := range left.Paths {
		t.Errorf("%s: left behind: %s", user, p)
	}
	if othersStored && left.Documents == 0 {
		t.Error("no document at all: the walk saw nothing")
	}
}

// ExpectEvents fails t for every problem CheckEvents finds.
func ExpectEvents(t testing.TB, list []Event) {
	t.Helper()
	for _, p := range CheckEvents(list) {
		t.Errorf("event %s", p)
	}
}

// ExpectLines fails t unless the events render (Lines) as want.
func ExpectLines(t testing.TB, list []Event, want []string) {
	t.Helper()
	if got := Lines(list); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// ExpectManifest fails t for every problem CheckManifest finds.
func ExpectManifest(t testing.TB, ctx context.Context, v View, e Event, job fakeportability.JobInfo) {
	t.Helper()
	problems, err := CheckManifest(ctx, v, e, job)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// OneTimeRoundEvents is a scenario both drivers run, delivering every message twice: user grants Three
// with one-time access and the app receives, in order, one resource.exported per resource (its objects
// the fake's files, filesPerJob each, its manifest true to the job), round.completed and grant.ended;
// the bucket holds every file once, with one manifest per resource. It returns the user's events.
func OneTimeRoundEvents(t testing.TB, ctx context.Context, d Driver, user string, filesPerJob int) []Event {
	t.Helper()
	v := d.View()
	if err := d.SignIn(ctx, user, Three(), "one-time"); err != nil {
		t.Fatalf("sign in %s: %v", user, err)
	}
	if err := d.RunUntilClosed(ctx, user); err != nil {
		t.Fatal(err)
	}
	list, err := WaitUserEvents(ctx, d, user)
	if err != nil {
		t.Fatal(err)
	}
	ExpectEvents(t, list)
	ExpectLines(t, list, []string{
		"1 resource.exported myactivity.search/done",
		"1 resource.exported myactivity.youtube/done",
		"1 resource.exported youtube.subscriptions/done",
		"1 round.completed",
		"1 grant.ended one_time",
	})
	jobs := map[string]fakeportability.JobInfo{}
	for _, j := range v.Fake.Jobs(v.Account(user)) {
		jobs[j.ID] = j
	}
	for _, e := range list {
		if e.Round != store.RoundID(user, 1) {
			t.Errorf("event %s of round %s", e.Type, e.Round)
		}
		switch e.Type {
		case outbox.ResourceExported:
			j := jobs[e.Job]
			if len(e.Objects) != filesPerJob || len(j.Files) != filesPerJob || e.Bytes == 0 || e.Manifest == "" || e.ExportTime == nil {
				t.Errorf("%s: %d objects, the job has %d files, want %d: %+v", e.Resource, len(e.Objects), len(j.Files), filesPerJob, e)
				continue
			}
			for i, f := range j.Files {
				if o := e.Objects[i]; o.Size != f.Size || o.CRC32C != f.CRC32C {
					t.Errorf("%s object %d: %d bytes crc32c %s, fake %d %s", e.Resource, i, o.Size, o.CRC32C, f.Size, f.CRC32C)
				}
			}
			ExpectManifest(t, ctx, v, e, j)
		case outbox.RoundCompleted:
			if len(e.Resources) != 3 {
				t.Errorf("round summary %+v", e.Resources)
			}
			for _, r := range e.Resources {
				if r.State != string(store.ResDone) || r.Objects != filesPerJob {
					t.Errorf("round summary of %s: %s with %d objects", r.Resource, r.State, r.Objects)
				}
			}
		}
	}
	if rep := ExpectExports(t, ctx, v, user); rep.Verified != 3*filesPerJob || rep.Manifests != 3 {
		t.Errorf("%s: %d files verified, %d manifests; want %d and 3", user, rep.Verified, rep.Manifests, 3*filesPerJob)
	}
	return list
}
