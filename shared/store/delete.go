package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portability-pipeline/pipeline/shared/iterate"
)

// Deletion: every record of a user (the purge), and a closed round with everything below it (retention).

// UserRecords is what Firestore holds of one user outside the token store.
type UserRecords struct {
	User        bool
	Rounds      []string
	OAuthStates []string
	// Events are the user's records in the events outbox (deleted by the purge after user.purged is out).
	Events []string
}

// Empty reports that nothing is stored.
func (u UserRecords) Empty() bool {
	return !u.User && len(u.Rounds) == 0 && len(u.OAuthStates) == 0 && len(u.Events) == 0
}

// FindUserRecords lists the user's document, rounds and pending consents.
func (s *Store) FindUserRecords(ctx context.Context, user string) (UserRecords, error) {
	var out UserRecords
	_, err := s.fs.Collection(colUsers).Doc(user).Get(ctx)
	switch {
	case err == nil:
		out.User = true
	case !notFound(err):
		return out, fmt.Errorf("read user %s: %w", user, err)
	}
	if out.Rounds, err = s.idsWhere(ctx, colRounds, "user", user); err != nil {
		return out, err
	}
	if out.OAuthStates, err = s.idsWhere(ctx, colStates, "user", user); err != nil {
		return out, err
	}
	if out.Events, err = s.idsWhere(ctx, colEvents, "user", user); err != nil {
		return out, err
	}
	return out, nil
}

// idsWhere lists the IDs of the documents of col whose field equals value (no fields read).
func (s *Store) idsWhere(ctx context.Context, col, field, value string) ([]string, error) {
	snaps, err := s.fs.Collection(col).Where(field, "==", value).Select().Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("list %s of %s %s: %w", col, field, value, err)
	}
	ids := make([]string, len(snaps))
	for i, snap := range snaps {
		ids[i] = snap.Ref.ID
	}
	return ids, nil
}

// DeleteUser deletes every record of user in this store: users/{user} first (so no step can schedule a
// further round: that needs the user document), then each round with its resources, objects and parts,
// and the user's pending consents. Rounds that appear while it runs are deleted in a further pass. It
// returns how many documents it deleted (idempotent: 0 when nothing was left). The token lives in the
// token store: delete it there.
func (s *Store) DeleteUser(ctx context.Context, user string) (int, error) {
	if err := deleteDoc(ctx, s.fs.Collection(colUsers).Doc(user)); err != nil {
		return 0, fmt.Errorf("delete user %s: %w", user, err)
	}
	n := 0
	for pass := 0; pass < 3; pass++ {
		recs, err := s.FindUserRecords(ctx, user)
		if err != nil {
			return n, err
		}
		recs.Events = nil // the purge deletes them last, after announcing itself
		if recs.Empty() {
			return n, nil
		}
		if recs.User { // a new consent recorded a grant meanwhile: it goes too
			if err := deleteDoc(ctx, s.fs.Collection(colUsers).Doc(user)); err != nil {
				return n, err
			}
			n++
		}
		for _, id := range recs.Rounds {
			k, err := deleteTree(ctx, s.round(id))
			n += k
			if err != nil {
				return n, fmt.Errorf("delete round %s: %w", id, err)
			}
		}
		for _, id := range recs.OAuthStates {
			if err := deleteDoc(ctx, s.fs.Collection(colStates).Doc(id)); err != nil {
				return n, fmt.Errorf("delete oauth state: %w", err)
			}
			n++
		}
	}
	return n, errors.New("records keep appearing while they are deleted")
}

// deleteTree deletes a document and everything below it (documents that exist only as parents of others
// included). The document goes first, its sub-collections after: a step writes below a document in a
// transaction that reads it (PartDone reads the object), and Firestore makes the delete wait for that
// transaction's commit, so once the document is deleted nothing new can appear below it, and the sweep
// that follows finds what did. Sweeping the children first would miss a part committed between the
// sweep and the delete, and leave it under a deleted round (a purged person's record, kept for ever).
func deleteTree(ctx context.Context, ref *firestore.DocumentRef) (int, error) {
	if err := deleteDoc(ctx, ref); err != nil {
		return 0, err
	}
	n := 1
	err := iterate.All(ref.Collections(ctx).Next, func(c *firestore.CollectionRef) error {
		return iterate.All(c.DocumentRefs(ctx).Next, func(d *firestore.DocumentRef) error {
			k, err := deleteTree(ctx, d)
			n += k
			return err
		})
	})
	return n, err
}

// deleteDoc deletes one document; a missing one is not an error. A delete that meets a transaction
// holding the document (a step recording a part while the person deletes their data) is answered
// ABORTED, for which Firestore's advice is to retry the request: it is, a few times, with backoff.
func deleteDoc(ctx context.Context, ref *firestore.DocumentRef) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := ref.Delete(ctx)
		switch {
		case err == nil || notFound(err):
			return nil
		case status.Code(err) != codes.Aborted || attempt == 5:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

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
		if err := deleteDoc(ctx, s.event(id)); err != nil {
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
