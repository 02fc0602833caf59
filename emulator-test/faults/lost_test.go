package faults

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/functions/reconcile"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// TestLostHandOffsHealed loses one hand-off of each kind for good (no redelivery, no retry: a push
// acknowledged without running, a message moved straight to its dead letter, a Cloud Task deleted before
// it runs, a task that used up its attempts), one user each, all at once. The stack's reconciler must
// heal every one: each grant closes with its resources exported, and the repairs are logged.
func TestLostHandOffsHealed(t *testing.T) {
	s := begin(t)
	cases := []struct {
		kind, entry, repair string
	}{
		{KindLostAck, "Reset", reconcile.KindReset},
		{KindLostAck, "Transfer", reconcile.KindTransfer},
		{KindLostDeadLetter, "Initiate", reconcile.KindInitiate},
		{KindLostTask, "PollTask", reconcile.KindPoll},
		{KindLostExhausted, "PollTask", reconcile.KindPoll},
	}
	before, err := Repairs(st)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, c := range cases {
		sc := Scenario{Name: fmt.Sprintf("%s at %s", c.kind, c.entry), Users: []User{{ID: fmt.Sprintf("lost%d", i), Resources: []string{search}}},
			Before: []Step{LoseHandOff(c.kind, c.entry)}}
		wg.Go(func() { errs[i] = Run(s.ctx, s.env, sc) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s at %s: %v\nlast log lines:\n%s", cases[i].kind, cases[i].entry, err, st.LastLogLines(40))
		}
	}
	if err := s.env.DL.Drain(s.ctx, st, s.env.T); err != nil {
		t.Error(err)
	}
	CheckTasks(st, s.tasksFailed, s.env.T)
	for _, v := range s.env.T.Violations {
		t.Errorf("invariant violated: %s", v)
	}
	want(t, s.env.T, store.ResDone, len(cases))
	healed, longest := s.env.T.Heals()
	wantHealed := map[string]int{}
	for _, c := range cases {
		wantHealed[c.kind]++
	}
	for k, n := range wantHealed {
		if s.env.T.Faults[k] != n || healed[k] != n {
			t.Errorf("%s: %d lost, %d healed, want %d", k, s.env.T.Faults[k], healed[k], n)
		}
		t.Logf("%s: %d healed, longest %s", k, healed[k], longest[k].Round(time.Second))
	}
	after, err := Repairs(st)
	if err != nil {
		t.Fatal(err)
	}
	wantRepairs := map[string]int{}
	for _, c := range cases {
		wantRepairs[c.repair]++
	}
	for k, n := range wantRepairs {
		if after[k]-before[k] < n {
			t.Errorf("%d %s repairs logged, want at least %d (all: %v)", after[k]-before[k], k, n, after)
		}
	}
}
