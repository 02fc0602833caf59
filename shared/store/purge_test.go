package store_test

import (
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/store"
)

// DeleteUser deletes the user's document, every round with everything below it and the pending consents,
// and leaves the outbox records (the purge deletes them after announcing itself) and other users alone.
func TestDeleteUser(t *testing.T) {
	ctx, s := newStore(t)
	user, other := userID(t), userID(t)+"-other"
	r := grant(t, ctx, s, user, []string{"a"}, []string{"n"})
	grant(t, ctx, s, other, []string{"a"}, nil)
	startJob(t, ctx, s, r.ID, "a", "j")
	if _, _, err := s.PlanTransfer(ctx, r.ID, "a", "j", time.Time{}, time.Now(), []store.Object{{Index: 0, Job: "j", State: store.ObjCopying}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PartDone(ctx, r.ID, "a", 0, store.Part{Index: 0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOAuthState(ctx, store.OAuthState{ID: user + "-state", User: user, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.FindUserRecords(ctx, user)
	if err != nil || !recs.User || len(recs.Rounds) != 1 || len(recs.OAuthStates) != 1 || len(recs.Events) != 1 || recs.Empty() {
		t.Fatalf("records before %+v, %v", recs, err)
	}
	n, err := s.DeleteUser(ctx, user)
	// the round, 2 resources, 1 object, 1 part, 1 state (users/{user}, deleted first, is not counted)
	if err != nil || n != 6 {
		t.Fatalf("DeleteUser deleted %d, %v; want 6", n, err)
	}
	recs, err = s.FindUserRecords(ctx, user)
	if err != nil || recs.User || len(recs.Rounds) != 0 || len(recs.OAuthStates) != 0 || len(recs.Events) != 1 {
		t.Fatalf("records after %+v, %v; want only the event", recs, err)
	}
	if _, err := s.GetPart(ctx, r.ID, "a", 0, 0); err == nil {
		t.Error("a part survived")
	}
	if n, err := s.DeleteUser(ctx, user); err != nil || n != 0 {
		t.Errorf("second DeleteUser: %d, %v", n, err)
	}
	if recs, err := s.FindUserRecords(ctx, other); err != nil || !recs.User || len(recs.Rounds) != 1 {
		t.Errorf("the other user's records %+v, %v", recs, err)
	}
}
