// Package initiate starts one archive job per granted resource group of a round (Pub/Sub entry Initiate),
// and again later for a resource in a time-based cooldown or a scheduled round (Cloud Tasks entry
// InitiateTask). Each initiate is claimed in a Firestore transaction first, so a redelivered message never
// starts a second export (which would burn a one-time consent).
package initiate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/resources"
	"github.com/portability-pipeline/pipeline/shared/rounds"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tasks"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// Needs is what the step uses beyond the configuration and the logger: the store, the user's token (to
// call the API), the publisher (JobStarted) and Cloud Tasks (a cooldown's delayed initiate).
func Needs() setup.Needs { return setup.Needs{Store: true, Tokens: true, Publisher: true, Tasks: true} }

// Step is the initiate step, built from what it uses.
type Step struct{ env *setup.Env }

// New builds the step; it refuses an Env without what Needs names.
func New(env *setup.Env) (*Step, error) {
	if err := env.Require("initiate", Needs()); err != nil {
		return nil, err
	}
	return &Step{env: env}, nil
}

// Round initiates the pending resources of a round (or only m.Resource, which may wait out a cooldown):
// the step of both entry points, Initiate (Pub/Sub) and InitiateTask (Cloud Tasks).
func (s *Step) Round(ctx context.Context, m *messages.InitiateRequest) error {
	return round(ctx, s.env, m)
}

func round(ctx context.Context, env *setup.Env, m *messages.InitiateRequest) error {
	r, err := rounds.Owned(ctx, env, m.Round, m.User)
	if err != nil {
		return err
	}
	switch r.State {
	case store.RoundScheduled:
		if err := env.Store.BeginRound(ctx, m.Round); err != nil {
			return err
		}
	case store.RoundExporting:
	default:
		return handler.Drop("round %s is %s", m.Round, r.State)
	}
	list, err := env.Store.ListResources(ctx, m.Round)
	if err != nil {
		return err
	}
	var api portability.API
	var retry []error
	for _, res := range list {
		if m.Resource != "" && res.Name != m.Resource {
			continue
		}
		if res.State == store.ResExporting && res.Job != "" {
			// An earlier delivery recorded this job and may have failed to publish it: publish again.
			// The poll step names its tasks after the job, so a second JobStarted schedules nothing twice.
			if err := env.Publisher.Publish(ctx, env.Config.Topics.Jobs, &messages.JobStarted{
				V: messages.Version, User: m.User, Round: m.Round, Resource: res.Name, Job: res.Job}); err != nil {
				retry = append(retry, fmt.Errorf("%s: %w", res.Name, err))
			}
			continue
		}
		if res.State != store.ResPending && res.State != store.ResInitiating && res.State != store.ResCooldown {
			continue
		}
		if api == nil {
			if api, err = env.API(ctx, m.User); err != nil {
				if errors.Is(err, tokens.ErrNoToken) {
					return failAll(ctx, env, m.Round, list, "The consent was withdrawn before the export started.")
				}
				return err
			}
		}
		if err := one(ctx, env, api, r, res.Name, m.Resource != ""); err != nil {
			retry = append(retry, fmt.Errorf("%s: %w", res.Name, err))
		}
	}
	if err := rounds.CompleteIfDone(ctx, env, m.Round); err != nil {
		retry = append(retry, err)
	}
	return errors.Join(retry...)
}

