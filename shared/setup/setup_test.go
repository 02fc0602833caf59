package setup

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/config"
	"github.com/portability-pipeline/pipeline/shared/logging"
)

func TestRequireNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	env := &Env{Config: &config.Config{}, Log: logging.New(io.Discard, "INFO")}
	if err := env.Require("webhook", Needs{}); err != nil {
		t.Errorf("nothing needed: %v", err)
	}
	err := env.Require("poll", Needs{Store: true, Tokens: true, Tasks: true})
	if err == nil || err.Error() != "poll needs Store, Tokens, Crypto, API, Tasks" {
		t.Errorf("got %v", err)
	}
	if err := (*Env)(nil).Require("reset", Needs{}); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("nil env: %v", err)
	}
}

func TestLazyBuildsOnceAndRetriesAFailure(t *testing.T) {
	t.Parallel()
	builds := 0
	l := NewLazy(func(context.Context) (int, error) {
		builds++
		if builds == 1 {
			return 0, errors.New("down")
		}
		return builds, nil
	})
	if _, err := l.Get(context.Background()); err == nil {
		t.Fatal("the first build's error was lost")
	}
	for range 2 {
		if v, err := l.Get(context.Background()); err != nil || v != 2 {
			t.Fatalf("got %d, %v; want the second build's 2", v, err)
		}
	}
	if builds != 2 {
		t.Errorf("%d builds, want 2", builds)
	}
}
