// Package reset ends a round once every download of it has finished (Pub/Sub entry Reset). For one-time
// access it calls authorization:reset (which revokes the user's tokens and lets the data be exported
// again later), destroys the stored token and closes the grant. For time-based access it schedules the
// next round a day after this round's exports, until the configured horizon or the end of the grant,
// and resets then.
package reset

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/rounds"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tasks"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// Needs is what the step uses beyond the configuration and the logger: the store, the user's token
// (authorization:reset, then its deletion), the publisher (events) and Cloud Tasks (the next round).
func Needs() setup.Needs { return setup.Needs{Store: true, Tokens: true, Publisher: true, Tasks: true} }

// Step is the reset step, built from what it uses.
type Step struct{ env *setup.Env }

// New builds the step; it refuses an Env without what Needs names.
func New(env *setup.Env) (*Step, error) {
	if err := env.Require("reset", Needs()); err != nil {
		return nil, err
	}
	return &Step{env: env}, nil
}

// Round ends a complete round.
func (s *Step) Round(ctx context.Context, m *messages.ResetRequest) error {
	return round(ctx, s.env, m)
}

func round(ctx context.Context, env *setup.Env, m *messages.ResetRequest) error {
	// Before anything else, not even the user's events: the claim below would hold another user's round.
	if _, err := rounds.Owned(ctx, env, m.Round, m.User); err != nil {
		return err
	}
	// Events an earlier delivery recorded but could not publish go out first (a redelivery of a closed
	// round is dropped below).
	if err := events.Flush(ctx, env, m.User); err != nil {
		return err
	}
	r, won, err := env.Store.ClaimRoundEnd(ctx, m.Round, env.Config.Export.InitiateLease)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return handler.Drop("round %s does not exist", m.Round)
	case err != nil:
		return err
	case r.State == store.RoundClosed:
		return handler.Drop("round %s is closed already", m.Round)
	case r.State != store.RoundComplete:
		// Never reset while a download is unfinished; rounds.CompleteIfDone publishes again when the round completes.
		return handler.Drop("round %s is %s, not complete", m.Round, r.State)
	case !won:
		return fmt.Errorf("another delivery is ending round %s", m.Round)
	}
	list, err := env.Store.ListResources(ctx, m.Round)
	if err != nil {
		return err
	}
	for _, res := range list {
		if !store.Terminal(res.State) {
			return fmt.Errorf("round %s complete but %s is %s", m.Round, res.Name, res.State)
		}
	}
	ending, reason := outbox.EndingOneTime, "The one-time export is done; the grant was reset."
	if r.Access == store.AccessTimeBased {
		next, ok := nextRound(env, r, list)
		if ok {
			return scheduleNext(ctx, env, r, next)
		}
		ending, reason = outbox.EndingHorizon, fmt.Sprintf("The time-based grant reached its horizon (%d rounds); the grant was reset.", r.Number)
		if !exportedAny(list) {
			ending, reason = outbox.EndingNoExport, "This round exported nothing (the consent was withdrawn or expired); the grant was reset."
		}
	}
	if err := finalReset(ctx, env, r, ending, reason); err != nil {
		return err
	}
	return events.Flush(ctx, env, r.User)
}

func exportedAny(list []store.Resource) bool {
	for _, res := range list {
		if res.State == store.ResDone {
			return true
		}
	}
	return false
}

// nextRound says when the next round of a time-based grant may start, if there should be one: a day after
// this round's latest export, while the horizon allows and the grant still exports something.
func nextRound(env *setup.Env, r *store.Round, list []store.Resource) (time.Time, bool) {
	maxRounds := int(env.Config.Export.TimeBasedHorizon / (24 * time.Hour))
	if r.Number >= maxRounds {
		return time.Time{}, false
	}
	var latest time.Time
	exported := false
	for _, res := range list {
		if res.State == store.ResDone {
			exported = true
		}
		if res.ExportTime.After(latest) {
			latest = res.ExportTime
		}
	}
	if !exported || latest.IsZero() {
		return time.Time{}, false
	}
	return latest.Add(24 * time.Hour), true
}

func scheduleNext(ctx context.Context, env *setup.Env, r *store.Round, at time.Time) error {
	next, err := env.Store.ScheduleNextRound(ctx, r, at)
	if err != nil {
		return err
	}
	if err := env.Tasks.Enqueue(ctx, tasks.Task{
		Key:  "round/" + next.ID,
		URL:  env.Config.Tasks.InitiateURL,
		Body: messages.InitiateRequest{V: messages.Version, User: r.User, Round: next.ID},
		At:   at,
	}); err != nil {
		return err
	}
	logging.FromContext(ctx).Info("next round scheduled", "nextRound", next.ID, "at", at)
	return env.Store.CloseRound(ctx, r.ID, "next round scheduled", at, false)
}

// finalReset calls authorization:reset, destroys the token and closes the grant.
func finalReset(ctx context.Context, env *setup.Env, r *store.Round, ending, reason string) error {
	log := logging.FromContext(ctx)
	api, err := env.API(ctx, r.User)
	switch {
	case errors.Is(err, tokens.ErrNoToken):
		log.Info("no token left: the grant was already reset or purged")
	case err != nil:
		return err
	default:
		err := api.Reset(ctx)
		switch portability.KindOf(err) {
		case portability.KindUnauthorized:
			log.Info("grant already revoked or expired; nothing to reset")
		case portability.KindRetry:
			if err != nil {
				// Let the redelivery try again without waiting out the claim's lease.
				return errors.Join(err, env.Store.ReleaseRoundEnd(ctx, r.ID))
			}
			log.Info("authorization reset")
		default:
			// A refused reset cannot succeed later; the round still ends and the token is destroyed.
			log.Error("authorization reset refused", "error", err.Error())
		}
	}
	if err := env.Tokens.Delete(ctx, r.User); err != nil {
		return err
	}
	return env.Store.EndGrant(ctx, r.ID, "reset", ending, reason)
}
