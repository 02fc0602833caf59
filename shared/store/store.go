package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNotFound is returned for a missing document.
var ErrNotFound = errors.New("not found")

// ErrConsumed means a single-use record was already used or has expired.
var ErrConsumed = errors.New("already used or expired")

// ErrRoundRunning means the user has a round that has not finished.
var ErrRoundRunning = errors.New("a round is still running for this user")

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]{0,127}$`)

// ValidUserID reports whether id can be a user ID (the operator app's own ID; also a document ID).
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// Store is the pipeline's Firestore state.
type Store struct {
	fs  *firestore.Client
	now func() time.Time
}

// New returns a Store on the client.
func New(fs *firestore.Client) *Store {
	return &Store{fs: fs, now: func() time.Time { return time.Now().UTC() }}
}

// Client is the underlying Firestore client.
func (s *Store) Client() *firestore.Client { return s.fs }

func (s *Store) round(id string) *firestore.DocumentRef { return s.fs.Collection(colRounds).Doc(id) }
func (s *Store) resource(round, name string) *firestore.DocumentRef {
	return s.round(round).Collection(colResources).Doc(name)
}
func (s *Store) object(round, resource string, i int) *firestore.DocumentRef {
	return s.resource(round, resource).Collection(colObjects).Doc(fmt.Sprint(i))
}
func (s *Store) part(round, resource string, obj, part int) *firestore.DocumentRef {
	return s.object(round, resource, obj).Collection(colParts).Doc(fmt.Sprint(part))
}

func notFound(err error) bool { return status.Code(err) == codes.NotFound }

func get[T any](ctx context.Context, tx *firestore.Transaction, ref *firestore.DocumentRef) (*T, error) {
	var snap *firestore.DocumentSnapshot
	var err error
	if tx != nil {
		snap, err = tx.Get(ref)
	} else {
		snap, err = ref.Get(ctx)
	}
	if notFound(err) {
		return nil, fmt.Errorf("%s: %w", ref.Path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref.ID, err)
	}
	var v T
	if err := snap.DataTo(&v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ref.ID, err)
	}
	return &v, nil
}

// decodeAll decodes snapshots into values; id, when not nil, receives each document's ID.
func decodeAll[T any](snaps []*firestore.DocumentSnapshot, id func(v *T, docID string)) ([]T, error) {
	out := make([]T, 0, len(snaps))
	for _, snap := range snaps {
		var v T
		if err := snap.DataTo(&v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		if id != nil {
			id(&v, snap.Ref.ID)
		}
		out = append(out, v)
	}
	return out, nil
}

// --- OAuth states -------------------------------------------------------------------------------

// PutOAuthState records a pending consent.
func (s *Store) PutOAuthState(ctx context.Context, st OAuthState) error {
	st.CreatedAt = s.now()
	if _, err := s.fs.Collection(colStates).Doc(st.ID).Create(ctx, st); err != nil {
		return fmt.Errorf("store oauth state: %w", err)
	}
	return nil
}

// ConsumeOAuthState reads and deletes a pending consent in one transaction: a state works once, and
// not after it expires.
func (s *Store) ConsumeOAuthState(ctx context.Context, id string) (*OAuthState, error) {
	ref := s.fs.Collection(colStates).Doc(id)
	var out *OAuthState
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		st, err := get[OAuthState](ctx, tx, ref)
		if errors.Is(err, ErrNotFound) {
			return ErrConsumed
		}
		if err != nil {
			return err
		}
		if err := tx.Delete(ref); err != nil {
			return err
		}
		if s.now().After(st.ExpiresAt) {
			out = nil
			return nil
		}
		st.ID = id
		out = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, ErrConsumed
	}
	return out, nil
}

// --- users and rounds ---------------------------------------------------------------------------

// GetUser reads a user.
func (s *Store) GetUser(ctx context.Context, user string) (*User, error) {
	u, err := get[User](ctx, nil, s.fs.Collection(colUsers).Doc(user))
	if err != nil {
		return nil, err
	}
	u.ID = user
	return u, nil
}

// GetRound reads a round.
func (s *Store) GetRound(ctx context.Context, id string) (*Round, error) {
	r, err := get[Round](ctx, nil, s.round(id))
	if err != nil {
		return nil, err
	}
	r.ID = id
	return r, nil
}

// NewGrant describes a consent that was just granted.
type NewGrant struct {
	User       string
	Access     string
	Granted    []string
	NotGranted []string
	// Since limits round 1 of resources with time filters to activity from then on (zero: everything).
	Since time.Time
}

// StartGrant records a new grant and its first round (or the next round number of a returning user) in
// one transaction. A user whose round has not closed gets ErrRoundRunning.
func (s *Store) StartGrant(ctx context.Context, g NewGrant) (*Round, error) {
	uref := s.fs.Collection(colUsers).Doc(g.User)
	var out *Round
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		now := s.now()
		u, err := get[User](ctx, tx, uref)
		switch {
		case errors.Is(err, ErrNotFound):
			u = &User{CreatedAt: now}
		case err != nil:
			return err
		}
		if u.State == "active" {
			return ErrRoundRunning
		}
		n := u.Rounds + 1
		r := Round{User: g.User, Number: n, Access: g.Access, Resources: g.Granted, State: RoundExporting, CreatedAt: now,
			Since: g.Since, GrantFirst: n}
		rid := RoundID(g.User, n)
		u.Access, u.Resources, u.State, u.CurrentRound, u.Rounds = g.Access, g.Granted, "active", rid, n
		u.GrantStart, u.UpdatedAt = now, now
		if err := tx.Set(uref, u); err != nil {
			return err
		}
		if err := tx.Create(s.round(rid), r); err != nil {
			return err
		}
		for _, name := range g.Granted {
			if err := tx.Create(s.resource(rid, name), Resource{State: ResPending, UpdatedAt: now}); err != nil {
				return err
			}
		}
		for _, name := range g.NotGranted {
			res := Resource{State: ResNotGranted, Reason: "not granted in the consent", UpdatedAt: now}
			if err := tx.Create(s.resource(rid, name), res); err != nil {
				return err
			}
			if err := s.recordEvent(tx, resourceEvent(rid, name, &res, nil)); err != nil {
				return err
			}
		}
		r.ID = rid
		out = &r
		return nil
	})
	if err != nil {
		return nil, err
	}
	logRound(ctx, out, out.ID, "", out.State)
	return out, nil
}

// ScheduleNextRound creates round number prev.Number+1 of a time-based grant (idempotent: an existing
// round of that number is returned as is).
func (s *Store) ScheduleNextRound(ctx context.Context, prev *Round, at time.Time) (*Round, error) {
	rid := RoundID(prev.User, prev.Number+1)
	uref := s.fs.Collection(colUsers).Doc(prev.User)
	var out *Round
	created := false
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		created = false
		now := s.now()
		existing, err := get[Round](ctx, tx, s.round(rid))
		if err == nil {
			existing.ID = rid
			out = existing
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		var granted []string
		for _, name := range prev.Resources {
			res, err := get[Resource](ctx, tx, s.resource(prev.ID, name))
			if err != nil {
				return err
			}
			if res.State != ResNotGranted {
				granted = append(granted, name)
			}
		}
		r := Round{User: prev.User, Number: prev.Number + 1, Access: prev.Access, Resources: granted,
			State: RoundScheduled, NotBefore: at, CreatedAt: now, GrantFirst: prev.GrantFirst, Since: prev.Since}
		if err := tx.Create(s.round(rid), r); err != nil {
			return err
		}
		for _, name := range granted {
			if err := tx.Create(s.resource(rid, name), Resource{State: ResPending, UpdatedAt: now}); err != nil {
				return err
			}
		}
		if err := tx.Update(uref, []firestore.Update{{Path: "currentRound", Value: rid}, {Path: "rounds", Value: prev.Number + 1}, {Path: "updatedAt", Value: now}}); err != nil {
			return err
		}
		r.ID = rid
		out = &r
		created = true
		return nil
	})
	if err == nil && created {
		logRound(ctx, out, rid, "", RoundScheduled)
	}
	return out, err
}

// BeginRound moves a scheduled round to exporting (idempotent).
func (s *Store) BeginRound(ctx context.Context, rid string) error {
	var begun *Round
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		begun = nil
		r, err := get[Round](ctx, tx, s.round(rid))
		if err != nil {
			return err
		}
		if r.State != RoundScheduled {
			return nil
		}
		begun = r
		if err := RoundLifecycle.check(r.State, RoundExporting); err != nil {
			return err
		}
		return tx.Update(s.round(rid), []firestore.Update{{Path: "state", Value: RoundExporting}})
	})
	if err == nil && begun != nil {
		logRound(ctx, begun, rid, RoundScheduled, RoundExporting)
	}
	return err
}

// ListResources returns the resources of a round by name.
func (s *Store) ListResources(ctx context.Context, rid string) ([]Resource, error) {
	snaps, err := s.round(rid).Collection(colResources).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("list resources of %s: %w", rid, err)
	}
	out, err := decodeAll[Resource](snaps, func(v *Resource, id string) { v.Name = id })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetResource reads one resource of a round.
func (s *Store) GetResource(ctx context.Context, rid, name string) (*Resource, error) {
	r, err := get[Resource](ctx, nil, s.resource(rid, name))
	if err != nil {
		return nil, err
	}
	r.Name = name
	return r, nil
}

// PreviousExport is where round r's export of a resource with time filters continues from: the
// ExportTime of the resource's latest done export in an earlier round of the same grant. found is false
// when no earlier round of the grant exported it (round 1, or every earlier round failed): then the
// round starts where round 1 did (r.Since, or the whole history), so a failed round leaves no gap.
func (s *Store) PreviousExport(ctx context.Context, r *Round, name string) (at time.Time, found bool, err error) {
	first := r.GrantFirst
	if first <= 0 {
		first = r.Number - 1 // a round recorded before GrantFirst existed: look at the previous round only
	}
	for n := r.Number - 1; n >= first && n >= 1; n-- {
		res, err := s.GetResource(ctx, RoundID(r.User, n), name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return time.Time{}, false, err
		}
		if res.State == ResDone && !res.ExportTime.IsZero() {
			return res.ExportTime, true, nil
		}
	}
	return time.Time{}, false, nil
}
