package iterate

import (
	"errors"
	"testing"

	"google.golang.org/api/iterator"
)

func TestAll(t *testing.T) {
	t.Parallel()
	source := func(vals []int, end error) func() (int, error) {
		i := 0
		return func() (int, error) {
			if i == len(vals) {
				return 0, end
			}
			i++
			return vals[i-1], nil
		}
	}
	var got []int
	collect := func(v int) error { got = append(got, v); return nil }
	if err := All(source([]int{1, 2, 3}, iterator.Done), collect); err != nil || len(got) != 3 || got[2] != 3 {
		t.Errorf("to the end: %v %v", got, err)
	}
	broken := errors.New("broken")
	got = nil
	if err := All(source([]int{1}, broken), collect); !errors.Is(err, broken) || len(got) != 1 {
		t.Errorf("iterator error: %v %v", got, err)
	}
	stop := errors.New("stop")
	calls := 0
	if err := All(source([]int{1, 2, 3}, iterator.Done), func(int) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn error: %d calls, %v", calls, err)
	}
}
