package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// startJob claims resource name of round rid and records job for it: the resource is exporting.
func startJob(t *testing.T, ctx context.Context, s *store.Store, rid, name, job string) {
	t.Helper()
	if c, err := s.ClaimInitiate(ctx, rid, name, time.Hour, false); err != nil || !c.Won {
		t.Fatalf("claim %s: %+v, %v", name, c, err)
	}
	if ok, err := s.RecordJob(ctx, rid, name, job, time.Time{}, store.TimeFilterNone); err != nil || !ok {
		t.Fatalf("record job of %s: %v, %v", name, ok, err)
	}
}

// finishDone drives resource name of round rid from pending to done with one verified archive file.
func finishDone(t *testing.T, ctx context.Context, s *store.Store, rid, name string, exportTime time.Time) {
	t.Helper()
	startJob(t, ctx, s, rid, name, "job-"+name)
	objs := []store.Object{{Index: 0, Job: "job-" + name, Size: 10, State: store.ObjCopying}}
	if planned, _, err := s.PlanTransfer(ctx, rid, name, "job-"+name, time.Time{}, exportTime, objs); err != nil || !planned {
		t.Fatalf("plan %s: %v, %v", name, planned, err)
	}
	if ok, err := s.VerifyObject(ctx, rid, name, 0, 0, "final-0"); err != nil || !ok {
		t.Fatalf("verify %s: %v, %v", name, ok, err)
	}
	if st, changed, err := s.FinishResource(ctx, rid, name); err != nil || !changed || st != store.ResDone {
		t.Fatalf("finish %s: %s, %v, %v", name, st, changed, err)
	}
}

// An initiate claim is won once; a live claim is not taken, an expired one is; a cooldown is claimed
// only with fromCooldown.
func TestClaimInitiate(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, []string{"n"})
	c, err := s.ClaimInitiate(ctx, r.ID, "a", time.Hour, false)
	if err != nil || !c.Won || c.Resource.State != store.ResInitiating || c.Resource.Attempts != 1 {
		t.Fatalf("first claim %+v, %v", c, err)
	}
	if c, err := s.ClaimInitiate(ctx, r.ID, "a", time.Hour, false); err != nil || c.Won {
		t.Fatalf("live claim taken: %+v, %v", c, err)
	}
	if c, err := s.ClaimInitiate(ctx, r.ID, "a", time.Nanosecond, false); err != nil || !c.Won || c.Resource.Attempts != 2 {
		t.Fatalf("expired claim not taken over: %+v, %v", c, err)
	}
	if ok, err := s.Cooldown(ctx, r.ID, "a", time.Now().Add(time.Hour), "429"); err != nil || !ok {
		t.Fatalf("cooldown: %v, %v", ok, err)
	}
	if c, err := s.ClaimInitiate(ctx, r.ID, "a", time.Nanosecond, false); err != nil || c.Won {
		t.Fatalf("cooldown claimed without fromCooldown: %+v, %v", c, err)
	}
	if c, err := s.ClaimInitiate(ctx, r.ID, "a", time.Hour, true); err != nil || !c.Won {
		t.Fatalf("cooldown not claimed with fromCooldown: %+v, %v", c, err)
	}
	if c, err := s.ClaimInitiate(ctx, r.ID, "n", time.Nanosecond, true); err != nil || c.Won {
		t.Fatalf("a not granted resource was claimed: %+v, %v", c, err)
	}
}

