package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
)

// ErrNotAllowed means an operator action does not apply to the record's current state.
var ErrNotAllowed = errors.New("not allowed in this state")

// ListUsers returns every user (for the operator's overview), by ID.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	snaps, err := s.fs.Collection(colUsers).OrderBy(firestore.DocumentID, firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out, err := decodeAll[User](snaps, func(v *User, id string) { v.ID = id })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListParts returns every part record of an object (any attempt), by index.
func (s *Store) ListParts(ctx context.Context, rid, name string, obj int) ([]Part, error) {
	snaps, err := s.object(rid, name, obj).Collection(colParts).Documents(ctx).GetAll()
	if err != nil {
		return nil, err
	}
	out, err := decodeAll[Part](snaps, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReopenResource puts a failed resource of an exporting or complete (not yet closed) round back to
// pending, and the round back to exporting with its reset request unpublished, in one transaction: the
// operator's retry, followed by an initiate request. A closed round (its grant reset) cannot be reopened.
func (s *Store) ReopenResource(ctx context.Context, rid, name, reason string) error {
	var from string
	var rnd *Round
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		r, err := get[Round](ctx, tx, s.round(rid))
		if err != nil {
			return err
		}
		res, err := get[Resource](ctx, tx, s.resource(rid, name))
		if err != nil {
			return err
		}
		if res.State != ResFailed {
			return fmt.Errorf("%w: resource %s is %s, not failed", ErrNotAllowed, name, res.State)
		}
		if r.State != RoundExporting && r.State != RoundComplete {
			return fmt.Errorf("%w: round %s is %s (a closed round's grant is reset: the person must consent again)", ErrNotAllowed, rid, r.State)
		}
		now := s.now()
		from = r.State
		r.ID, rnd = rid, r
		res.State, res.Reason, res.ClaimedAt, res.UpdatedAt = ResPending, reason, now.AddDate(-1, 0, 0), now
		if err := tx.Set(s.resource(rid, name), res); err != nil {
			return err
		}
		if from == RoundComplete {
			return tx.Update(s.round(rid), []firestore.Update{{Path: "state", Value: RoundExporting},
				{Path: "resetPublished", Value: false}, {Path: "completedAt", Value: time.Time{}}})
		}
		return nil
	})
	if err != nil {
		return err
	}
	logResource(ctx, rid, name, ResFailed, &Resource{State: ResPending, Reason: reason})
	if from == RoundComplete {
		logRound(ctx, rnd, rid, RoundComplete, RoundExporting)
	}
	return nil
}
