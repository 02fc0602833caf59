package faultqueue

import (
	"slices"
	"testing"
)

type fault struct {
	name string
	left int
}

func TestTakeSpendsTheFirstMatchInOrder(t *testing.T) {
	q := []*fault{{"a", 1}, {"b", 2}, {"c", 1}}
	notA := func(f *fault) bool { return f.name != "a" }
	uses := func(f *fault) *int { return &f.left }
	var got []string
	for range 4 {
		f := Take(&q, notA, uses)
		if f == nil {
			got = append(got, "-")
			continue
		}
		got = append(got, f.name)
	}
	if want := []string{"b", "b", "c", "-"}; !slices.Equal(got, want) {
		t.Errorf("taken %v, want %v", got, want)
	}
	if len(q) != 1 || q[0].name != "a" {
		t.Errorf("left in the queue: %v, want only a", q)
	}
}
