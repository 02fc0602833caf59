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
	a := "myactivity.search"
	done := map[string]store.ResourceState{a: store.ResDone}
	runScenarios(t, []string{a}, []tableCase{
		{
			name:   "job started publish fails",
			before: func(t *testing.T, h *pipelinetest.Harness) { h.Bus.FailPublish["archive-jobs"] = 1 },
			want:   want{states: done, calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "retried job's first check fails to schedule",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				inject(t, h, fakeportability.Fault{Resource: a, FailNextJobs: 1})
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
			},
			want: want{states: done, calls: map[string]int{"retry": 1, "reset": 1}, verify: true},
		},
	})
}
