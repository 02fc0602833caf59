package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/store"
)

// A link is used once: the second use is ErrLinkUsed.
func TestUseLink(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
