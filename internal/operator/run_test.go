package operator

import (
	"context"
	"errors"
	"io"
	"testing"
)

// A command line that does not name a command with its number of arguments is refused before the
// operator is asked anything (a nil operator would panic).
func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"users", "ana"},
		{"show"},
		{"retry", "ana"},
		{"cancel", "ana", "a", "b"},
		{"reset"},
		{"purge", "ana", "bo"},
		{"stuck", "now"},
		{"replay-initiate", "ana"},
	} {
		if err := Run(context.Background(), nil, io.Discard, false, args); !errors.Is(err, ErrUsage) {
			t.Errorf("Run(%q): %v, want ErrUsage", args, err)
		}
	}
}
