package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// StartGrant records the user, round 1 and its resources; a not granted resource is terminal at once and
// records resource.failed; a second grant while the round runs is refused.
func TestStartGrant(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	r := grant(t, ctx, s, user, []string{"a", "b"}, []string{"c"})
	if r.ID != store.RoundID(user, 1) || r.State != store.RoundExporting || r.GrantFirst != 1 {
		t.Fatalf("round %+v", r)
	}
	u, err := s.GetUser(ctx, user)
	if err != nil || u.State != "active" || u.CurrentRound != r.ID || u.Rounds != 1 {
		t.Fatalf("user %+v, %v", u, err)
	}
	state(t, ctx, s, r.ID, "a", store.ResPending)
	state(t, ctx, s, r.ID, "c", store.ResNotGranted)
	list, err := s.ListResources(ctx, r.ID)
	if err != nil || len(list) != 3 {
		t.Fatalf("resources %+v, %v", list, err)
	}
	pending, err := s.PendingEvents(ctx, user)
	if err != nil || len(pending) != 1 || pending[0].Type != outbox.ResourceFailed || pending[0].Resource != "c" {
		t.Fatalf("events %+v, %v; want resource.failed of c", pending, err)
	}
	if _, err := s.StartGrant(ctx, store.NewGrant{User: user, Access: store.AccessOneTime, Granted: []string{"a"}}); !errors.Is(err, store.ErrRoundRunning) {
		t.Errorf("second grant: %v, want ErrRoundRunning", err)
	}
}

// A round completes only once every resource is terminal, records round.completed once, and is claimed
// for its end by one caller per lease; a closed round is not claimed.
func TestCompleteAndCloseRound(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	r := grant(t, ctx, s, user, []string{"a", "b"}, nil)
	if _, complete, err := s.CompleteRoundIfDone(ctx, r.ID); err != nil || complete {
		t.Fatalf("open round completed: %v, %v", complete, err)
	}
	for _, name := range []string{"b", "a"} {
		if ok, err := s.FailUnfinished(ctx, r.ID, name, "test"); err != nil || !ok {
			t.Fatalf("fail %s: %v, %v", name, ok, err)
		}
	}
	got, complete, err := s.CompleteRoundIfDone(ctx, r.ID)
	if err != nil || !complete || got.State != store.RoundComplete {
		t.Fatalf("complete: %+v, %v, %v", got, complete, err)
	}
	if _, complete, err := s.CompleteRoundIfDone(ctx, r.ID); err != nil || !complete {
		t.Fatalf("again: %v, %v", complete, err)
	}
	ev, err := s.GetEvent(ctx, outbox.ID(outbox.RoundCompleted, r.ID))
	if err != nil || len(ev.Resources) != 2 || ev.Resources[0].Name != "a" || ev.Stage != outbox.StageRound {
		t.Fatalf("round.completed %+v, %v", ev, err)
	}

	if _, won, err := s.ClaimRoundEnd(ctx, r.ID, time.Hour); err != nil || !won {
		t.Fatalf("first claim: %v, %v", won, err)
	}
	if _, won, err := s.ClaimRoundEnd(ctx, r.ID, time.Hour); err != nil || won {
		t.Fatalf("claim within the lease won: %v", err)
	}
	if err := s.ReleaseRoundEnd(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, won, err := s.ClaimRoundEnd(ctx, r.ID, time.Hour); err != nil || !won {
		t.Fatalf("claim after release: %v, %v", won, err)
	}
	if err := s.MarkResetPublished(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseRound(ctx, r.ID, "reset", time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	closed, err := s.GetRound(ctx, r.ID)
	if err != nil || closed.State != store.RoundClosed || closed.Outcome != "reset" || !closed.ResetPublished {
		t.Fatalf("closed round %+v, %v", closed, err)
	}
	if u, err := s.GetUser(ctx, user); err != nil || u.State != "closed" {
		t.Fatalf("user after the final close: %+v, %v", u, err)
	}
	ended, err := s.GetEvent(ctx, outbox.ID(outbox.GrantEnded, r.ID))
	if err != nil || ended.Ending != outbox.EndingOneTime {
		t.Fatalf("grant.ended %+v, %v", ended, err)
	}
	if _, won, err := s.ClaimRoundEnd(ctx, r.ID, 0); err != nil || won {
		t.Errorf("closed round claimed: %v, %v", won, err)
	}
	if err := s.CloseRound(ctx, r.ID, "again", time.Time{}, false); err != nil {
		t.Errorf("closing a closed round: %v", err)
	}
	if again, _ := s.GetRound(ctx, r.ID); again.Outcome != "reset" {
		t.Errorf("closing again changed the outcome to %q", again.Outcome)
	}
}

// ScheduleNextRound is idempotent and carries only the granted resources; a scheduled round begins once.
func TestScheduleAndBeginRound(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	r := start(t, ctx, s, store.NewGrant{User: user, Access: store.AccessTimeBased, Granted: []string{"a"}, NotGranted: []string{"n"}})
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	next, err := s.ScheduleNextRound(ctx, r, at)
	if err != nil || next.ID != store.RoundID(user, 2) || next.State != store.RoundScheduled || len(next.Resources) != 1 || next.GrantFirst != 1 {
		t.Fatalf("next round %+v, %v", next, err)
	}
	again, err := s.ScheduleNextRound(ctx, r, at.Add(time.Hour))
	if err != nil || !again.NotBefore.Equal(at) {
		t.Fatalf("second schedule: %+v, %v; want the first round kept", again, err)
	}
	if u, _ := s.GetUser(ctx, user); u.CurrentRound != next.ID || u.Rounds != 2 {
		t.Errorf("user %+v", u)
	}
	for range 2 {
		if err := s.BeginRound(ctx, next.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.GetRound(ctx, next.ID); got.State != store.RoundExporting {
		t.Errorf("begun round is %s", got.State)
	}
	rounds, err := s.UserRounds(ctx, user)
	if err != nil || len(rounds) != 2 || rounds[0].Number != 2 {
		t.Errorf("UserRounds %+v, %v; want newest first", rounds, err)
	}
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 1 || users[0].ID != user {
		t.Errorf("ListUsers %+v, %v", users, err)
	}
}

// PreviousExport finds the latest done export of the grant's earlier rounds, skipping failed rounds.
func TestPreviousExport(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	r1 := start(t, ctx, s, store.NewGrant{User: user, Access: store.AccessTimeBased, Granted: []string{"a"}})
	exported := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	finishDone(t, ctx, s, r1.ID, "a", exported)
	r2, err := s.ScheduleNextRound(ctx, r1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.FailUnfinished(ctx, r2.ID, "a", "test"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	r3, err := s.ScheduleNextRound(ctx, r2, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	at, found, err := s.PreviousExport(ctx, r3, "a")
	if err != nil || !found || !at.Equal(exported) {
		t.Errorf("PreviousExport = %v, %v, %v; want round 1's %v", at, found, err, exported)
	}
	if _, found, err := s.PreviousExport(ctx, r1, "a"); err != nil || found {
		t.Errorf("round 1 found a previous export: %v", err)
	}
}
