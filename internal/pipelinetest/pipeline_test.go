package pipelinetest_test

import (
	"os"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/store"
)

func TestMain(m *testing.M) { os.Exit(pipelinetest.Main(m)) }

var three = []string{"myactivity.search", "myactivity.youtube", "youtube.subscriptions"}

// calls reads the fake's per-user call counters.
func calls(t *testing.T, h *pipelinetest.Harness, user string) map[string]int {
	t.Helper()
	return h.UserCalls(user)
}

// TestFullRoundDeliveredTwice delivers every message and task of a one-time round twice, the copies out of
// order, and shows one initiate per resource, one object per archive file, one reset.
func TestFullRoundDeliveredTwice(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2,
		Fake: fakeportability.Options{URLsPerJob: 2, ArchiveSize: 3<<20 + 12345}})
	round := h.Consent("alice", three, "one-time")
	st := h.Run(2000)

	c := calls(t, h, "alice")
	if c["initiate"] != len(three) {
		t.Errorf("initiate calls = %d, want %d (one per resource)", c["initiate"], len(three))
	}
	for _, res := range three {
		if n := h.InitiatesOf("alice", res); n != 1 {
			t.Errorf("%s initiated %d times", res, n)
		}
	}
	if c["reset"] != 1 {
		t.Errorf("reset calls = %d, want 1", c["reset"])
	}
	if n := h.VerifyExports("alice"); n != 2*len(three) {
		t.Errorf("verified %d files, want %d", n, 2*len(three))
	}
	r, err := h.Env.Store.GetRound(h.Ctx, round)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.RoundClosed || r.Outcome != "reset" {
		t.Errorf("round %s state %s outcome %q, want closed by reset", round, r.State, r.Outcome)
	}
	if _, err := h.Env.Tokens.Load(h.Ctx, "alice"); err == nil {
		t.Error("token still stored after the reset")
	}
	if leftovers := h.Objects("tmp/"); len(leftovers) != 0 {
		t.Errorf("%d temporary part objects left", len(leftovers))
	}
	if strings.Contains(h.Logs.String(), "sig=") {
		t.Error("a signed URL reached the logs")
	}
	t.Logf("%d deliveries (%d copies, %d failed), %d tasks, bus: %+v", st.Deliveries, st.Copies, st.Failures, st.Tasks, h.Bus.Published)
}
