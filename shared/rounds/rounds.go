// Package rounds decides when a round is over: once every resource of the round is terminal, the round is
// marked complete and its reset request is published, once (at-least-once publish, idempotent reset).
// CompleteIfDone also publishes the user's pending events for the operator's app (shared/events).
package rounds

import (
	"context"
	"fmt"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/setup"
)

// CompleteIfDone completes the round if every resource is terminal and makes sure its reset request is published.
// Every step calls it after a resource reaches a terminal state; calling it again is harmless.
func CompleteIfDone(ctx context.Context, env *setup.Env, round string) error {
	r, complete, err := env.Store.CompleteRoundIfDone(ctx, round)
	if err != nil {
		return fmt.Errorf("settle round %s: %w", round, err)
	}
	if complete && !r.ResetPublished {
		if err := env.Publisher.Publish(ctx, env.Config.Topics.Reset, &messages.ResetRequest{V: messages.Version, User: r.User, Round: round}); err != nil {
			return err
		}
		if err := env.Store.MarkResetPublished(ctx, round); err != nil {
			return fmt.Errorf("mark reset published for %s: %w", round, err)
		}
		logging.FromContext(ctx).Info("round complete; reset requested", "round", round)
	}
	// The events the transitions recorded (resource ends, round.completed) go out now, after the reset
	// request, so a failed publish cannot hold the round back.
	return events.Flush(ctx, env, r.User)
}
