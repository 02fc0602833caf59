package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// The stale queries visit exactly the records in the state whose field is before the cutoff, oldest
// first, page by page; a page limit reports what it left, and ErrStop ends a scan early.
func TestStaleResourcesAndRounds(t *testing.T) {
	ctx, s := newStore(t)
	var rounds []string
	for i := range 3 {
		r := grant(t, ctx, s, fmt.Sprintf("%s-%d", userID(t), i), []string{"a", "b"}, nil)
		rounds = append(rounds, r.ID)
	}
	if _, err := s.FailUnfinished(ctx, rounds[0], "b", "x"); err != nil {
		t.Fatal(err)
	}
	future, past := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	var seen []string
	more, err := s.StaleResources(ctx, store.ResPending, store.FieldUpdatedAt, future, store.Page{Size: 2, Max: 10}, func(round string, r store.Resource) error {
		seen = append(seen, round+"/"+r.Name)
		return nil
	})
	if err != nil || more || len(seen) != 5 || slices.Contains(seen, rounds[0]+"/b") {
		t.Fatalf("pending resources %v, more %v, %v; want the 5 pending ones", seen, more, err)
	}
	seen = nil
	if more, err := s.StaleResources(ctx, store.ResPending, store.FieldUpdatedAt, future, store.Page{Size: 2, Max: 1}, func(round string, r store.Resource) error {
		seen = append(seen, r.Name)
		return nil
	}); err != nil || !more || len(seen) != 2 {
		t.Fatalf("one page of 2: %v, more %v, %v", seen, more, err)
	}
	seen = nil
	if more, err := s.StaleResources(ctx, store.ResPending, store.FieldUpdatedAt, future, store.Page{Size: 10, Max: 1}, func(round string, r store.Resource) error {
		seen = append(seen, r.Name)
		return store.ErrStop
	}); err != nil || !more || len(seen) != 1 {
		t.Fatalf("stopped scan: %v, more %v, %v", seen, more, err)
	}
	if _, err := s.StaleResources(ctx, store.ResPending, store.FieldUpdatedAt, past, store.Page{Size: 10, Max: 1}, func(string, store.Resource) error {
		t.Error("visited a resource updated after the cutoff")
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var ids []string
	if _, err := s.StaleRounds(ctx, store.RoundExporting, store.FieldCreatedAt, future, store.Page{Size: 10, Max: 1}, func(r store.Round) error {
		ids = append(ids, r.ID)
		return nil
	}); err != nil || !slices.Equal(ids, rounds) {
		t.Fatalf("stale rounds %v, %v; want %v oldest first", ids, err, rounds)
	}
	oldest, err := s.OldestOpenRound(ctx)
	if err != nil || oldest == nil || oldest.ID != rounds[0] {
		t.Fatalf("OldestOpenRound %+v, %v", oldest, err)
	}
}

func TestStaleEvents(t *testing.T) {
	ctx, s := newStore(t)
	user := userID(t)
	if _, err := s.OldestOpenRound(ctx); err != nil {
		t.Fatal(err)
	}
	old := outbox.RoundRecord(user, user+"~1", 1, store.AccessOneTime, nil, time.Now().Add(-time.Hour))
	fresh := outbox.GrantRecord(user, user+"~1", 1, store.AccessOneTime, outbox.EndingOneTime, "x", time.Now().Add(time.Hour))
	published := outbox.PurgeRecord(user, "p", 1)
	published.OccurredAt = time.Now().Add(-2 * time.Hour)
	for _, e := range []outbox.Record{old, fresh, published} {
		if _, err := s.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkEventPublished(ctx, published.ID); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if _, err := s.StaleEvents(ctx, time.Now(), store.Page{Size: 10, Max: 1}, func(e outbox.Record) error {
		seen = append(seen, e.ID)
		return nil
	}); err != nil || !slices.Equal(seen, []string{old.ID}) {
		t.Errorf("stale events %v, %v; want only the old unpublished one", seen, err)
	}
}