// The named transitions act only from their from-states (and job): any other state is left alone.
func TestNamedTransitionsRefuseWrongFromStates(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, nil)
	for name, call := range map[string]func() (bool, error){
		"RecordJob":       func() (bool, error) { return s.RecordJob(ctx, r.ID, "a", "j", time.Time{}, "") },
		"ReleaseInitiate": func() (bool, error) { return s.ReleaseInitiate(ctx, r.ID, "a") },
		"EndInitiate":     func() (bool, error) { return s.EndInitiate(ctx, r.ID, "a", store.ResFailed, "x") },
		"Cooldown":        func() (bool, error) { return s.Cooldown(ctx, r.ID, "a", time.Now(), "x") },
		"ReleaseRetry":    func() (bool, error) { return s.ReleaseRetry(ctx, r.ID, "a", "") },
		"EndJob":          func() (bool, error) { return s.EndJob(ctx, r.ID, "a", "", store.ResFailed, "x") },
		"RecordRetry":     func() (bool, error) { return s.RecordRetry(ctx, r.ID, "a", "", "j2") },
	} {
		if ok, err := call(); err != nil || ok {
			t.Errorf("%s on a pending resource: changed %v, %v", name, ok, err)
		}
	}
	state(t, ctx, s, r.ID, "a", store.ResPending)

	startJob(t, ctx, s, r.ID, "a", "j")
	if ok, err := s.EndJob(ctx, r.ID, "a", "other", store.ResFailed, "x"); err != nil || ok {
		t.Errorf("EndJob of another job: changed %v, %v", ok, err)
	}
	if _, err := s.EndJob(ctx, r.ID, "a", "j", store.ResDone, "x"); !errors.Is(err, store.ErrNotAllowed) {
		t.Errorf("EndJob to done: %v, want ErrNotAllowed", err)
	}
	if _, err := s.EndInitiate(ctx, r.ID, "a", store.ResPending, "x"); !errors.Is(err, store.ErrNotAllowed) {
		t.Errorf("EndInitiate to a non-terminal state: %v, want ErrNotAllowed", err)
	}
	if ok, err := s.EndJob(ctx, r.ID, "a", "j", store.ResCancelled, "cancelled at Google"); err != nil || !ok {
		t.Fatalf("EndJob: %v, %v", ok, err)
	}
	res := state(t, ctx, s, r.ID, "a", store.ResCancelled)
	if res.Reason != "cancelled at Google" {
		t.Errorf("reason %q", res.Reason)
	}
	if ok, err := s.FailUnfinished(ctx, r.ID, "a", "late"); err != nil || ok {
		t.Errorf("FailUnfinished changed a terminal resource: %v, %v", ok, err)
	}
	ev, err := s.GetEvent(ctx, outbox.ID(outbox.ResourceFailed, r.ID, "a", "j"))
	if err != nil || ev.State != string(store.ResCancelled) || ev.Stage != outbox.StageResource || ev.Held {
		t.Errorf("resource.failed %+v, %v", ev, err)
	}
}

// A FAILED job's retry is claimed once per lease and replaces the job.
func TestClaimRetry(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, nil)
	startJob(t, ctx, s, r.ID, "a", "j1")
	if c, err := s.ClaimRetry(ctx, r.ID, "a", "other", time.Hour); err != nil || c.Won {
		t.Fatalf("retry of another job claimed: %+v, %v", c, err)
	}
	if c, err := s.ClaimRetry(ctx, r.ID, "a", "j1", time.Hour); err != nil || !c.Won {
		t.Fatalf("first retry claim: %+v, %v", c, err)
	}
	if c, err := s.ClaimRetry(ctx, r.ID, "a", "j1", time.Hour); err != nil || c.Won {
		t.Fatalf("live retry claim taken: %+v, %v", c, err)
	}
	if c, err := s.ClaimRetry(ctx, r.ID, "a", "j1", time.Nanosecond); err != nil || !c.Won {
		t.Fatalf("expired retry claim not taken over: %+v, %v", c, err)
	}
	if ok, err := s.RecordRetry(ctx, r.ID, "a", "j1", "j2"); err != nil || !ok {
		t.Fatalf("record retry: %v, %v", ok, err)
	}
	res := state(t, ctx, s, r.ID, "a", store.ResExporting)
	if res.Job != "j2" || res.Retries != 1 || len(res.Jobs) != 2 {
		t.Errorf("after the retry %+v", res)
	}
}

