package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

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
