package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/rounds"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tasks"
)

// pass is one run's state: what it found, what it already repaired (a resource found by two rules is
// repaired once), and the rounds it read.
type pass struct {
	r        *Reconciler
	ctx      context.Context
	now      time.Time
	deadline time.Time
	seen     map[string]bool
	rounds   map[string]*roundInfo
	flushed  map[string]bool
	rep      Report
}

type roundInfo struct {
	round *store.Round
	err   error
}

func (p *pass) page() store.Page {
	c := p.r.env.Config.Reconcile
	return store.Page{Size: c.PageSize, Max: c.MaxPages}
}

// budget stops a scan once the run's time is spent.
func (p *pass) budget() error {
	if time.Now().After(p.deadline) {
		return store.ErrStop
	}
	if err := p.ctx.Err(); err != nil {
		return err
	}
	return nil
}

func (p *pass) all() error {
	env := p.r.env
	cfg := env.Config
	if open, err := env.Store.OldestOpenRound(p.ctx); err != nil {
		return err
	} else if open != nil {
		p.rep.OldestOpenRound, p.rep.OldestOpenRoundAge = open.ID, p.now.Sub(open.CreatedAt).Round(time.Second)
	}
	for _, rule := range roundRules {
		cutoff := p.now.Add(-rule.limit(cfg))
		more, err := env.Store.StaleRounds(p.ctx, rule.state, rule.field, cutoff, p.page(), func(r store.Round) error {
			if err := p.budget(); err != nil {
				return err
			}
			return p.round(r, cutoff)
		})
		if err != nil {
			return err
		}
		p.rep.Truncated = p.rep.Truncated || more
		if time.Now().After(p.deadline) {
			return errBudget
		}
	}
	for _, rule := range resourceRules {
		cutoff := p.now.Add(-rule.limit(cfg))
		more, err := env.Store.StaleResources(p.ctx, rule.state, rule.field, cutoff, p.page(), func(round string, res store.Resource) error {
			if err := p.budget(); err != nil {
				return err
			}
			return p.resource(rule, round, res, cutoff)
		})
		if err != nil {
			return err
		}
		p.rep.Truncated = p.rep.Truncated || more
		if time.Now().After(p.deadline) {
			return errBudget
		}
	}
	more, err := env.Store.StaleEvents(p.ctx, p.now.Add(-cfg.Reconcile.Grace), p.page(), func(e outbox.Record) error {
		if err := p.budget(); err != nil {
			return err
		}
		return p.event(e)
	})
	if err != nil {
		return err
	}
	p.rep.Truncated = p.rep.Truncated || more
	return nil
}

// getRound reads a round once per run.
func (p *pass) getRound(id string) (*store.Round, error) {
	if ri, ok := p.rounds[id]; ok {
		return ri.round, ri.err
	}
	r, err := p.r.env.Store.GetRound(p.ctx, id)
	p.rounds[id] = &roundInfo{round: r, err: err}
	return r, err
}

// do records a repair and, unless dry, runs its action and logs it. A failed action is counted, not
// returned: the rest of the run goes on, and the next run finds the work again.
func (p *pass) do(rp Repair, action func(ctx context.Context) error) error {
	// One repair per resource (or round) and run: a resource two rules find is repaired by the first.
	key := rp.Round + "\x00" + rp.Resource
	if p.seen[key] {
		return nil
	}
	p.seen[key] = true
	rp.Overdue = rp.Overdue.Round(time.Second)
	if p.r.dry {
		p.rep.Repairs = append(p.rep.Repairs, rp)
		return nil
	}
	ctx := logging.With(p.ctx, "user", rp.User, "round", rp.Round, "resource", rp.Resource, "job", rp.Job, "repair", rp.Kind)
	log := logging.FromContext(ctx)
	if err := action(ctx); err != nil {
		rp.Error = err.Error()
		p.rep.Failed++
		log.Warn("reconcile.repair failed", "kind", rp.Kind, "state", rp.State, "action", rp.Action, "error", err.Error())
		p.rep.Repairs = append(p.rep.Repairs, rp)
		return nil
	}
	log.Info("reconcile.repair", "kind", rp.Kind, "user", rp.User, "round", rp.Round, "resource", rp.Resource, "job", rp.Job,
		"state", rp.State, "overdueSeconds", rp.Overdue.Seconds(), "action", rp.Action)
	p.rep.Repairs = append(p.rep.Repairs, rp)
	return nil
}

