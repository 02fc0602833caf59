package pipelinetest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/functions/initiate"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// TestInitiateCrashRecovery simulates a crash of the initiate step between the API call and recording the
// job: the resource is claimed, the export started at the API, nothing recorded. Once the claim's lease
// runs out, the redelivered request must adopt that export (409 while it runs, 429 with previous_job_ids
// once it is complete) instead of burning the one-time consent or failing the resource.
func TestInitiateCrashRecovery(t *testing.T) {
	t.Parallel()
	const res = "myactivity.search"
	tests := []struct {
		name string
		// complete lets the started job finish before the redelivery.
		complete bool
		access   string
	}{
		{"job still running (409)", false, "one-time"},
		{"job already complete (429 previous_job_ids)", true, "one-time"},
		{"time-based job already complete (429 previous_job_ids, timestamp_after_24hrs)", true, "time-based-30d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := pipelinetest.New(t, pipelinetest.Options{
				Fake: fakeportability.Options{URLsPerJob: 2, ArchiveSize: 1<<20 + 3},
				// A horizon shorter than a day: the time-based grant ends after its first round.
				Env: map[string]string{"INITIATE_LEASE": "1ms", "TIME_BASED_HORIZON": "1h"},
			})
			round := h.Consent("u", []string{res}, tc.access)

			// The delivery that crashed: claim, call the API, stop before RecordJob.
			claim, err := h.Env.Store.ClaimInitiate(h.Ctx, round, res, h.Env.Config.Export.InitiateLease, false)
			if err != nil || !claim.Won {
				t.Fatalf("claim: won %v, %v", claim.Won, err)
			}
			started, err := h.API("u").Initiate(h.Ctx, []string{res})
			if err != nil {
				t.Fatal(err)
			}
			if tc.complete {
				h.Fake.Clock().Advance(time.Minute)
			}
			time.Sleep(5 * time.Millisecond) // the lease of the crashed claim runs out

			h.Run(500) // the initiate request is redelivered, and the rest of the chain follows

			jobs := h.Fake.Jobs("u")
			if len(jobs) != 1 || jobs[0].ID != started.Job {
				t.Errorf("jobs at the fake: %+v, want only %s", jobs, started.Job)
			}
			if n := h.InitiatesOf("u", res); n != 2 {
				t.Errorf("%d initiate calls, want 2 (the crashed one and the redelivery)", n)
			}
			r, err := h.Env.Store.GetResource(h.Ctx, round, res)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != store.ResDone || r.Job != started.Job {
				t.Errorf("resource %s with job %s (%s), want done with %s", r.State, r.Job, r.Reason, started.Job)
			}
			if n := h.VerifyExports("u"); n != 2 {
				t.Errorf("%d files verified, want 2", n)
			}
			if c := h.UserCalls("u"); c["reset"] != 1 {
				t.Errorf("%d resets, want 1", c["reset"])
			}
			if got, err := h.Env.Store.GetRound(h.Ctx, round); err != nil || got.State != store.RoundClosed {
				t.Errorf("round %+v, %v; want closed", got, err)
			}
			want := "adopting the running export"
			if tc.complete {
				want = "adopting the export an earlier attempt started"
			}
			if !strings.Contains(h.Logs.String(), want) {
				t.Errorf("logs do not say %q", want)
			}
			if t.Failed() {
				t.Logf("logs:\n%s", tail(h.Logs.String(), 40))
			}
		})
	}
}

// TestInitiateLiveClaim: a redelivery while another delivery holds a live claim must not call the API and
// must not acknowledge (the holder may still crash): it returns an error so the message comes again.
func TestInitiateLiveClaim(t *testing.T) {
	t.Parallel()
	const res = "myactivity.search"
	h := pipelinetest.New(t, pipelinetest.Options{Env: map[string]string{"INITIATE_LEASE": "10m"}})
	round := h.Consent("u", []string{res}, "one-time")
	claim, err := h.Env.Store.ClaimInitiate(h.Ctx, round, res, h.Env.Config.Export.InitiateLease, false)
	if err != nil || !claim.Won {
		t.Fatalf("claim: won %v, %v", claim.Won, err)
	}

	ctx := logging.WithLogger(h.Ctx, h.Env.Log)
	m := &messages.InitiateRequest{V: messages.Version, User: "u", Round: round}
	for i := range 2 {
		err := must(initiate.New(h.Env)).Round(ctx, m)
		if err == nil || errors.Is(err, handler.ErrDrop) {
			t.Fatalf("delivery %d during a live claim returned %v, want an error (deliver again)", i+1, err)
		}
	}
	if n := h.InitiatesOf("u", res); n != 0 {
		t.Errorf("%d initiate calls during a live claim, want 0", n)
	}
	r, err := h.Env.Store.GetResource(h.Ctx, round, res)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.ResInitiating || r.Attempts != 1 {
		t.Errorf("resource %s after %d attempts, want still initiating after 1", r.State, r.Attempts)
	}
	if n := h.Bus.Published[h.Env.Config.Topics.Jobs]; n != 0 {
		t.Errorf("%d job messages published", n)
	}
}

// must returns a step built with a harness's dependencies (which has all of them).
func must[S any](s S, err error) S {
	if err != nil {
		panic(err)
	}
	return s
}
