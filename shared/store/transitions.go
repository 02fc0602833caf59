package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
)

// Claim is the outcome of claiming a resource for an API call that must not be repeated.
type Claim struct {
	// Won is true when this caller may make the call.
	Won      bool
	Resource Resource
}

// ClaimInitiate claims a resource for its initiate call. It is won when the resource is pending, when an
// earlier claim's lease ran out (its holder crashed), or, with fromCooldown, when it waits out a cooldown.
func (s *Store) ClaimInitiate(ctx context.Context, rid, name string, lease time.Duration, fromCooldown bool) (Claim, error) {
	ref := s.resource(rid, name)
	var c Claim
	var from string
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		now := s.now()
		r, err := get[Resource](ctx, tx, ref)
		if err != nil {
			return err
		}
		r.Name = name
		c, from = Claim{Resource: *r}, r.State
		switch {
		case r.State == ResPending,
			r.State == ResInitiating && now.Sub(r.ClaimedAt) > lease,
			r.State == ResCooldown && fromCooldown:
		default:
			return nil
		}
		r.State, r.ClaimedAt, r.UpdatedAt = ResInitiating, now, now
		r.Attempts++
		c = Claim{Won: true, Resource: *r}
		return tx.Set(ref, r)
	})
	if err == nil && c.Won {
		logResource(ctx, rid, name, from, &c.Resource)
	}
	return c, err
}

// Transition sets a resource's state when it is in one of from (and, when job is not empty, runs that
// job). It reports whether it changed anything; apply may adjust other fields. A change of state the
// lifecycle (ResourceLifecycle) does not declare is refused with ErrNotAllowed. Steps use the named
// transitions (RecordJob, Cooldown, EndJob, FailUnfinished...), which say their from-states once.
func (s *Store) Transition(ctx context.Context, rid, name string, from []string, job string, apply func(r *Resource)) (bool, error) {
	ref := s.resource(rid, name)
	changed := false
	var was string
	var after *Resource
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		changed = false
		r, err := get[Resource](ctx, tx, ref)
		if err != nil {
			return err
		}
		if !slices.Contains(from, r.State) || (job != "" && r.Job != job) {
			return nil
		}
		was, after = r.State, r
		apply(r)
		if err := ResourceLifecycle.check(was, r.State); err != nil {
			return err
		}
		r.UpdatedAt = s.now()
		changed = true
		if !Terminal(was) && Terminal(r.State) {
			if err := s.recordEvent(tx, resourceEvent(rid, name, r, nil)); err != nil {
				return err
			}
		}
		return tx.Set(ref, r)
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
	return s.Transition(ctx, rid, name, []string{ResInitiating}, "", func(r *Resource) {
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
	ref := s.resource(rid, name)
	var c Claim
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		now := s.now()
		r, err := get[Resource](ctx, tx, ref)
		if err != nil {
			return err
		}
		r.Name = name
		c = Claim{Resource: *r}
		if r.Job != job || !(r.State == ResExporting || r.State == ResRetrying && now.Sub(r.ClaimedAt) > lease) {
			return nil
		}
		r.State, r.ClaimedAt, r.UpdatedAt = ResRetrying, now, now
		c = Claim{Won: true, Resource: *r}
		return tx.Set(ref, r)
	})
	if err == nil && c.Won {
		logResource(ctx, rid, name, ResExporting, &c.Resource)
	}
	return c, err
}