// --- rounds ------------------------------------------------------------------------------------------

func (p *pass) round(r store.Round, cutoff time.Time) error {
	env := p.r.env
	cfg := env.Config
	switch r.State {
	case store.RoundScheduled:
		return p.do(Repair{Kind: KindInitiate, User: r.User, Round: r.ID, State: string(r.State), Overdue: cutoff.Sub(r.NotBefore),
			Action: "republish the initiate request of the scheduled round"}, func(ctx context.Context) error {
			return env.Publisher.Publish(ctx, cfg.Topics.Initiate, &messages.InitiateRequest{V: messages.Version, User: r.User, Round: r.ID})
		})
	case store.RoundExporting:
		list, err := env.Store.ListResources(p.ctx, r.ID)
		if err != nil {
			return err
		}
		open := 0
		for _, res := range list {
			if !store.Terminal(res.State) {
				open++
			}
		}
		if open == 0 {
			return p.do(Repair{Kind: KindSettle, User: r.User, Round: r.ID, State: string(r.State), Overdue: cutoff.Sub(r.CreatedAt),
				Action: "settle the round: every resource is terminal"}, func(ctx context.Context) error {
				return rounds.CompleteIfDone(ctx, env, r.ID)
			})
		}
		if age := p.now.Sub(r.CreatedAt); age > cfg.Reconcile.MaxRoundAge {
			return p.do(Repair{Kind: KindRoundAge, User: r.User, Round: r.ID, State: string(r.State), Overdue: age - cfg.Reconcile.MaxRoundAge,
				Action: fmt.Sprintf("fail the %d unfinished resources and settle the round", open)}, func(ctx context.Context) error {
				return p.failRound(ctx, r, list)
			})
		}
		return nil
	case store.RoundComplete:
		if !r.ResetPublished {
			return p.do(Repair{Kind: KindSettle, User: r.User, Round: r.ID, State: string(r.State), Overdue: cutoff.Sub(r.CompletedAt),
				Action: "settle the complete round: its reset request was never published"}, func(ctx context.Context) error {
				return rounds.CompleteIfDone(ctx, env, r.ID)
			})
		}
		return p.do(Repair{Kind: KindReset, User: r.User, Round: r.ID, State: string(r.State), Overdue: cutoff.Sub(r.CompletedAt),
			Action: "republish the reset request"}, func(ctx context.Context) error {
			return env.Publisher.Publish(ctx, cfg.Topics.Reset, &messages.ResetRequest{V: messages.Version, User: r.User, Round: r.ID})
		})
	case store.RoundClosed:
		if p.r.dry {
			p.rep.Expired = append(p.rep.Expired, r.ID)
			return nil
		}
		n, err := env.Store.DeleteClosedRound(p.ctx, r.ID)
		if err != nil {
			p.rep.Failed++
			logging.FromContext(p.ctx).Warn("reconcile.expire failed", "round", r.ID, "user", r.User, "error", err.Error())
			return nil
		}
		p.rep.Expired = append(p.rep.Expired, r.ID)
		// Not a repair: retention is routine, and the repairs metric alerts on anything above zero.
		logging.FromContext(p.ctx).Info("reconcile.expire", "round", r.ID, "user", r.User, "closedAt", r.ClosedAt, "documents", n)
	}
	return nil
}

