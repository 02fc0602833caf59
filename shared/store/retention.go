package store

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
)

// DeleteClosedRound deletes a closed round and everything below it (resources, objects, parts), the
// round's events in the outbox, and the user's document when this was the user's last round and the
// grant is over. Firestore TTL would delete only the round's own document and leave its sub-collections
// behind, so retention is this cascade, run by the reconciler. It refuses a round that is not closed
// (ErrNotAllowed) and returns how many documents it deleted (0 when the round is gone already).
func (s *Store) DeleteClosedRound(ctx context.Context, rid string) (int, error) {
	r, err := s.GetRound(ctx, rid)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if r.State != RoundClosed {
		return 0, fmt.Errorf("%w: round %s is %s, not closed", ErrNotAllowed, rid, r.State)
	}
	// The user's document goes first, while the round still exists: a returning user then starts from
	// round 1 only once the old rounds are gone (DeleteClosedRound runs oldest closed first).
	uref := s.fs.Collection(colUsers).Doc(r.User)
	userDeleted := false
	err = s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		userDeleted = false
		u, err := get[User](ctx, tx, uref)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if u.State != "closed" || u.CurrentRound != rid {
			return nil
		}
		userDeleted = true
		return tx.Delete(uref)
	})
	if err != nil {
		return 0, fmt.Errorf("delete user of %s: %w", rid, err)
	}
	n := 0
	if userDeleted {
		n++
	}
	ids, err := s.idsWhere(ctx, colEvents, "round", rid)
	if err != nil {
		return n, err
	}
	for _, id := range ids {
		if _, err := s.event(id).Delete(ctx); err != nil && !notFound(err) {
			return n, fmt.Errorf("delete event of %s: %w", rid, err)
		}
		n++
	}
	k, err := deleteTree(ctx, s.round(rid))
	n += k
	if err != nil {
		return n, fmt.Errorf("delete round %s: %w", rid, err)
	}
	return n, nil
}