// RecordRetry replaces a failed job by the job its retry started.
func (s *Store) RecordRetry(ctx context.Context, rid, name, oldJob, newJob string) (bool, error) {
	return s.Transition(ctx, rid, name, []string{ResRetrying}, oldJob, func(r *Resource) {
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
			for _, snap := range snaps {
				var o Object
				if err := snap.DataTo(&o); err != nil {
					return err
				}
				out = append(out, o)
			}
			slices.SortFunc(out, func(a, b Object) int { return a.Index - b.Index })
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

// GetObject reads one archive object of a resource.
func (s *Store) GetObject(ctx context.Context, rid, name string, i int) (*Object, error) {
	return get[Object](ctx, nil, s.object(rid, name, i))
}

// ListObjects reads every archive object of a resource, by index.
func (s *Store) ListObjects(ctx context.Context, rid, name string) ([]Object, error) {
	snaps, err := s.resource(rid, name).Collection(colObjects).Documents(ctx).GetAll()
	if err != nil {
		return nil, err
	}
	out, err := decodeAll[Object](snaps, nil)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Object) int { return a.Index - b.Index })
	return out, nil
}

// UpdateURLs stores freshly signed (sealed) URLs of a job's objects, by object index.
func (s *Store) UpdateURLs(ctx context.Context, rid, name string, sealed map[int][]byte) error {
	now := s.now()
	bw := s.fs.BulkWriter(ctx)
	for i, u := range sealed {
		if _, err := bw.Update(s.object(rid, name, i), []firestore.Update{{Path: "url", Value: u}, {Path: "urlFetched", Value: now}}); err != nil {
			return err
		}
	}
	bw.End()
	return nil
}

// PartDone records a verified part copy (idempotent). It never recreates a purged object: when the
// object's record is gone it returns ErrNotFound and writes nothing.
func (s *Store) PartDone(ctx context.Context, rid, name string, obj int, p Part) error {
	p.DoneAt = s.now()
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if _, err := get[Object](ctx, tx, s.object(rid, name, obj)); err != nil {
			return err
		}
		return tx.Set(s.part(rid, name, obj, p.Index), p)
	})
	if err != nil {
		return fmt.Errorf("record part %d of object %d: %w", p.Index, obj, err)
	}
	return nil
}

// DoneParts returns the parts of an object recorded done in the given attempt, by index.
func (s *Store) DoneParts(ctx context.Context, rid, name string, obj, attempt int) ([]Part, error) {
	snaps, err := s.object(rid, name, obj).Collection(colParts).Where("attempt", "==", attempt).Documents(ctx).GetAll()
	if err != nil {
		return nil, err
	}
	out, err := decodeAll[Part](snaps, nil)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Part) int { return a.Index - b.Index })
	return out, nil
}

// GetPart reads one part record.
func (s *Store) GetPart(ctx context.Context, rid, name string, obj, part int) (*Part, error) {
	return get[Part](ctx, nil, s.part(rid, name, obj, part))
}

// VerifyObject marks an object verified under its final name, once per attempt.
func (s *Store) VerifyObject(ctx context.Context, rid, name string, obj, attempt int, finalName string) (bool, error) {
	ref := s.object(rid, name, obj)
	changed := false
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		changed = false
		o, err := get[Object](ctx, tx, ref)
		if err != nil {
			return err
		}
		if o.State != ObjCopying || o.Attempt != attempt {
			return nil
		}
		changed = true
		return tx.Update(ref, []firestore.Update{{Path: "state", Value: ObjVerified}, {Path: "name", Value: finalName}, {Path: "verifiedAt", Value: s.now()}})
	})
	if err == nil && changed {
		logObject(ctx, rid, name, obj, ObjCopying, ObjVerified, attempt)
	}
	return changed, err
}

// RecopyObject starts a new copy attempt of an object whose checksum did not match, or gives it up after
// maxAttempts. It acts once per attempt and returns the object afterwards.
func (s *Store) RecopyObject(ctx context.Context, rid, name string, obj, attempt, maxAttempts int, reason string) (*Object, error) {
	ref := s.object(rid, name, obj)
	var out *Object
	acted := false
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		acted = false
		o, err := get[Object](ctx, tx, ref)
		if err != nil {
			return err
		}
		out = o
		if o.State != ObjCopying || o.Attempt != attempt {
			return nil
		}
		acted = true
		if attempt+1 >= maxAttempts {
			o.State, o.Reason = ObjFailed, reason
		} else {
			o.Attempt++
		}
		return tx.Set(ref, o)
	})
	if err == nil && acted {
		logObject(ctx, rid, name, obj, ObjCopying, out.State, out.Attempt)
	}
	return out, err
}

