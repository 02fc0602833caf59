package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
)

// GetUser reads a user.
func (s *Store) GetUser(ctx context.Context, user string) (*User, error) {
	return getNamed(ctx, s.fs.Collection(colUsers).Doc(user), userID)
}

// GetRound reads a round.
func (s *Store) GetRound(ctx context.Context, id string) (*Round, error) {
	return getNamed(ctx, s.round(id), roundID)
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
	r, begun, err := update(ctx, s.fs, s.round(rid), func(tx *firestore.Transaction, r *Round) (bool, error) {
		if r.State != RoundScheduled {
			return false, nil
		}
		if err := RoundLifecycle.check(r.State, RoundExporting); err != nil {
			return true, err
		}
		return true, tx.Update(s.round(rid), []firestore.Update{{Path: "state", Value: RoundExporting}})
	})
	if err == nil && begun {
		logRound(ctx, r, rid, RoundScheduled, RoundExporting)
	}
	return err
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

// CompleteRoundIfDone marks an exporting round complete when every resource is terminal. It returns the round as
// it is afterwards; complete means the round is (now or already) complete.
func (s *Store) CompleteRoundIfDone(ctx context.Context, rid string) (r *Round, complete bool, err error) {
	ref := s.round(rid)
	settled := false
	err = s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		complete, settled = false, false
		r, err = get[Round](ctx, tx, ref)
		if err != nil {
			return err
		}
		r.ID = rid
		if r.State == RoundComplete || r.State == RoundClosed {
			complete = true
			return nil
		}
		if r.State != RoundExporting {
			return nil
		}
		snaps, err := tx.Documents(ref.Collection(colResources)).GetAll()
		if err != nil {
			return err
		}
		var summary []outbox.ResourceLine
		for _, snap := range snaps {
			var res Resource
			if err := snap.DataTo(&res); err != nil {
				return err
			}
			if !Terminal(res.State) {
				return nil
			}
			summary = append(summary, outbox.ResourceLine{Name: snap.Ref.ID, State: string(res.State), Job: res.Job,
				Objects: res.Objects, Bytes: res.Bytes, Reason: res.Reason,
				StartTime: res.StartTime, ExportTime: res.ExportTime, TimeFilter: res.TimeFilter})
		}
		if err := RoundLifecycle.check(r.State, RoundComplete); err != nil {
			return err
		}
		r.State, r.CompletedAt, complete, settled = RoundComplete, s.now(), true, true
		if err := s.recordEvent(tx, outbox.RoundRecord(r.User, rid, r.Number, r.Access, summary, r.CompletedAt)); err != nil {
			return err
		}
		return tx.Set(ref, r)
	})
	if err == nil && settled {
		logRound(ctx, r, rid, RoundExporting, RoundComplete)
	}
	return r, complete, err
}

// MarkResetPublished records that the round's reset request reached Pub/Sub.
func (s *Store) MarkResetPublished(ctx context.Context, rid string) error {
	_, err := s.round(rid).Update(ctx, []firestore.Update{{Path: "resetPublished", Value: true}})
	return err
}

// ClaimRoundEnd claims the end of a complete round (reset or next round) for lease; a closed round or a
// live claim is not won.
func (s *Store) ClaimRoundEnd(ctx context.Context, rid string, lease time.Duration) (*Round, bool, error) {
	ref := s.round(rid)
	return update(ctx, s.fs, ref, func(tx *firestore.Transaction, r *Round) (bool, error) {
		r.ID = rid
		now := s.now()
		if r.State != RoundComplete || now.Sub(r.ResetClaimedAt) < lease {
			return false, nil
		}
		return true, tx.Update(ref, []firestore.Update{{Path: "resetClaimedAt", Value: now}})
	})
}

// ReleaseRoundEnd gives up a claim of ClaimRoundEnd after a failure that a redelivery should retry at once
// (Google's reset answered 5xx), so the next delivery need not wait out the lease.
func (s *Store) ReleaseRoundEnd(ctx context.Context, rid string) error {
	_, _, err := update(ctx, s.fs, s.round(rid), func(tx *firestore.Transaction, r *Round) (bool, error) {
		if r.State != RoundComplete {
			return false, nil
		}
		return true, tx.Update(s.round(rid), []firestore.Update{{Path: "resetClaimedAt", Value: time.Time{}}})
	})
	return err
}

// CloseRound ends a round with an outcome; final also closes the user's grant (as EndGrant does, with the
// ending that follows from the round's access).
func (s *Store) CloseRound(ctx context.Context, rid, outcome string, nextRoundAt time.Time, final bool) error {
	ending := ""
	if final {
		ending = outbox.EndingOneTime
		if r, err := s.GetRound(ctx, rid); err == nil && r.Access == AccessTimeBased {
			ending = outbox.EndingHorizon
		}
	}
	return s.closeRound(ctx, rid, outcome, nextRoundAt, ending, "")
}

// EndGrant closes the last round of a grant and the grant, and records grant.ended with its ending
// (outbox.EndingOneTime, EndingHorizon, EndingNoExport) and a plain-words reason.
func (s *Store) EndGrant(ctx context.Context, rid, outcome, ending, reason string) error {
	return s.closeRound(ctx, rid, outcome, time.Time{}, ending, reason)
}

func (s *Store) closeRound(ctx context.Context, rid, outcome string, nextRoundAt time.Time, ending, reason string) error {
	final := ending != ""
	var from RoundState
	closed, acted, err := update(ctx, s.fs, s.round(rid), func(tx *firestore.Transaction, r *Round) (bool, error) {
		if r.State == RoundClosed {
			return false, nil
		}
		if err := RoundLifecycle.check(r.State, RoundClosed); err != nil {
			return false, err
		}
		from = r.State
		r.Outcome = outcome
		now := s.now()
		ups := []firestore.Update{{Path: "state", Value: RoundClosed}, {Path: "outcome", Value: outcome}, {Path: "closedAt", Value: now}}
		if !nextRoundAt.IsZero() {
			ups = append(ups, firestore.Update{Path: "nextRoundAt", Value: nextRoundAt})
		}
		if final {
			if err := tx.Update(s.fs.Collection(colUsers).Doc(r.User), []firestore.Update{{Path: "state", Value: "closed"}, {Path: "updatedAt", Value: now}}); err != nil && !notFound(err) {
				return true, err
			}
			if err := s.recordEvent(tx, outbox.GrantRecord(r.User, rid, r.Number, r.Access, ending, reason, now)); err != nil {
				return true, err
			}
		}
		return true, tx.Update(s.round(rid), ups)
	})
	if err == nil && acted {
		logRound(ctx, closed, rid, from, RoundClosed)
	}
	return err
}

// ListUsers returns every user (for the operator's overview), by ID.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	out, err := queryAll(ctx, s.fs.Collection(colUsers).OrderBy(firestore.DocumentID, firestore.Asc), userID)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UserRounds returns every round of a user, newest first (one equality filter: no composite index).
func (s *Store) UserRounds(ctx context.Context, user string) ([]Round, error) {
	out, err := queryAll(ctx, s.fs.Collection(colRounds).Where("user", "==", user), roundID)
	if err != nil {
		return nil, fmt.Errorf("list rounds of %s: %w", user, err)
	}
	slices.SortFunc(out, func(a, b Round) int { return b.Number - a.Number })
	return out, nil
}
