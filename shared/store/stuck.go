package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
)

// Fields the reconciler's deadline queries order by. Each query is an equality on state and a range on
// one of these, so each pair has a composite index in terraform/firestore.tf (collection group for
// resources, collection for rounds and events).
const (
	FieldUpdatedAt    = "updatedAt"
	FieldClaimedAt    = "claimedAt"
	FieldNotBefore    = "notBefore"
	FieldPollDue      = "pollDue"
	FieldJobStartedAt = "jobStartedAt"
	FieldCreatedAt    = "createdAt"
	FieldCompletedAt  = "completedAt"
	FieldClosedAt     = "closedAt"
)

// Page bounds one query: at most Max pages of Size documents.
type Page struct{ Size, Max int }

// ErrStop, returned by a visit function, ends a scan early without error (a time budget ran out).
var ErrStop = errors.New("stop the scan")

// scan runs q page by page (ordered by field, then document ID, so a cursor is exact) and visits each
// document. It reports whether documents were left unread because the page limit was reached.
func scan(ctx context.Context, q firestore.Query, field string, p Page, visit func(*firestore.DocumentSnapshot) error) (bool, error) {
	q = q.OrderBy(field, firestore.Asc).OrderBy(firestore.DocumentID, firestore.Asc).Limit(p.Size)
	var last *firestore.DocumentSnapshot
	for page := 0; page < p.Max; page++ {
		pq := q
		if last != nil {
			pq = q.StartAfter(last)
		}
		it := pq.Documents(ctx)
		n := 0
		for {
			snap, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				it.Stop()
				return false, err
			}
			n++
			last = snap
			if err := visit(snap); err != nil {
				it.Stop()
				if errors.Is(err, ErrStop) {
					return true, nil
				}
				return false, err
			}
		}
		it.Stop()
		if n < p.Size {
			return false, nil
		}
	}
	return true, nil
}

// StaleResources visits the resources of every round in state whose field is before cutoff, oldest
// first (a collection-group query). It reports whether the page limit left some unread.
func (s *Store) StaleResources(ctx context.Context, state, field string, cutoff time.Time, p Page, visit func(round string, r Resource) error) (bool, error) {
	q := s.fs.CollectionGroup(colResources).Where("state", "==", state).Where(field, "<", cutoff)
	more, err := scan(ctx, q, field, p, func(snap *firestore.DocumentSnapshot) error {
		var r Resource
		if err := snap.DataTo(&r); err != nil {
			return fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		r.Name = snap.Ref.ID
		return visit(snap.Ref.Parent.Parent.ID, r)
	})
	if err != nil {
		return more, fmt.Errorf("resources %s by %s: %w", state, field, err)
	}
	return more, nil
}

// StaleRounds visits the rounds in state whose field is before cutoff, oldest first.
func (s *Store) StaleRounds(ctx context.Context, state, field string, cutoff time.Time, p Page, visit func(r Round) error) (bool, error) {
	q := s.fs.Collection(colRounds).Where("state", "==", state).Where(field, "<", cutoff)
	more, err := scan(ctx, q, field, p, func(snap *firestore.DocumentSnapshot) error {
		var r Round
		if err := snap.DataTo(&r); err != nil {
			return fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		r.ID = snap.Ref.ID
		return visit(r)
	})
	if err != nil {
		return more, fmt.Errorf("rounds %s by %s: %w", state, field, err)
	}
	return more, nil
}

// OldestOpenRound returns the open (exporting or complete, not yet closed) round created first, or nil.
func (s *Store) OldestOpenRound(ctx context.Context) (*Round, error) {
	snaps, err := s.fs.Collection(colRounds).Where("state", "in", []string{RoundExporting, RoundComplete}).
		OrderBy(FieldCreatedAt, firestore.Asc).Limit(1).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("oldest open round: %w", err)
	}
	if len(snaps) == 0 {
		return nil, nil
	}
	var r Round
	if err := snaps[0].DataTo(&r); err != nil {
		return nil, err
	}
	r.ID = snaps[0].Ref.ID
	return &r, nil
}

// StaleEvents visits the unpublished events recorded before cutoff, oldest first.
func (s *Store) StaleEvents(ctx context.Context, cutoff time.Time, p Page, visit func(e Event) error) (bool, error) {
	q := s.fs.Collection(colEvents).Where("published", "==", false).Where("occurredAt", "<", cutoff)
	more, err := scan(ctx, q, "occurredAt", p, func(snap *firestore.DocumentSnapshot) error {
		var e Event
		if err := snap.DataTo(&e); err != nil {
			return fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		e.ID = snap.Ref.ID
		return visit(e)
	})
	if err != nil {
		return more, fmt.Errorf("unpublished events: %w", err)
	}
	return more, nil
}

// NotePollDue records when the next state check of job is due. It changes nothing when the resource
// runs another job or is gone (a purge): the reconciler reads the field only of exporting resources.
func (s *Store) NotePollDue(ctx context.Context, rid, name, job string, at time.Time) error {
	ref := s.resource(rid, name)
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		r, err := get[Resource](ctx, tx, ref)
		if err != nil {
			return err
		}
		if r.Job != job || r.State != ResExporting || !at.After(r.PollDue) {
			return nil
		}
		return tx.Update(ref, []firestore.Update{{Path: FieldPollDue, Value: at}})
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