// FinishResource ends a transferring resource once all its objects are verified (done) or one failed
// (failed). It reports the state it left the resource in and whether this call made the change.
func (s *Store) FinishResource(ctx context.Context, rid, name string) (state string, changed bool, err error) {
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
		slices.SortFunc(objects, func(a, b Object) int { return a.Index - b.Index })
		var eo []EventObject
		if r.State == ResDone {
			for _, o := range objects {
				eo = append(eo, EventObject{Name: o.Name, Size: o.Size, CRC32C: o.CRC32C, HasCRC32C: o.HasCRC32C})
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
		var summary []EventResource
		for _, snap := range snaps {
			var res Resource
			if err := snap.DataTo(&res); err != nil {
				return err
			}
			if !Terminal(res.State) {
				return nil
			}
			summary = append(summary, EventResource{Name: snap.Ref.ID, State: res.State, Job: res.Job,
				Objects: res.Objects, Bytes: res.Bytes, Reason: res.Reason,
				StartTime: res.StartTime, ExportTime: res.ExportTime, TimeFilter: res.TimeFilter})
		}
		if err := RoundLifecycle.check(r.State, RoundComplete); err != nil {
			return err
		}
		r.State, r.CompletedAt, complete, settled = RoundComplete, s.now(), true, true
		slices.SortFunc(summary, func(a, b EventResource) int { return strings.Compare(a.Name, b.Name) })
		if err := s.recordEvent(tx, Event{ID: EventID(EventRoundCompleted, rid), Type: EventRoundCompleted, User: r.User,
			Round: rid, RoundNumber: r.Number, Stage: StageRound, Access: r.Access, Resources: summary, OccurredAt: r.CompletedAt}); err != nil {
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
	var out *Round
	won := false
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		won = false
		r, err := get[Round](ctx, tx, ref)
		if err != nil {
			return err
		}
		r.ID = rid
		out = r
		now := s.now()
		if r.State != RoundComplete || now.Sub(r.ResetClaimedAt) < lease {
			return nil
		}
		won = true
		return tx.Update(ref, []firestore.Update{{Path: "resetClaimedAt", Value: now}})
	})
	return out, won, err
}

// ReleaseRoundEnd gives up a claim of ClaimRoundEnd after a failure that a redelivery should retry at once
// (Google's reset answered 5xx), so the next delivery need not wait out the lease.
func (s *Store) ReleaseRoundEnd(ctx context.Context, rid string) error {
	return s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		r, err := get[Round](ctx, tx, s.round(rid))
		if err != nil || r.State != RoundComplete {
			return err
		}
		return tx.Update(s.round(rid), []firestore.Update{{Path: "resetClaimedAt", Value: time.Time{}}})
	})
}

// CloseRound ends a round with an outcome; final also closes the user's grant (as EndGrant does, with the
// ending that follows from the round's access).
func (s *Store) CloseRound(ctx context.Context, rid, outcome string, nextRoundAt time.Time, final bool) error {
	ending := ""
	if final {
		ending = EndingOneTime
		if r, err := s.GetRound(ctx, rid); err == nil && r.Access == AccessTimeBased {
			ending = EndingHorizon
		}
	}
	return s.closeRound(ctx, rid, outcome, nextRoundAt, ending, "")
}

// EndGrant closes the last round of a grant and the grant, and records grant.ended with its ending
// (EndingOneTime, EndingHorizon, EndingNoExport) and a plain-words reason.
func (s *Store) EndGrant(ctx context.Context, rid, outcome, ending, reason string) error {
	return s.closeRound(ctx, rid, outcome, time.Time{}, ending, reason)
}

