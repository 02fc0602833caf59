package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/store"
)

// PlanTransfer records the objects once: a redelivered plan gets the recorded objects back.
func TestPlanTransferOnce(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, nil)
	startJob(t, ctx, s, r.ID, "a", "j")
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	objs := []store.Object{{Index: 1, Job: "j", Size: 5, State: store.ObjCopying}, {Index: 0, Job: "j", Size: 7, State: store.ObjCopying}}
	if planned, _, err := s.PlanTransfer(ctx, r.ID, "a", "other", time.Time{}, time.Now(), objs); err != nil || planned {
		t.Fatalf("plan of another job: %v, %v", planned, err)
	}
	if planned, out, err := s.PlanTransfer(ctx, r.ID, "a", "j", start, time.Now(), objs); err != nil || !planned || len(out) != 2 {
		t.Fatalf("plan: %v, %+v, %v", planned, out, err)
	}
	planned, out, err := s.PlanTransfer(ctx, r.ID, "a", "j", time.Time{}, time.Now(), []store.Object{{Index: 9}})
	if err != nil || planned || len(out) != 2 || out[0].Index != 0 || out[1].Index != 1 {
		t.Fatalf("second plan: %v, %+v, %v; want the recorded objects by index", planned, out, err)
	}
	res := state(t, ctx, s, r.ID, "a", store.ResTransferring)
	if res.Objects != 2 || res.Bytes != 12 || !res.StartTime.Equal(start) || res.TimeFilter != store.TimeFilterApplied {
		t.Errorf("resource after planning %+v", res)
	}
	list, err := s.ListObjects(ctx, r.ID, "a")
	if err != nil || len(list) != 2 || list[0].Size != 7 {
		t.Errorf("ListObjects %+v, %v", list, err)
	}
}

// Parts are recorded per attempt, never for a purged object; progress counts verified files whole and
// the done parts of the current attempt.
func TestPartsAndProgress(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, nil)
	startJob(t, ctx, s, r.ID, "a", "j")
	objs := []store.Object{{Index: 0, Job: "j", Size: 100, Parts: 2, State: store.ObjCopying}, {Index: 1, Job: "j", Size: 50, State: store.ObjCopying}}
	if _, _, err := s.PlanTransfer(ctx, r.ID, "a", "j", time.Time{}, time.Now(), objs); err != nil {
		t.Fatal(err)
	}
	if err := s.PartDone(ctx, r.ID, "a", 0, store.Part{Index: 0, Attempt: 0, Length: 60}); err != nil {
		t.Fatal(err)
	}
	if err := s.PartDone(ctx, r.ID, "a", 0, store.Part{Index: 1, Attempt: 1, Length: 40}); err != nil {
		t.Fatal(err)
	}
	if err := s.PartDone(ctx, r.ID, "a", 7, store.Part{Index: 0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("part of a missing object: %v, want ErrNotFound", err)
	}
	if _, err := s.GetPart(ctx, r.ID, "a", 7, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a part of a missing object was written: %v", err)
	}
	done, err := s.DoneParts(ctx, r.ID, "a", 0, 0)
	if err != nil || len(done) != 1 || done[0].Length != 60 {
		t.Fatalf("DoneParts attempt 0: %+v, %v", done, err)
	}
	if all, err := s.ListParts(ctx, r.ID, "a", 0); err != nil || len(all) != 2 {
		t.Errorf("ListParts %+v, %v", all, err)
	}
	if ok, err := s.VerifyObject(ctx, r.ID, "a", 1, 0, "final-1"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	p, err := s.TransferProgress(ctx, r.ID, "a")
	if err != nil || p != (store.Progress{Files: 2, FilesDone: 1, Bytes: 150, BytesDone: 110}) {
		t.Errorf("progress %+v, %v; want 1 of 2 files and 110 of 150 bytes", p, err)
	}
	if err := s.UpdateURLs(ctx, r.ID, "a", map[int][]byte{0: []byte("sealed")}); err != nil {
		t.Fatal(err)
	}
	if o, err := s.GetObject(ctx, r.ID, "a", 0); err != nil || string(o.URL) != "sealed" || o.URLFetched.IsZero() {
		t.Errorf("object after UpdateURLs %+v, %v", o, err)
	}
}

// VerifyObject and RecopyObject act once per attempt; RecopyObject gives the object up after the last
// attempt.
func TestVerifyAndRecopyOncePerAttempt(t *testing.T) {
	ctx, s := newStore(t)
	r := grant(t, ctx, s, userID(t), []string{"a"}, nil)
	startJob(t, ctx, s, r.ID, "a", "j")
	if _, _, err := s.PlanTransfer(ctx, r.ID, "a", "j", time.Time{}, time.Now(), []store.Object{{Index: 0, Job: "j", State: store.ObjCopying}}); err != nil {
		t.Fatal(err)
	}
	o, err := s.RecopyObject(ctx, r.ID, "a", 0, 0, 3, "mismatch")
	if err != nil || o.State != store.ObjCopying || o.Attempt != 1 {
		t.Fatalf("recopy attempt 0: %+v, %v", o, err)
	}
	if o, err := s.RecopyObject(ctx, r.ID, "a", 0, 0, 3, "mismatch"); err != nil || o.Attempt != 1 {
		t.Fatalf("recopy of attempt 0 again: %+v, %v", o, err)
	}
	if ok, err := s.VerifyObject(ctx, r.ID, "a", 0, 0, "x"); err != nil || ok {
		t.Fatalf("verify of an old attempt: %v, %v", ok, err)
	}
	if o, err := s.RecopyObject(ctx, r.ID, "a", 0, 1, 2, "still mismatched"); err != nil || o.State != store.ObjFailed || o.Reason != "still mismatched" {
		t.Fatalf("last attempt: %+v, %v", o, err)
	}
	if ok, err := s.VerifyObject(ctx, r.ID, "a", 0, 1, "x"); err != nil || ok {
		t.Errorf("a failed object was verified: %v, %v", ok, err)
	}
}
