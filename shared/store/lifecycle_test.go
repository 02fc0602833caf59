package store_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/store"
)

var update = flag.Bool("update", false, "rewrite the lifecycle diagrams in docs/design.md from the table")

var lifecycles = []*store.Lifecycle[string]{store.ResourceLifecycle.Strings(), store.RoundLifecycle.Strings(), store.ObjectLifecycle.Strings()}

// TestLifecycleTables: every transition names declared states, every non-terminal state can end (a
// terminal state is reachable from it), every terminal state has no way out but a declared one, and every
// non-terminal resource and round state has a deadline and a repair (nothing can wait for ever).
func TestLifecycleTables(t *testing.T) {
	t.Parallel()
	for _, l := range lifecycles {
		t.Run(l.Name, func(t *testing.T) {
			for _, tr := range l.Transitions {
				for _, s := range []string{tr.From, tr.To} {
					if _, ok := l.State(s); !ok {
						t.Errorf("transition %+v names undeclared state %q", tr, s)
					}
				}
			}
			for _, s := range l.States {
				if s.Terminal {
					continue
				}
				if !reachesTerminal(l, s.Name) {
					t.Errorf("state %s cannot reach a terminal state", s.Name)
				}
				if l.Name != "object" && len(s.Deadlines) == 0 {
					t.Errorf("non-terminal state %s has no deadline: it could wait for ever", s.Name)
				}
				for _, d := range s.Deadlines {
					if d.Limit == nil || d.Redrive == "" || d.Field == "" {
						t.Errorf("state %s: incomplete deadline %+v", s.Name, d)
					}
				}
			}
		})
	}
}

func reachesTerminal(l *store.Lifecycle[string], from string) bool {
	seen := map[string]bool{from: true}
	queue := []string{from}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if spec, _ := l.State(s); spec.Terminal {
			return true
		}
		for _, tr := range l.Transitions {
			if tr.From == s && !seen[tr.To] {
				seen[tr.To] = true
				queue = append(queue, tr.To)
			}
		}
	}
	return false
}

// TestResourceTransitionsEnforced: for every pair of resource states, the store's Transition changes the
// resource exactly when the lifecycle declares the pair (or it stays in its state), and refuses the
// others with ErrNotAllowed, leaving the record as it was.
func TestResourceTransitionsEnforced(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"g"}, nil)
	ref := s.Client().Collection("rounds").Doc(r.ID).Collection("resources").Doc("g")
	for _, from := range store.ResourceLifecycle.States {
		for _, to := range store.ResourceLifecycle.States {
			t.Run(string(from.Name)+"->"+string(to.Name), func(t *testing.T) {
				if _, err := ref.Set(ctx, store.Resource{State: from.Name, UpdatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
				changed, err := s.Transition(ctx, r.ID, "g", []store.ResourceState{from.Name}, "", func(x *store.Resource) { x.State, x.Reason = to.Name, "test" })
				allowed := store.ResourceLifecycle.Allows(from.Name, to.Name) || from.Name == to.Name
				got, gerr := s.GetResource(ctx, r.ID, "g")
				if gerr != nil {
					t.Fatal(gerr)
				}
				switch {
				case allowed && (err != nil || !changed || got.State != to.Name):
					t.Fatalf("declared transition: changed %v, err %v, state %s", changed, err, got.State)
				case !allowed && (!errors.Is(err, store.ErrNotAllowed) || changed || got.State != from.Name):
					t.Fatalf("undeclared transition: changed %v, err %v, state %s; want ErrNotAllowed and %s kept", changed, err, got.State, from.Name)
				}
			})
		}
	}
}

var diagram = regexp.MustCompile("(?s)<!-- lifecycle:([a-z]+) -->\n```mermaid\n(.*?)```\n<!-- /lifecycle -->")

// TestLifecycleDiagramsMatchDesign: docs/design.md shows each lifecycle as the diagram generated from the
// table (go test ./shared/store -run TestLifecycleDiagramsMatchDesign -update rewrites them).
func TestLifecycleDiagramsMatchDesign(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "design.md")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, l := range lifecycles {
		want[l.Name] = l.Mermaid()
	}
	found := map[string]bool{}
	out := diagram.ReplaceAllStringFunc(string(src), func(block string) string {
		m := diagram.FindStringSubmatch(block)
		found[m[1]] = true
		if w, ok := want[m[1]]; ok && m[2] != w {
			if !*update {
				t.Errorf("docs/design.md: the %s diagram differs from store.%sLifecycle (run with -update)\n got:\n%s\nwant:\n%s", m[1], m[1], m[2], w)
			}
			return fmt.Sprintf("<!-- lifecycle:%s -->\n```mermaid\n%s```\n<!-- /lifecycle -->", m[1], w)
		}
		return block
	})
	for name := range want {
		if !found[name] {
			t.Errorf("docs/design.md has no <!-- lifecycle:%s --> diagram", name)
		}
	}
	if *update && out != string(src) {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