// failRound ends a round that outlived MAX_ROUND_AGE: its unfinished resources fail with the reason.
func (p *pass) failRound(ctx context.Context, r store.Round, list []store.Resource) error {
	env := p.r.env
	reason := fmt.Sprintf("The export did not finish within %s; it was given up.", env.Config.Reconcile.MaxRoundAge)
	var errs []error
	for _, res := range list {
		if store.Terminal(res.State) {
			continue
		}
		if res.Job != "" && (res.State == store.ResExporting || res.State == store.ResRetrying) {
			cancelJob(ctx, env, r.User, res.Job)
		}
		if _, err := env.Store.FailUnfinished(ctx, r.ID, res.Name, reason); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return rounds.CompleteIfDone(ctx, env, r.ID)
}

// cancelJob asks Google to cancel a job and reports whether it did. The API cancels in-progress jobs
// (its guide documents it for time-based grants); a refusal is logged and the resource fails anyway.
func cancelJob(ctx context.Context, env *setup.Env, user, job string) bool {
	log := logging.FromContext(ctx)
	api, err := env.API(ctx, user)
	if err != nil {
		log.Info("job not cancelled: the user's token is gone", "job", job, "error", err.Error())
		return false
	}
	if err := api.Cancel(ctx, job); err != nil {
		log.Warn("Google did not cancel the job", "job", job, "error", err.Error())
		return false
	}
	log.Info("job cancelled", "job", job)
	return true
}

// --- resources ---------------------------------------------------------------------------------------

func (p *pass) resource(rule resourceRule, rid string, res store.Resource, cutoff time.Time) error {
	r, err := p.getRound(rid)
	if errors.Is(err, store.ErrNotFound) {
		return nil // purged between the query and now
	}
	if err != nil {
		return err
	}
	// Resources of a round not yet begun wait for the round; those of an ended round are not ours to drive.
	if r.State != store.RoundExporting {
		return nil
	}
	env := p.r.env
	cfg := env.Config
	since := map[string]time.Time{store.FieldUpdatedAt: res.UpdatedAt, store.FieldClaimedAt: res.ClaimedAt,
		store.FieldNotBefore: res.NotBefore, store.FieldPollDue: res.PollDue, store.FieldJobStartedAt: res.JobStartedAt}[rule.field]
	rp := Repair{Kind: rule.kind, User: r.User, Round: rid, Resource: res.Name, Job: res.Job, State: string(res.State), Overdue: cutoff.Sub(since)}
	switch rule.kind {
	case KindInitiate:
		m := &messages.InitiateRequest{V: messages.Version, User: r.User, Round: rid}
		rp.Action = "republish the round's initiate request"
		if res.State == store.ResCooldown {
			m.Resource = res.Name // only this resource, and it may leave its cooldown
			rp.Action = "republish the initiate request of the resource leaving its cooldown"
		}
		rp.Job = ""
		return p.do(rp, func(ctx context.Context) error { return env.Publisher.Publish(ctx, cfg.Topics.Initiate, m) })
	case KindPoll:
		// The poll step names a check's task after job and check number, and Cloud Tasks refuses a
		// name used in the last hour (or longer): the repair's check number is the minute it is made,
		// so it is a new name, and two overlapping runs in that minute create one task.
		check := int(p.now.Unix() / 60)
		rp.Action = "re-create the poll task"
		return p.do(rp, func(ctx context.Context) error {
			c := messages.PollCheck{V: messages.Version, User: r.User, Round: rid, Resource: res.Name, Job: res.Job, Check: check}
			return env.Tasks.Enqueue(ctx, tasks.Task{Key: c.TaskKey(), URL: cfg.Tasks.PollURL, Body: c, At: time.Now()})
		})
	case KindJobAge:
		if res.JobStartedAt.IsZero() {
			return nil // recorded before job start times were: the lost-poll rule still watches it
		}
		rp.Overdue = p.now.Sub(res.JobStartedAt) - cfg.Reconcile.MaxJobAge
		rp.Action = "cancel the job and fail the resource"
		return p.do(rp, func(ctx context.Context) error { return p.failOldJob(ctx, r, res) })
	case KindTransfer:
		return p.transfer(rp, r, res, cutoff)
	}
	return nil
}

// failOldJob cancels a job past MAX_JOB_AGE (where the API allows) and fails its resource with a reason.
func (p *pass) failOldJob(ctx context.Context, r *store.Round, res store.Resource) error {
	env := p.r.env
	age := env.Config.Reconcile.MaxJobAge
	reason := fmt.Sprintf("Google did not finish the export within %s; it was cancelled.", age)
	if !cancelJob(ctx, env, r.User, res.Job) {
		reason = fmt.Sprintf("Google did not finish the export within %s; it was given up (Google did not cancel it).", age)
	}
	if _, err := env.Store.EndJob(ctx, r.ID, res.Name, res.Job, store.ResFailed, reason); err != nil {
		return err
	}
	return rounds.CompleteIfDone(ctx, env, r.ID)
}

// transfer re-drives a transferring resource whose parts stopped: every part not recorded done in its
// object's current attempt is published again (the transfer step skips a part done meanwhile). An
// object with all its parts done, or a resource with no object left copying, gets one part again: the
// delivery composes, verifies and finishes what is left.
func (p *pass) transfer(rp Repair, r *store.Round, res store.Resource, cutoff time.Time) error {
	env := p.r.env
	objs, err := env.Store.ListObjects(p.ctx, r.ID, res.Name)
	if err != nil {
		return err
	}
	latest := res.UpdatedAt
	var parts []messages.TransferPart
	for _, o := range objs {
		if o.VerifiedAt.After(latest) {
			latest = o.VerifiedAt
		}
		if o.URLFetched.After(latest) {
			latest = o.URLFetched
		}
		if o.State != store.ObjCopying {
			continue
		}
		done, err := env.Store.DoneParts(p.ctx, r.ID, res.Name, o.Index, o.Attempt)
		if err != nil {
			return err
		}
		have := map[int]bool{}
		for _, d := range done {
			have[d.Index] = true
			if d.DoneAt.After(latest) {
				latest = d.DoneAt
			}
		}
		missing := 0
		for i := 0; i < o.Parts; i++ {
			if !have[i] {
				parts = append(parts, part(r, res, o.Index, i))
				missing++
			}
		}
		if missing == 0 {
			parts = append(parts, part(r, res, o.Index, 0))
		}
	}
	if latest.After(cutoff) {
		return nil // still moving: a part finished within the grace
	}
	if len(parts) == 0 {
		idx := 0
		if len(objs) > 0 {
			idx = objs[0].Index
		}
		parts = append(parts, part(r, res, idx, 0))
	}
	rp.Overdue = cutoff.Sub(latest)
	rp.Action = fmt.Sprintf("republish %d parts", len(parts))
	return p.do(rp, func(ctx context.Context) error {
		for i := range parts {
			if err := env.Publisher.Publish(ctx, env.Config.Topics.Transfer, &parts[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func part(r *store.Round, res store.Resource, obj, i int) messages.TransferPart {
	return messages.TransferPart{V: messages.Version, User: r.User, Round: r.ID, Resource: res.Name, Job: res.Job, Object: obj, Part: i}
}

// --- events ------------------------------------------------------------------------------------------

func (p *pass) event(e outbox.Record) error {
	env := p.r.env
	overdue := p.now.Add(-env.Config.Reconcile.Grace).Sub(e.OccurredAt)
	if e.Held {
		// The manifest of a done resource was never written: one part of it again writes it and releases
		// the event (functions/transfer).
		rp := Repair{Kind: KindEvents, User: e.User, Round: e.Round, Resource: e.Resource, Job: e.Job, State: "held", Overdue: overdue,
			Action: "republish a part so the manifest is written and the held event released"}
		objs, err := env.Store.ListObjects(p.ctx, e.Round, e.Resource)
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			return nil // the resource is gone (purge or retention); nothing to release
		}
		m := messages.TransferPart{V: messages.Version, User: e.User, Round: e.Round, Resource: e.Resource, Job: e.Job, Object: objs[0].Index}
		return p.do(rp, func(ctx context.Context) error { return env.Publisher.Publish(ctx, env.Config.Topics.Transfer, &m) })
	}
	if p.flushed == nil {
		p.flushed = map[string]bool{}
	}
	if p.flushed[e.User] {
		return nil
	}
	p.flushed[e.User] = true
	rp := Repair{Kind: KindEvents, User: e.User, Round: e.Round, State: "unpublished", Overdue: overdue, Action: "publish the user's pending events"}
	return p.do(rp, func(ctx context.Context) error { return events.Flush(ctx, env, e.User) })
}