// one claims and initiates one resource. A returned error means "try again later".
func one(ctx context.Context, env *setup.Env, api portability.API, r *store.Round, name string, fromCooldown bool) error {
	ctx = logging.With(ctx, "resource", name)
	log := logging.FromContext(ctx)
	claim, err := env.Store.ClaimInitiate(ctx, r.ID, name, env.Config.Export.InitiateLease, fromCooldown)
	if err != nil {
		return err
	}
	if !claim.Won {
		if claim.Resource.State == store.ResInitiating {
			return fmt.Errorf("another delivery holds the initiate claim")
		}
		return nil // exporting, cooling down or finished already
	}
	rng, err := exportRange(ctx, env, r, name)
	if err != nil {
		return releaseClaim(ctx, env, r.ID, name, err)
	}
	started, err := api.InitiateSince(ctx, []string{name}, rng.start)
	var perr *portability.Error
	errors.As(err, &perr)
	if perr != nil && perr.Kind == portability.KindPermanent && perr.Status == 400 && !rng.start.IsZero() {
		// Google refused the time filter (a group dropped from the documented list, or a start it will
		// not take): export the whole history rather than nothing, and say so in the range.
		log.Warn("time filter refused; exporting the whole history", "startTime", rng.start, "reason", perr.Message)
		rng = timeRange{filter: store.TimeFilterNone}
		started, err = api.InitiateSince(ctx, []string{name}, time.Time{})
		perr = nil
		errors.As(err, &perr)
	}
	// A 429 after an earlier attempt of ours names the job that attempt may have started; but it also names
	// the jobs of the previous round (a time-based round that retried a failed job late is still inside
	// the 24 h window): those are not this round's export and must never be adopted.
	earlier := ""
	if perr != nil && (perr.Kind == portability.KindExhausted || perr.Kind == portability.KindCooldown) &&
		claim.Resource.Attempts > 1 && len(perr.PreviousJobs) > 0 {
		earlier = perr.PreviousJobs[len(perr.PreviousJobs)-1]
		if known, kerr := jobOfEarlierRound(ctx, env, r, name, earlier); kerr != nil {
			return releaseClaim(ctx, env, r.ID, name, kerr)
		} else if known {
			earlier = ""
		}
	}
	switch {
	case err == nil:
		log.Info("export started", "job", started.Job, "accessType", started.AccessType, "startTime", rng.start, "timeFilter", rng.filter)
		return adopt(ctx, env, r, name, started.Job, rng)
	case perr != nil && perr.Kind == portability.KindAlreadyExists && perr.Job != "":
		log.Info("adopting the running export", "job", perr.Job)
		return adopt(ctx, env, r, name, perr.Job, rng)
	case earlier != "":
		// An earlier attempt of ours started the export and crashed before recording it.
		log.Info("adopting the export an earlier attempt started", "job", earlier)
		return adopt(ctx, env, r, name, earlier, rng)
	case perr != nil && perr.Kind == portability.KindExhausted:
		return terminal(ctx, env, r.ID, name, store.ResExhausted,
			"This data was already exported with this consent; it can be exported again after the grant is reset.")
	case perr != nil && perr.Kind == portability.KindCooldown:
		return cooldown(ctx, env, r, name, perr.After)
	case perr != nil && perr.Kind == portability.KindNotGranted:
		return terminal(ctx, env, r.ID, name, store.ResNotGranted, "Access to this data was not granted.")
	case perr != nil && perr.Kind == portability.KindUnauthorized:
		return terminal(ctx, env, r.ID, name, store.ResFailed, "Google no longer accepts this consent (withdrawn or expired).")
	case perr != nil && perr.Kind == portability.KindPermanent:
		return terminal(ctx, env, r.ID, name, store.ResFailed, "Google refused the export: "+perr.Message)
	default:
		// Transient: release the claim so the redelivery tries again. Should this call have started a
		// job after all, the next attempt gets 409 or 429 with the job's ID and adopts it.
		return releaseClaim(ctx, env, r.ID, name, err)
	}
}

