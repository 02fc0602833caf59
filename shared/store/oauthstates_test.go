package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/store"
)

// A pending consent works once, and not after it expires.
func TestConsumeOAuthState(t *testing.T) {
	t.Parallel()
	ctx, s := newStore(t)
	user := userID(t)
	if err := s.PutOAuthState(ctx, store.OAuthState{ID: "live", User: user, Resources: []string{"g"}, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOAuthState(ctx, store.OAuthState{ID: "live", User: user}); err == nil {
		t.Error("a second state with the same ID was stored")
	}
	st, err := s.ConsumeOAuthState(ctx, "live")
	if err != nil || st.ID != "live" || st.User != user || len(st.Resources) != 1 {
		t.Fatalf("first consume: %+v, %v", st, err)
	}
	if _, err := s.ConsumeOAuthState(ctx, "live"); !errors.Is(err, store.ErrConsumed) {
		t.Errorf("second consume: %v, want ErrConsumed", err)
	}
	if err := s.PutOAuthState(ctx, store.OAuthState{ID: "old", User: user, ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeOAuthState(ctx, "old"); !errors.Is(err, store.ErrConsumed) {
		t.Errorf("expired: %v, want ErrConsumed", err)
	}
	recs, err := s.FindUserRecords(ctx, user)
	if err != nil || len(recs.OAuthStates) != 0 {
		t.Errorf("states left after consuming: %+v, %v", recs, err)
	}
	if _, err := s.ConsumeOAuthState(ctx, "never"); !errors.Is(err, store.ErrConsumed) {
		t.Errorf("missing: %v, want ErrConsumed", err)
	}
}
