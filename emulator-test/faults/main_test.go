package faults

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/stack"
)

// The suite shares one local stack (started in TestMain); tests take it in turn, cleared.
var (
	st *stack.Stack
	// Poison messages take a minute to be dead-lettered (ten attempts with backoff): every test books
	// what it publishes and drains what arrived, and TestMain waits for the rest at the end.
	deadLetters = NewDeadLetterBook()
)

func TestMain(m *testing.M) {
	os.Exit(Main(m, "faults", StackOptions(nil), &st, func(st *stack.Stack) bool {
		dlTally := NewTally()
		if err := deadLetters.WaitAllDeadLettered(context.Background(), st, dlTally, 2*time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "faults: dead letters:", err)
			return false
		}
		for _, v := range dlTally.Violations {
			fmt.Fprintln(os.Stderr, "faults: invariant violated:", v)
		}
		return len(dlTally.Violations) == 0
	}))
}

// suite is one test's view of the stack.
type suite struct {
	t           *testing.T
	ctx         context.Context
	env         *Env
	tasksFailed int64
}

// begin gives the test the stack to itself, cleared, with an empty tally and dead-letter book.
func begin(t *testing.T) *suite {
	t.Helper()
	ctx := st.Take(t, 4*time.Minute)
	if err := st.EnsureTopology(ctx); err != nil {
		t.Fatalf("topology: %v", err)
	}
	s := &suite{t: t, ctx: ctx, tasksFailed: TasksFailed(st),
		env: &Env{St: st, T: NewTally(), DL: deadLetters, CloseWithin: 3 * time.Minute, Log: t.Logf}}
	return s
}

// run plays sc and fails the test on any invariant violation.
func (s *suite) run(sc Scenario) *Tally {
	s.t.Helper()
	t0 := time.Now()
	err := Run(s.ctx, s.env, sc)
	if err != nil {
		s.t.Errorf("%v\nlast log lines:\n%s", err, st.LastLogLines(30))
	}
	if err := s.env.DL.Drain(s.ctx, st, s.env.T); err != nil {
		s.t.Error(err)
	}
	CheckTasks(st, s.tasksFailed, s.env.T)
	for _, v := range s.env.T.Violations {
		s.t.Errorf("invariant violated: %s", v)
	}
	s.t.Logf("%s: %d archives (%d bytes) verified, resources %v, %d retries, %d resets, faults %v, %s",
		sc.Name, s.env.T.Archives, s.env.T.Bytes, s.env.T.Resources, s.env.T.Retries, s.env.T.Resets, s.env.T.Faults, time.Since(t0).Round(time.Millisecond))
	return s.env.T
}
