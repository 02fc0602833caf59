package store

import (
	"context"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

// Log tags of state changes: the value of "event" on the one log line each change of state writes
// (with from, to and the identifiers of what changed), so a person's journey reads as a sequence of
// these lines. They are log tags, not published events (those are shared/events/outbox's types).
const (
	LogResourceState = "resource.state"
	LogRoundState    = "round.state"
	LogObjectState   = "object.state"
)

func logResource(ctx context.Context, rid, name string, from ResourceState, r *Resource) {
	logging.FromContext(ctx).Info("resource "+string(from)+" -> "+string(r.State), "event", LogResourceState, "from", from, "to", r.State,
		"round", rid, "resource", name, "job", r.Job, "retries", r.Retries, "reason", r.Reason)
}

func logRound(ctx context.Context, r *Round, rid string, from, to RoundState) {
	args := []any{"event", LogRoundState, "from", from, "to", to, "round", rid}
	if r != nil {
		args = append(args, "user", r.User, "access", r.Access, "outcome", r.Outcome)
	}
	logging.FromContext(ctx).Info("round "+string(from)+" -> "+string(to), args...)
}

func logObject(ctx context.Context, rid, name string, obj int, from, to ObjectState, attempt int) {
	logging.FromContext(ctx).Info("object "+string(from)+" -> "+string(to), "event", LogObjectState, "from", from, "to", to,
		"round", rid, "resource", name, "object", obj, "attempt", attempt)
}
