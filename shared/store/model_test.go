package store_test

import (
	"testing"

	"github.com/portability-pipeline/pipeline/shared/store"
)

func TestRoundID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		user string
		n    int
	}{{"pia", 1}, {"a~b", 12}} {
		id := store.RoundID(tc.user, tc.n)
		user, n, err := store.ParseRoundID(id)
		if err != nil || user != tc.user || n != tc.n {
			t.Errorf("ParseRoundID(%q) = %q, %d, %v; want %q, %d", id, user, n, err, tc.user, tc.n)
		}
	}
	for _, bad := range []string{"", "pia", "~1", "pia~0", "pia~x", "pia~-1"} {
		if _, _, err := store.ParseRoundID(bad); err == nil {
			t.Errorf("ParseRoundID(%q) accepted", bad)
		}
	}
}

func TestTerminal(t *testing.T) {
	t.Parallel()
	for _, st := range store.ResourceLifecycle.States {
		if store.Terminal(st.Name) != st.Terminal {
			t.Errorf("Terminal(%s) = %v, the lifecycle says %v", st.Name, !st.Terminal, st.Terminal)
		}
	}
	if store.Terminal("unknown") {
		t.Error("an unknown state is terminal")
	}
}
