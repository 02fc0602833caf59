package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
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

// Retention refuses an open round; a closed round goes with everything below it and its events, and the
// user's document goes with the user's last round of an ended grant.
func TestDeleteClosedRound(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	r1, err := s.StartGrant(ctx, store.NewGrant{User: user, Access: store.AccessTimeBased, Granted: []string{"a"}, NotGranted: []string{"n"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteClosedRound(ctx, r1.ID); !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("open round: %v, want ErrNotAllowed", err)
	}
	if _, err := s.FailUnfinished(ctx, r1.ID, "a", "x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CompleteRoundIfDone(ctx, r1.ID); err != nil {
		t.Fatal(err)
	}
	r2, err := s.ScheduleNextRound(ctx, r1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CloseRound(ctx, r1.ID, "next round scheduled", time.Now(), false); err != nil {
		t.Fatal(err)
	}
	// round 1, its 2 resources, resource.failed of a and of n, round.completed; the user stays (round 2)
	if n, err := s.DeleteClosedRound(ctx, r1.ID); err != nil || n != 6 {
		t.Fatalf("DeleteClosedRound(1) = %d, %v; want 6", n, err)
	}
	if _, err := s.GetUser(ctx, user); err != nil {
		t.Fatalf("the user went with an earlier round: %v", err)
	}
	if _, err := s.GetEvent(ctx, outbox.ID(outbox.RoundCompleted, r1.ID)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("round 1's event survived: %v", err)
	}
	if err := s.EndGrant(ctx, r2.ID, "horizon", outbox.EndingHorizon, "done"); err != nil {
		t.Fatal(err)
	}
	// the user, round 2, its resource, grant.ended
	if n, err := s.DeleteClosedRound(ctx, r2.ID); err != nil || n != 4 {
		t.Fatalf("DeleteClosedRound(2) = %d, %v; want 4", n, err)
	}
	recs, err := s.FindUserRecords(ctx, user)
	if err != nil || !recs.Empty() {
		t.Errorf("left of the user: %+v, %v", recs, err)
	}
	if n, err := s.DeleteClosedRound(ctx, r2.ID); err != nil || n != 0 {
		t.Errorf("a deleted round again: %d, %v", n, err)
	}
}
