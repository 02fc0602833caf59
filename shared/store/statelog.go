package store

import (
	"context"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

// State-change events: the one log line each change of state writes (event, from, to and the
// identifiers of what changed), so a person's journey reads as a sequence of these lines.
const (
	EventResourceState = "resource.state"
	EventRoundState    = "round.state"
	EventObjectState   = "object.state"
)

func logResource(ctx context.Context, rid, name, from string, r *Resource) {
	logging.FromContext(ctx).Info("resource "+from+" -> "+r.State, "event", EventResourceState, "from", from, "to", r.State,
		"round", rid, "resource", name, "job", r.Job, "retries", r.Retries, "reason", r.Reason)
}

func logRound(ctx context.Context, r *Round, rid, from, to string) {
	args := []any{"event", EventRoundState, "from", from, "to", to, "round", rid}
	if r != nil {
		args = append(args, "user", r.User, "access", r.Access, "outcome", r.Outcome)
	}
	logging.FromContext(ctx).Info("round "+from+" -> "+to, args...)
}

func logObject(ctx context.Context, rid, name string, obj int, from, to string, attempt int) {
	logging.FromContext(ctx).Info("object "+from+" -> "+to, "event", EventObjectState, "from", from, "to", to,
		"round", rid, "resource", name, "object", obj, "attempt", attempt)
}
