// Package e2e runs the pipeline end to end on the local stack: real Firestore and Pub/Sub emulators,
// fake-gcs-server, the Cloud Tasks stand-in and the Data Portability fake, with each function in its own
// process. The stack starts once for the package; every test clears its data first and runs alone.
package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/faults"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/store"
)

var st *stack.Stack

func TestMain(m *testing.M) {
	os.Exit(faults.Main(m, "e2e", stack.Options{
		Fake: fakeportability.Options{ArchiveSize: 5<<20 + 321, URLsPerJob: 2},
		// Parts of 4 MiB: every data file is split and composed.
		Env: map[string]string{"PART_SIZE": "4194304", "TIME_BASED_HORIZON": "72h", "INITIATE_LEASE": "5s"},
	}, &st, nil))
}

// begin gives a test the stack to itself, cleared.
func begin(t *testing.T) context.Context {
	t.Helper()
	return st.Take(t, 3*time.Minute)
}

// inject arms a fault of the Data Portability stand-in before the consent it is meant for.
func inject(t *testing.T, f fakeportability.Fault) {
	t.Helper()
	if err := st.Fake.InjectFault(f); err != nil {
		t.Fatal(err)
	}
}

// slowDownloads delays the start of every archive download by ms, which keeps transfers going long
// enough for a test to act in the middle of them.
func slowDownloads(ms int) fakeportability.Fault {
	return fakeportability.Fault{Download: &fakeportability.DownloadFault{SlowStartMs: ms, Count: 1000}}
}

// midRound signs user in for three resources with one-time access and slow downloads (ms late each), and
// waits until until holds of the user's first round: the test then acts in the middle of its transfers.
func midRound(t *testing.T, ctx context.Context, user string, ms int, what string, until func(round string) bool) {
	t.Helper()
	inject(t, slowDownloads(ms))
	signIn(t, ctx, user, three, stack.Consent{Access: "one-time"})
	round := store.RoundID(user, 1)
	waitFor(t, ctx, what, func() bool { return until(round) })
}

// signIn walks user through the consent page and expects the callback's page.
func signIn(t *testing.T, ctx context.Context, user string, resources []string, c stack.Consent) *stack.Page {
	t.Helper()
	if c.Account == "" {
		c.Account = stack.Account(user)
	}
	page, err := stack.SignIn(ctx, st.StartLink(user, resources), c)
	if err != nil {
		t.Fatalf("sign in %s: %v", user, err)
	}
	return page
}

// settle waits until the users' grants are closed.
func settle(t *testing.T, ctx context.Context, users ...string) {
	t.Helper()
	if err := st.WaitClosed(ctx, users, nil); err != nil {
		t.Fatalf("%v\nlast log lines:\n%s", err, st.LastLogLines(40))
	}
}

// verified checks the user's bucket objects against the fake (scenario.ExpectExports) and returns the
// report.
func verified(t *testing.T, ctx context.Context, user string) scenario.Report {
	t.Helper()
	rep := scenario.ExpectExports(t, ctx, st.View(), user)
	if rep.Verified == 0 {
		t.Errorf("%s: nothing verified", user)
	}
	return rep
}

// calls returns the fake's counters for one user's account.
func calls(user string) (methods map[string]int, byResource map[string]int) {
	return scenario.Calls(st.Fake, stack.Account(user))
}

// states returns the resource states of one round.
func states(t *testing.T, ctx context.Context, round string) map[string]store.Resource {
	t.Helper()
	list, err := st.Store().ListResources(ctx, round)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Resource{}
	for _, r := range list {
		out[r.Name] = r
	}
	return out
}