// releaseClaim gives a claimed resource back to pending after a transient error, so a redelivery tries again.
func releaseClaim(ctx context.Context, env *setup.Env, round, name string, err error) error {
	if _, rerr := env.Store.ReleaseInitiate(ctx, round, name); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// timeRange is what an initiate asks: start (zero: none) and how it was chosen (store.TimeFilter*).
type timeRange struct {
	start  time.Time
	filter string
}

// exportRange decides the startTime of a resource's export in round r. A group without time filters is
// exported whole every round. Round 1 of a grant starts at the start link's since (or asks for the whole
// history); a later round continues from the previous done export of the grant, minus the configured
// overlap, with no endTime, so consecutive rounds meet without a gap. No earlier export (every round
// failed so far) falls back to round 1's start, again leaving no gap.
func exportRange(ctx context.Context, env *setup.Env, r *store.Round, name string) (timeRange, error) {
	if !resources.SupportsTimeFilter(name) {
		return timeRange{filter: store.TimeFilterUnsupported}, nil
	}
	if r.Number > 1 && r.Number != r.GrantFirst {
		prev, found, err := env.Store.PreviousExport(ctx, r, name)
		if err != nil {
			return timeRange{}, fmt.Errorf("read the previous export: %w", err)
		}
		if found {
			return timeRange{start: prev.Add(-env.Config.Export.RoundOverlap).UTC(), filter: store.TimeFilterApplied}, nil
		}
	}
	if !r.Since.IsZero() {
		return timeRange{start: r.Since.UTC(), filter: store.TimeFilterApplied}, nil
	}
	return timeRange{filter: store.TimeFilterNone}, nil
}

// adopt records the job and hands it to the poll step.
func adopt(ctx context.Context, env *setup.Env, r *store.Round, name, job string, rng timeRange) error {
	if _, err := env.Store.RecordJob(ctx, r.ID, name, job, rng.start, rng.filter); err != nil {
		return err
	}
	return env.Publisher.Publish(ctx, env.Config.Topics.Jobs, &messages.JobStarted{
		V: messages.Version, User: r.User, Round: r.ID, Resource: name, Job: job})
}

func terminal(ctx context.Context, env *setup.Env, round, name string, state store.ResourceState, reason string) error {
	logging.FromContext(ctx).Info("resource ends without export", "state", state, "reason", reason)
	_, err := env.Store.EndInitiate(ctx, round, name, state, reason)
	return err
}

// cooldown schedules the resource's initiate for when the API allows it again.
func cooldown(ctx context.Context, env *setup.Env, r *store.Round, name string, after time.Time) error {
	if after.IsZero() {
		// The documented FAILED_PRECONDITION form carries no time: wait a day from the last export we saw.
		after = lastExport(ctx, env, r, name).Add(24 * time.Hour)
	}
	if _, err := env.Store.Cooldown(ctx, r.ID, name, after, "Google allows one export a day; the next starts at "+after.Format(time.RFC3339)); err != nil {
		return err
	}
	res, err := env.Store.GetResource(ctx, r.ID, name)
	if err != nil {
		return err
	}
	logging.FromContext(ctx).Info("export waits for the daily limit", "notBefore", after)
	return env.Tasks.Enqueue(ctx, tasks.Task{
		Key:  fmt.Sprintf("initiate/%s/%s/%d", r.ID, name, res.Attempts),
		URL:  env.Config.Tasks.InitiateURL,
		Body: messages.InitiateRequest{V: messages.Version, User: r.User, Round: r.ID, Resource: name},
		At:   after,
	})
}

// jobOfEarlierRound reports whether job belongs to the resource in the previous round of the user (the
// only one inside the 24 h window: rounds are a day apart).
func jobOfEarlierRound(ctx context.Context, env *setup.Env, r *store.Round, name, job string) (bool, error) {
	if r.Number < 2 {
		return false, nil
	}
	prev, err := env.Store.GetResource(ctx, store.RoundID(r.User, r.Number-1), name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return prev.Job == job || slices.Contains(prev.Jobs, job), nil
}

// lastExport is the export time of the resource in the previous round, or now when unknown.
func lastExport(ctx context.Context, env *setup.Env, r *store.Round, name string) time.Time {
	if r.Number > 1 {
		if prev, err := env.Store.GetResource(ctx, store.RoundID(r.User, r.Number-1), name); err == nil && !prev.ExportTime.IsZero() {
			return prev.ExportTime
		}
	}
	return time.Now()
}

// failAll ends every unfinished resource of a round whose user has no token any more.
func failAll(ctx context.Context, env *setup.Env, round string, list []store.Resource, reason string) error {
	for _, res := range list {
		if store.Terminal(res.State) {
			continue
		}
		if _, err := env.Store.FailUnfinished(ctx, round, res.Name, reason); err != nil {
			return err
		}
	}
	return rounds.CompleteIfDone(ctx, env, round)
}
