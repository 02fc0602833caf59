package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/store"
)

// A link is used once: the second use is ErrLinkUsed.
func TestUseLink(t *testing.T) {
	ctx, s := newStore(t)
	id := userID(t)
	if used, err := s.LinkUsed(ctx, id); err != nil || used {
		t.Fatalf("fresh link: used %v, %v", used, err)
	}
	l := store.UsedLink{Purpose: "status", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.UseLink(ctx, id, l); err != nil {
		t.Fatal(err)
	}
	if used, err := s.LinkUsed(ctx, id); err != nil || !used {
		t.Errorf("after use: used %v, %v", used, err)
	}
	if err := s.UseLink(ctx, id, l); !errors.Is(err, store.ErrLinkUsed) {
		t.Errorf("second use: %v, want ErrLinkUsed", err)
	}
}

// BeginConsent spends the link and records the state together: a spent link yields no second state.
func TestBeginConsent(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	l := store.UsedLink{Purpose: "start", ExpiresAt: time.Now().Add(time.Hour)}
	st := store.OAuthState{ID: user + "-1", User: user, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.BeginConsent(ctx, user+"-link", l, st); err != nil {
		t.Fatal(err)
	}
	st2 := store.OAuthState{ID: user + "-2", User: user, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.BeginConsent(ctx, user+"-link", l, st2); !errors.Is(err, store.ErrLinkUsed) {
		t.Errorf("second consent with the link: %v, want ErrLinkUsed", err)
	}
	recs, err := s.FindUserRecords(ctx, user)
	if err != nil || len(recs.OAuthStates) != 1 || recs.OAuthStates[0] != st.ID {
		t.Errorf("states: %+v, %v; want only %s", recs.OAuthStates, err, st.ID)
	}
	if used, err := s.LinkUsed(ctx, user+"-link"); err != nil || !used {
		t.Errorf("link not recorded used: %v, %v", used, err)
	}
}

// A pending consent works once, and not after it expires.
func TestConsumeOAuthState(t *testing.T) {
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
