package pipelinetest_test

import (
	"errors"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tasks"
)

// TestNothingLostWhenAHandOffFails fails the hand-off that follows a recorded transition once (the
// publish of a started job, the task of a retried job's first check): the redelivery must repeat the
// hand-off, or the resource would stay "exporting" forever.
func TestNothingLostWhenAHandOffFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(h *pipelinetest.Harness)
	}{
		{"job started publish fails", func(h *pipelinetest.Harness) { h.Bus.FailPublish["archive-jobs"] = 1 }},
		{"retried job's first check fails to schedule", func(h *pipelinetest.Harness) {
			if err := h.Fake.InjectFault(fakeportability.Fault{Resource: "myactivity.search", FailNextJobs: 1}); err != nil {
				h.T.Fatal(err)
			}
			first, failed := "", false
			h.Bus.EnqueueHook = func(t tasks.Task) error {
				c, ok := t.Body.(messages.PollCheck)
				if !ok {
					return nil
				}
				if first == "" {
					first = c.Job
				}
				if c.Job != first && !failed {
					failed = true
					return errors.New("create task: injected failure")
				}
				return nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := pipelinetest.New(t, pipelinetest.Options{})
			round := h.Consent("u", []string{"myactivity.search"}, "one-time")
			tc.set(h)
			h.Run(500)
			r, err := h.Env.Store.GetResource(h.Ctx, round, "myactivity.search")
			if err != nil {
				t.Fatal(err)
			}
			if r.State != store.ResDone {
				t.Fatalf("resource %s (%s), want done", r.State, r.Reason)
			}
			h.VerifyExports("u")
		})
	}
}