// A done resource records resource.exported, held until its manifest is written.
func TestFinishResourceRecordsExport(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	r := grant(t, ctx, s, user, []string{"a"}, nil)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	finishDone(t, ctx, s, r.ID, "a", at)
	if st, changed, err := s.FinishResource(ctx, r.ID, "a"); err != nil || changed || st != store.ResDone {
		t.Errorf("second finish: %s, %v, %v", st, changed, err)
	}
	ev, err := s.GetEvent(ctx, outbox.ExportedID(r.ID, "a", "job-a"))
	if err != nil || !ev.Held || len(ev.Objects) != 1 || ev.Objects[0].Name != "final-0" || !ev.ExportTime.Equal(at) {
		t.Fatalf("resource.exported %+v, %v", ev, err)
	}
	if pending, err := s.PendingEvents(ctx, user); err != nil || len(pending) != 0 {
		t.Errorf("a held event is pending: %+v, %v", pending, err)
	}
}

// A resource whose file failed ends failed with the file's reason.
func TestFinishResourceFails(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, nil)
	startJob(t, ctx, s, r.ID, "a", "j")
	objs := []store.Object{{Index: 0, Job: "j", State: store.ObjCopying}, {Index: 1, Job: "j", State: store.ObjCopying}}
	if _, _, err := s.PlanTransfer(ctx, r.ID, "a", "j", time.Time{}, time.Now(), objs); err != nil {
		t.Fatal(err)
	}
	if st, changed, err := s.FinishResource(ctx, r.ID, "a"); err != nil || changed || st != store.ResTransferring {
		t.Fatalf("finish with files copying: %s, %v, %v", st, changed, err)
	}
	if _, err := s.RecopyObject(ctx, r.ID, "a", 1, 0, 1, "checksum mismatch"); err != nil {
		t.Fatal(err)
	}
	st, changed, err := s.FinishResource(ctx, r.ID, "a")
	if err != nil || !changed || st != store.ResFailed {
		t.Fatalf("finish with a failed file: %s, %v, %v", st, changed, err)
	}
	if res := state(t, ctx, s, r.ID, "a", store.ResFailed); res.Reason == "" {
		t.Error("no reason")
	}
}

// The operator's retry reopens only a failed resource of a round not closed, and reopens a complete round.
func TestReopenResource(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, nil)
	if err := s.ReopenResource(ctx, r.ID, "a", "operator"); !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("reopen a pending resource: %v, want ErrNotAllowed", err)
	}
	if _, err := s.FailUnfinished(ctx, r.ID, "a", "x"); err != nil {
		t.Fatal(err)
	}
	if _, complete, err := s.CompleteRoundIfDone(ctx, r.ID); err != nil || !complete {
		t.Fatal(complete, err)
	}
	if err := s.ReopenResource(ctx, r.ID, "a", "operator"); err != nil {
		t.Fatal(err)
	}
	state(t, ctx, s, r.ID, "a", store.ResPending)
	if got, _ := s.GetRound(ctx, r.ID); got.State != store.RoundExporting || got.ResetPublished {
		t.Errorf("round after reopen %+v", got)
	}
	if _, err := s.FailUnfinished(ctx, r.ID, "a", "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.EndGrant(ctx, r.ID, "reset", outbox.EndingOneTime, "done"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReopenResource(ctx, r.ID, "a", "operator"); !errors.Is(err, store.ErrNotAllowed) {
		t.Errorf("reopen in a closed round: %v, want ErrNotAllowed", err)
	}
}

// NotePollDue only moves the due time of the exporting resource's own job forward.
func TestNotePollDue(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, nil)
	startJob(t, ctx, s, r.ID, "a", "j")
	due := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	for _, tc := range []struct {
		job string
		at  time.Time
	}{{"j", due}, {"other", due.Add(time.Hour)}, {"j", due.Add(-time.Minute)}} {
		if err := s.NotePollDue(ctx, r.ID, "a", tc.job, tc.at); err != nil {
			t.Fatal(err)
		}
	}
	if res := state(t, ctx, s, r.ID, "a", store.ResExporting); !res.PollDue.Equal(due) {
		t.Errorf("pollDue %v, want %v", res.PollDue, due)
	}
	if err := s.NotePollDue(ctx, "gone~1", "a", "j", due); err != nil {
		t.Errorf("a purged resource: %v", err)
	}
}
