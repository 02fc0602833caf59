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

// ListResources returns the resources of a round by name.
func (s *Store) ListResources(ctx context.Context, rid string) ([]Resource, error) {
	out, err := queryAll(ctx, s.round(rid).Collection(colResources).Query, resourceName)
	if err != nil {
		return nil, fmt.Errorf("list resources of %s: %w", rid, err)
	}
	return out, nil
}

// GetResource reads one resource of a round.
func (s *Store) GetResource(ctx context.Context, rid, name string) (*Resource, error) {
	return getNamed(ctx, s.resource(rid, name), resourceName)
}

// Claim is the outcome of claiming a resource for an API call that must not be repeated.
type Claim struct {
	// Won is true when this caller may make the call.
	Won      bool
	Resource Resource
}

// ClaimInitiate claims a resource for its initiate call. It is won when the resource is pending, when an
// earlier claim's lease ran out (its holder crashed), or, with fromCooldown, when it waits out a cooldown.
func (s *Store) ClaimInitiate(ctx context.Context, rid, name string, lease time.Duration, fromCooldown bool) (Claim, error) {
	c, from, err := s.claim(ctx, rid, name, ResInitiating, func(r *Resource, now time.Time) bool {
		won := r.State == ResPending || r.State == ResInitiating && now.Sub(r.ClaimedAt) > lease ||
			r.State == ResCooldown && fromCooldown
		if won {
			r.Attempts++
		}
		return won
	})
	if err == nil && c.Won {
		logResource(ctx, rid, name, from, &c.Resource)
	}
	return c, err
}

// claim moves resource name of round rid to the claimed state to, with ClaimedAt now, when wins says
// this caller wins it (wins may count the attempt on r). It returns the claim and the state it found.
func (s *Store) claim(ctx context.Context, rid, name string, to ResourceState, wins func(r *Resource, now time.Time) bool) (Claim, ResourceState, error) {
	ref := s.resource(rid, name)
	var c Claim
	var from ResourceState
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		now := s.now()
		r, err := get[Resource](ctx, tx, ref)
		if err != nil {
			return err
		}
		r.Name = name
		c, from = Claim{Resource: *r}, r.State
		if !wins(r, now) {
			return nil
		}
		r.State, r.ClaimedAt, r.UpdatedAt = to, now, now
		c = Claim{Won: true, Resource: *r}
		return tx.Set(ref, r)
	})
	return c, from, err
}

// Transition sets a resource's state when it is in one of from (and, when job is not empty, runs that
// job). It reports whether it changed anything; apply may adjust other fields. A change of state the
// lifecycle (ResourceLifecycle) does not declare is refused with ErrNotAllowed. Steps use the named
// transitions (RecordJob, Cooldown, EndJob, FailUnfinished...), which say their from-states once.
func (s *Store) Transition(ctx context.Context, rid, name string, from []ResourceState, job string, apply func(r *Resource)) (bool, error) {
	ref := s.resource(rid, name)
	var was ResourceState
	after, changed, err := update(ctx, s.fs, ref, func(tx *firestore.Transaction, r *Resource) (bool, error) {
		if !slices.Contains(from, r.State) || (job != "" && r.Job != job) {
			return false, nil
		}
		was = r.State
		apply(r)
		if err := ResourceLifecycle.check(was, r.State); err != nil {
			return false, err
		}
		r.UpdatedAt = s.now()
		if !Terminal(was) && Terminal(r.State) {
			if err := s.recordEvent(tx, resourceEvent(rid, name, r, nil)); err != nil {
				return true, err
			}
		}
		return true, tx.Set(ref, r)
	})
	if err == nil && changed {
		logResource(ctx, rid, name, was, after)
	}
	return changed, err
}

// RecordJob stores the job an initiate (or an adopted 409) started for a claimed resource, with the range
// asked: startTime (zero: none) and the resource's TimeFilter.
func (s *Store) RecordJob(ctx context.Context, rid, name, job string, startTime time.Time, filter string) (bool, error) {
	now := s.now()
	return s.Transition(ctx, rid, name, []ResourceState{ResInitiating}, "", func(r *Resource) {
		r.State, r.Job, r.Reason = ResExporting, job, ""
		r.StartTime, r.TimeFilter = startTime, filter
		// The first check is due now until the poll step schedules it: a lost JobStarted shows as overdue.
		r.JobStartedAt, r.PollDue = now, now
		if !slices.Contains(r.Jobs, job) {
			r.Jobs = append(r.Jobs, job)
		}
	})
}

