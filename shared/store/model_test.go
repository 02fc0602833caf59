package store_test

import (
	"testing"

	"github.com/portability-pipeline/pipeline/shared/store"
)

func TestRoundID(t *testing.T) {
	t.Parallel()
	for user, n := range map[string]int{"pia": 1, "a~b": 12} {
		id := store.RoundID(user, n)
		gotUser, gotN, err := store.ParseRoundID(id)
		if err != nil || gotUser != user || gotN != n {
			t.Errorf("ParseRoundID(%q) = %q, %d, %v; want %q, %d", id, gotUser, gotN, err, user, n)
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
