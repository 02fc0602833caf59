package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
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

// scanAs runs scan over q and decodes each document as T for visit, which also gets the document (for
// its ID); what names the query in an error.
func scanAs[T any](ctx context.Context, q firestore.Query, field string, p Page, what string,
	visit func(v *T, ref *firestore.DocumentRef) error) (bool, error) {
	more, err := scan(ctx, q, field, p, func(snap *firestore.DocumentSnapshot) error {
		var v T
		if err := snap.DataTo(&v); err != nil {
			return fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		return visit(&v, snap.Ref)
	})
	if err != nil {
		return more, fmt.Errorf("%s: %w", what, err)
	}
	return more, nil
}

// StaleResources visits the resources of every round in state whose field is before cutoff, oldest
// first (a collection-group query). It reports whether the page limit left some unread.
func (s *Store) StaleResources(ctx context.Context, state ResourceState, field string, cutoff time.Time, p Page, visit func(round string, r Resource) error) (bool, error) {
	q := s.fs.CollectionGroup(colResources).Where("state", "==", string(state)).Where(field, "<", cutoff)
	return scanAs(ctx, q, field, p, "resources "+string(state)+" by "+field, func(r *Resource, ref *firestore.DocumentRef) error {
		r.Name = ref.ID
		return visit(ref.Parent.Parent.ID, *r)
	})
}

// StaleRounds visits the rounds in state whose field is before cutoff, oldest first.
func (s *Store) StaleRounds(ctx context.Context, state RoundState, field string, cutoff time.Time, p Page, visit func(r Round) error) (bool, error) {
	q := s.fs.Collection(colRounds).Where("state", "==", string(state)).Where(field, "<", cutoff)
	return scanAs(ctx, q, field, p, "rounds "+string(state)+" by "+field, func(r *Round, ref *firestore.DocumentRef) error {
		r.ID = ref.ID
		return visit(*r)
	})
}

// OldestOpenRound returns the open (exporting or complete, not yet closed) round created first, or nil.
func (s *Store) OldestOpenRound(ctx context.Context) (*Round, error) {
	snaps, err := s.fs.Collection(colRounds).Where("state", "in", []string{string(RoundExporting), string(RoundComplete)}).
		OrderBy(FieldCreatedAt, firestore.Asc).Limit(1).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("oldest open round: %w", err)
	}
	rounds, err := decodeAll(snaps, roundID)
	if err != nil || len(rounds) == 0 {
		return nil, err
	}
	return &rounds[0], nil
}

// StaleEvents visits the unpublished events recorded before cutoff, oldest first.
func (s *Store) StaleEvents(ctx context.Context, cutoff time.Time, p Page, visit func(e outbox.Record) error) (bool, error) {
	q := s.fs.Collection(colEvents).Where("published", "==", false).Where("occurredAt", "<", cutoff)
	return scanAs(ctx, q, "occurredAt", p, "unpublished events", func(e *outbox.Record, ref *firestore.DocumentRef) error {
		e.ID = ref.ID
		return visit(*e)
	})
}
