package pipelinetest_test

import (
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// TestPollLadder runs a 20 s job with POLL_LADDER=1s,2s,4s: the state checks are scheduled 1s, 2s, 4s,
// 4s... after each other (the last step repeats), and the job is checked until, and only until, it is
// complete: one state call per check, the last one the first to come after the job's end.
func TestPollLadder(t *testing.T) {
	t.Parallel()
	const jobDuration = 20 * time.Second
	h := pipelinetest.New(t, pipelinetest.Options{
		Fake: fakeportability.Options{JobDuration: jobDuration, URLsPerJob: 1},
		Env:  map[string]string{"POLL_LADDER": "1s,2s,4s"},
	})
	const res = "myactivity.search"
	round := h.Consent("u", []string{res}, "one-time")

	// The fake's clock when each check is delivered (the harness advances it to the task's time first).
	var seen []time.Time
	h.BeforeDeliver = func(d *pipelinetest.Delivery) {
		if d.Task != nil && d.Task.URL == pipelinetest.PollURL {
			seen = append(seen, h.Fake.Clock().Now())
		}
	}
	h.Run(500)

	jobs := h.Fake.Jobs("u")
	if len(jobs) != 1 {
		t.Fatalf("%d jobs at the fake, want 1", len(jobs))
	}
	job := jobs[0]

	var polls []pipelinetest.EnqueuedTask
	for _, tk := range h.Bus.Tasks() {
		if tk.URL == pipelinetest.PollURL {
			polls = append(polls, tk)
		}
	}
	if len(polls) < 4 {
		t.Fatalf("%d poll tasks, want at least 4 for a %s job", len(polls), jobDuration)
	}
	ladder := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	for i, p := range polls {
		want := ladder[min(i, len(ladder)-1)]
		// At is computed just before the Bus stamps EnqueuedAt: allow for the time between.
		if got := p.At.Sub(p.EnqueuedAt); got < want-250*time.Millisecond || got > want+250*time.Millisecond {
			t.Errorf("poll task %d scheduled %s after it was enqueued, want %s", i, got, want)
		}
		m, ok := p.Body.(messages.PollCheck)
		if !ok {
			t.Fatalf("poll task %d body %T", i, p.Body)
		}
		if m.Check != i || m.Job != job.ID || m.Resource != res || m.Round != round {
			t.Errorf("poll task %d body %+v, want check %d of job %s", i, m, i, job.ID)
		}
	}

	if len(seen) != len(polls) {
		t.Errorf("%d checks delivered, %d enqueued", len(seen), len(polls))
	}
	if got := h.UserCalls("u")["getState"]; got != len(polls) {
		t.Errorf("%d state calls, want one per check (%d)", got, len(polls))
	}
	done := job.CreatedAt.Add(jobDuration)
	for i, at := range seen {
		last := i == len(seen)-1
		if !last && !at.Before(done) {
			t.Errorf("check %d at +%s came after the job's end (+%s) but was not the last", i, at.Sub(job.CreatedAt), jobDuration)
		}
		if last && at.Before(done) {
			t.Errorf("last check at +%s, before the job's end (+%s)", at.Sub(job.CreatedAt), jobDuration)
		}
	}

	r, err := h.Env.Store.GetResource(h.Ctx, round, res)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.ResDone {
		t.Errorf("resource %s (%s), want done", r.State, r.Reason)
	}
	h.VerifyExports("u")
	if t.Failed() || testing.Verbose() {
		for i, at := range seen {
			t.Logf("check %d at +%s", i, at.Sub(job.CreatedAt).Round(time.Millisecond))
		}
	}
}
