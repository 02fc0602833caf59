package faults

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/stack"
)

// Main runs the tests of a suite on one local stack (the fault suite's, e2e's): it starts the stack with
// opts (its warnings to stderr unless opts.Log is set) into *st, runs the tests, then after (when given:
// the suite's last checks, false when one failed) and LogsClean; when anything failed it says where the
// function logs are. It stops the stack and returns the exit code for TestMain.
func Main(m *testing.M, name string, opts stack.Options, st **stack.Stack, after func(*stack.Stack) bool) int {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := stack.Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+": the local stack did not start:", err)
		return 1
	}
	defer s.Stop()
	*st = s
	code := m.Run()
	if after != nil && !after(s) {
		code = 1
	}
	// Whatever ran, no bearer secret the fake handed out (tokens, codes, ID tokens, signed URLs) nor the
	// client secret or the start link key may appear in any function's log.
	if !LogsClean(s, name) {
		code = 1
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, name+": function logs are in", s.Dir)
	}
	return code
}