// ClaimRetry claims the retry of a FAILED job; retries counts earlier retries of the resource.
func (s *Store) ClaimRetry(ctx context.Context, rid, name, job string, lease time.Duration) (Claim, error) {
	c, _, err := s.claim(ctx, rid, name, ResRetrying, func(r *Resource, now time.Time) bool {
		return r.Job == job && (r.State == ResExporting || r.State == ResRetrying && now.Sub(r.ClaimedAt) > lease)
	})
	if err == nil && c.Won {
		logResource(ctx, rid, name, ResExporting, &c.Resource)
	}
	return c, err
}

// RecordRetry replaces a failed job by the job its retry started.
func (s *Store) RecordRetry(ctx context.Context, rid, name, oldJob, newJob string) (bool, error) {
	return s.Transition(ctx, rid, name, []ResourceState{ResRetrying}, oldJob, func(r *Resource) {
		r.State, r.Job = ResExporting, newJob
		r.JobStartedAt, r.PollDue = s.now(), s.now()
		r.Jobs = append(r.Jobs, newJob)
		r.Retries++
	})
}

// PlanTransfer moves a resource whose job completed to transferring and records its objects, once. When
// the plan exists already (a redelivered poll), it returns the recorded objects with planned false.
// startTime is the job's echoed start (zero: none); when the state carries one it replaces the start
// recorded at initiate (the API's word on what the archive covers wins).
func (s *Store) PlanTransfer(ctx context.Context, rid, name, job string, startTime, exportTime time.Time, objects []Object) (planned bool, out []Object, err error) {
	ref := s.resource(rid, name)
	var after *Resource
	err = s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		planned, out = false, nil
		r, err := get[Resource](ctx, tx, ref)
		if err != nil {
			return err
		}
		if r.Job != job {
			return nil
		}
		switch r.State {
		case ResTransferring:
			snaps, err := tx.Documents(ref.Collection(colObjects)).GetAll()
			if err != nil {
				return err
			}
			if out, err = decodeAll[Object](snaps, nil); err != nil {
				return err
			}
			slices.SortFunc(out, byIndex)
			return nil
		case ResExporting:
		default:
			return nil
		}
		var total int64
		for _, o := range objects {
			total += o.Size
			if err := tx.Set(ref.Collection(colObjects).Doc(fmt.Sprint(o.Index)), o); err != nil {
				return err
			}
		}
		r.State, r.ExportTime, r.Objects, r.Bytes, r.UpdatedAt = ResTransferring, exportTime, len(objects), total, s.now()
		if !startTime.IsZero() {
			r.StartTime, r.TimeFilter = startTime, TimeFilterApplied
		}
		planned, out = true, objects
		if err := tx.Set(ref, r); err != nil {
			return err
		}
		after = r
		return nil
	})
	if err == nil && planned {
		logResource(ctx, rid, name, ResExporting, after)
	}
	return planned, out, err
}

// FinishResource ends a transferring resource once all its objects are verified (done) or one failed
// (failed). It reports the state it left the resource in and whether this call made the change.
func (s *Store) FinishResource(ctx context.Context, rid, name string) (state ResourceState, changed bool, err error) {
	ref := s.resource(rid, name)
	var after *Resource
	err = s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		changed = false
		r, err := get[Resource](ctx, tx, ref)
		if err != nil {
			return err
		}
		state = r.State
		if r.State != ResTransferring {
			return nil
		}
		snaps, err := tx.Documents(ref.Collection(colObjects)).GetAll()
		if err != nil {
			return err
		}
		verified := 0
		var objects []Object
		for _, snap := range snaps {
			var o Object
			if err := snap.DataTo(&o); err != nil {
				return err
			}
			switch o.State {
			case ObjVerified:
				verified++
				objects = append(objects, o)
			case ObjFailed:
				r.State, r.Reason = ResFailed, fmt.Sprintf("archive file %d could not be copied intact: %s", o.Index, o.Reason)
			}
		}
		if r.State == ResTransferring && verified == len(snaps) {
			r.State = ResDone
		}
		if r.State == ResTransferring {
			return nil
		}
		state, changed, r.UpdatedAt = r.State, true, s.now()
		slices.SortFunc(objects, byIndex)
		var eo []outbox.Object
		if r.State == ResDone {
			for _, o := range objects {
				eo = append(eo, outbox.Object{Name: o.Name, Size: o.Size, CRC32C: o.CRC32C, HasCRC32C: o.HasCRC32C})
			}
		}
		if err := s.recordEvent(tx, resourceEvent(rid, name, r, eo)); err != nil {
			return err
		}
		after = r
		return tx.Set(ref, r)
	})
	if err == nil && changed {
		logResource(ctx, rid, name, ResTransferring, after)
	}
	return state, changed, err
}

