package rounds

import (
	"context"
	"errors"

	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Owned returns the round a message names once it is sure the round belongs to the message's user. Every
// step calls it before acting: the steps act with the message's user (their token, their prefix in the
// bucket), so a crossed or forged message naming another user's round would otherwise export, file or reset
// that round's data in the wrong account. A missing round (purged) and another user's round are dropped
// with the reason logged, before anything is written.
func Owned(ctx context.Context, env *setup.Env, round, user string) (*store.Round, error) {
	r, err := env.Store.GetRound(ctx, round)
	if errors.Is(err, store.ErrNotFound) {
		return nil, handler.Drop("round %s does not exist (purged?)", round)
	}
	if err != nil {
		return nil, err
	}
	if r.User != user {
		return nil, handler.Drop("round %s belongs to another user, not %s", round, user)
	}
	return r, nil
}
