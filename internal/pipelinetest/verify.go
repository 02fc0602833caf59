package pipelinetest

import (
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
)

// Objects lists the objects under prefix, each checksummed from its bytes (scenario.Objects).
func (h *Harness) Objects(prefix string) []scenario.Object {
	h.T.Helper()
	objs, err := scenario.Objects(h.Ctx, h.Env.Storage.Bucket(Bucket), prefix)
	if err != nil {
		h.T.Fatal(err)
	}
	return objs
}

// VerifyExports checks that every file of the job of every done resource of user (all rounds) is in the
// bucket exactly once, byte-identical to the fake's file, and that nothing else is under the user's prefix
// (scenario.VerifyExports); it fails the test for each mismatch and returns the number of files expected.
func (h *Harness) VerifyExports(user string) int {
	h.T.Helper()
	return scenario.ExpectExports(h.T, h.Ctx, h.View(), user).Expected
}

// ExpectNothingOf fails the test for every document and object left of user (scenario.Leftovers).
func (h *Harness) ExpectNothingOf(user string) {
	h.T.Helper()
	scenario.ExpectNothingOf(h.T, h.Ctx, h.View(), user, true)
}

// UserCalls returns the fake's call counts of user by method (initiate, getState, retry, ...).
func (h *Harness) UserCalls(user string) map[string]int {
	methods, _ := scenario.Calls(h.Fake, user)
	return methods
}

// InitiatesOf returns how many initiate calls named resource for user.
func (h *Harness) InitiatesOf(user, resource string) int {
	_, initiates := scenario.Calls(h.Fake, user)
	return initiates[resource]
}