// --- named transitions of a resource (the from-states are the lifecycle's, asserted here) ---------------

// ReleaseInitiate gives a claimed initiate back after a transient API error (initiating -> pending), so
// the redelivery claims it again.
func (s *Store) ReleaseInitiate(ctx context.Context, rid, name string) (bool, error) {
	return s.Transition(ctx, rid, name, []ResourceState{ResInitiating}, "", func(r *Resource) { r.State = ResPending })
}

// EndInitiate ends a claimed resource the API refused to export (initiating -> exhausted, not_granted or
// failed), with a reason.
func (s *Store) EndInitiate(ctx context.Context, rid, name string, state ResourceState, reason string) (bool, error) {
	if !Terminal(state) {
		return false, fmt.Errorf("%w: %s is not a terminal state", ErrNotAllowed, state)
	}
	return s.Transition(ctx, rid, name, []ResourceState{ResInitiating}, "", func(r *Resource) { r.State, r.Reason = state, reason })
}

// Cooldown parks a claimed resource until the API allows its next export (initiating -> cooldown).
func (s *Store) Cooldown(ctx context.Context, rid, name string, notBefore time.Time, reason string) (bool, error) {
	return s.Transition(ctx, rid, name, []ResourceState{ResInitiating}, "", func(r *Resource) {
		r.State, r.NotBefore, r.Reason = ResCooldown, notBefore, reason
	})
}

// ReleaseRetry gives a claimed retry of job back after a transient API error (retrying -> exporting).
func (s *Store) ReleaseRetry(ctx context.Context, rid, name, job string) (bool, error) {
	return s.Transition(ctx, rid, name, []ResourceState{ResRetrying}, job, func(r *Resource) { r.State = ResExporting })
}

// EndJob ends the resource running job (exporting or retrying -> failed or cancelled), with a reason.
func (s *Store) EndJob(ctx context.Context, rid, name, job string, state ResourceState, reason string) (bool, error) {
	if state != ResFailed && state != ResCancelled {
		return false, fmt.Errorf("%w: a job ends failed or cancelled, not %s", ErrNotAllowed, state)
	}
	return s.Transition(ctx, rid, name, []ResourceState{ResExporting, ResRetrying}, job, func(r *Resource) { r.State, r.Reason = state, reason })
}

// FailUnfinished fails a resource that is not terminal yet, whatever it is doing (the consent is gone, or
// the round outlived MAX_ROUND_AGE), with a reason. A terminal resource is left as it is.
func (s *Store) FailUnfinished(ctx context.Context, rid, name, reason string) (bool, error) {
	return s.Transition(ctx, rid, name, openResourceStates, "", func(r *Resource) { r.State, r.Reason = ResFailed, reason })
}

// openResourceStates are the resource states ResourceLifecycle does not mark terminal.
var openResourceStates = func() []ResourceState {
	var open []ResourceState
	for _, st := range ResourceLifecycle.States {
		if !st.Terminal {
			open = append(open, st.Name)
		}
	}
	return open
}()

// ReopenResource puts a failed resource of an exporting or complete (not yet closed) round back to
// pending, and the round back to exporting with its reset request unpublished, in one transaction: the
// operator's retry, followed by an initiate request. A closed round (its grant reset) cannot be reopened.
func (s *Store) ReopenResource(ctx context.Context, rid, name, reason string) error {
	var from RoundState
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

// NotePollDue records when the next state check of job is due. It changes nothing when the resource
// runs another job or is gone (a purge): the reconciler reads the field only of exporting resources.
func (s *Store) NotePollDue(ctx context.Context, rid, name, job string, at time.Time) error {
	ref := s.resource(rid, name)
	_, _, err := update(ctx, s.fs, ref, func(tx *firestore.Transaction, r *Resource) (bool, error) {
		if r.Job != job || r.State != ResExporting || !at.After(r.PollDue) {
			return false, nil
		}
		return true, tx.Update(ref, []firestore.Update{{Path: FieldPollDue, Value: at}})
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
