package store_test

import (
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// The outbox keeps one record per ID, hands out a user's unpublished records in order up to the first
// held one, and forgets them once published or deleted.
func TestOutboxRecords(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	at := time.Now().UTC()
	purge := outbox.PurgeRecord(user, "p1", 1)
	first, err := s.RecordEvent(ctx, purge)
	if err != nil || first.ID != purge.ID || first.OccurredAt.IsZero() {
		t.Fatalf("record %+v, %v", first, err)
	}
	changed := purge
	changed.Reason = "another text"
	if again, err := s.RecordEvent(ctx, changed); err != nil || again.Reason != purge.Reason {
		t.Fatalf("second record: %+v, %v; want the first kept", again, err)
	}
	held := outbox.ResourceRecord(outbox.ResourceEnd{User: user, Round: user + "~1", RoundNumber: 1, Resource: "a", Job: "j",
		Exported: true, Objects: []outbox.Object{{Name: "f"}}})
	failed := outbox.ResourceRecord(outbox.ResourceEnd{User: user, Round: user + "~1", RoundNumber: 1, Resource: "b", Job: "j"})
	round := outbox.RoundRecord(user, user+"~1", 1, store.AccessOneTime, nil, at)
	for _, e := range []outbox.Record{round, failed} {
		if _, err := s.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	ids := func() []string {
		pending, err := s.PendingEvents(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range pending {
			out = append(out, e.Type)
		}
		return out
	}
	want := func(got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("pending %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("pending %v, want %v", got, want)
			}
		}
	}
	want(ids(), outbox.ResourceFailed, outbox.RoundCompleted, outbox.UserPurged)
	if _, err := s.RecordEvent(ctx, held); err != nil {
		t.Fatal(err)
	}
	want(ids(), outbox.ResourceFailed) // the round and the purge wait behind the held export
	if err := s.ReleaseEvent(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	want(ids(), outbox.ResourceFailed, outbox.ResourceExported, outbox.RoundCompleted, outbox.UserPurged)
	if err := s.MarkEventPublished(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	if e, err := s.GetEvent(ctx, held.ID); err != nil || !e.Published || e.PublishedAt.IsZero() {
		t.Fatalf("published record %+v, %v", e, err)
	}
	want(ids(), outbox.ResourceFailed, outbox.RoundCompleted, outbox.UserPurged)
	if n, err := s.DeleteEvents(ctx, user, purge.ID); err != nil || n != 3 {
		t.Fatalf("DeleteEvents keeping the purge: %d, %v", n, err)
	}
	want(ids(), outbox.UserPurged)
	if err := s.ReleaseEvent(ctx, "missing"); err == nil {
		t.Error("released a missing record")
	}
}