func (s *Store) closeRound(ctx context.Context, rid, outcome string, nextRoundAt time.Time, ending, reason string) error {
	final := ending != ""
	var closed *Round
	var from string
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		closed = nil
		r, err := get[Round](ctx, tx, s.round(rid))
		if err != nil {
			return err
		}
		if r.State == RoundClosed {
			return nil
		}
		if err := RoundLifecycle.check(r.State, RoundClosed); err != nil {
			return err
		}
		from, closed = r.State, r
		r.Outcome = outcome
		now := s.now()
		ups := []firestore.Update{{Path: "state", Value: RoundClosed}, {Path: "outcome", Value: outcome}, {Path: "closedAt", Value: now}}
		if !nextRoundAt.IsZero() {
			ups = append(ups, firestore.Update{Path: "nextRoundAt", Value: nextRoundAt})
		}
		if final {
			if err := tx.Update(s.fs.Collection(colUsers).Doc(r.User), []firestore.Update{{Path: "state", Value: "closed"}, {Path: "updatedAt", Value: now}}); err != nil && !notFound(err) {
				return err
			}
			if err := s.recordEvent(tx, Event{ID: EventID(EventGrantEnded, rid), Type: EventGrantEnded, User: r.User, Round: rid,
				RoundNumber: r.Number, Stage: StageGrant, Access: r.Access, Ending: ending, Reason: reason, OccurredAt: now}); err != nil {
				return err
			}
		}
		return tx.Update(s.round(rid), ups)
	})
	if err == nil && closed != nil {
		logRound(ctx, closed, rid, from, RoundClosed)
	}
	return err
}

// --- named transitions of a resource (the from-states are the lifecycle's, asserted here) ---------------

// ReleaseInitiate gives a claimed initiate back after a transient API error (initiating -> pending), so
// the redelivery claims it again.
func (s *Store) ReleaseInitiate(ctx context.Context, rid, name string) (bool, error) {
	return s.Transition(ctx, rid, name, []string{ResInitiating}, "", func(r *Resource) { r.State = ResPending })
}

// EndInitiate ends a claimed resource the API refused to export (initiating -> exhausted, not_granted or
// failed), with a reason.
func (s *Store) EndInitiate(ctx context.Context, rid, name, state, reason string) (bool, error) {
	if !Terminal(state) {
		return false, fmt.Errorf("%w: %s is not a terminal state", ErrNotAllowed, state)
	}
	return s.Transition(ctx, rid, name, []string{ResInitiating}, "", func(r *Resource) { r.State, r.Reason = state, reason })
}

// Cooldown parks a claimed resource until the API allows its next export (initiating -> cooldown).
func (s *Store) Cooldown(ctx context.Context, rid, name string, notBefore time.Time, reason string) (bool, error) {
	return s.Transition(ctx, rid, name, []string{ResInitiating}, "", func(r *Resource) {
		r.State, r.NotBefore, r.Reason = ResCooldown, notBefore, reason
	})
}

// ReleaseRetry gives a claimed retry of job back after a transient API error (retrying -> exporting).
func (s *Store) ReleaseRetry(ctx context.Context, rid, name, job string) (bool, error) {
	return s.Transition(ctx, rid, name, []string{ResRetrying}, job, func(r *Resource) { r.State = ResExporting })
}

// EndJob ends the resource running job (exporting or retrying -> failed or cancelled), with a reason.
func (s *Store) EndJob(ctx context.Context, rid, name, job, state, reason string) (bool, error) {
	if state != ResFailed && state != ResCancelled {
		return false, fmt.Errorf("%w: a job ends failed or cancelled, not %s", ErrNotAllowed, state)
	}
	return s.Transition(ctx, rid, name, []string{ResExporting, ResRetrying}, job, func(r *Resource) { r.State, r.Reason = state, reason })
}

// FailUnfinished fails a resource that is not terminal yet, whatever it is doing (the consent is gone, or
// the round outlived MAX_ROUND_AGE), with a reason. A terminal resource is left as it is.
func (s *Store) FailUnfinished(ctx context.Context, rid, name, reason string) (bool, error) {
	return s.Transition(ctx, rid, name, openResourceStates, "", func(r *Resource) { r.State, r.Reason = ResFailed, reason })
}

// openResourceStates are the resource states ResourceLifecycle does not mark terminal.
var openResourceStates = func() []string {
	var open []string
	for _, st := range ResourceLifecycle.States {
		if !st.Terminal {
			open = append(open, st.Name)
		}
	}
	return open
}()
