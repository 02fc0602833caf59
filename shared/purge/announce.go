package purge

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/setup"
)

// announce tells the operator's app that the user was purged (event user.purged on export-events): it
// deletes the user's other event records (they name deleted archives) and publishes the purge's own. A
// purge reaches this point once (a retry after it finds nothing and answers ErrNothingToPurge), so a
// fresh purge ID per call keys the event; a failed publish stays recorded and goes out with the user's
// next flush (events.Flush).
func announce(ctx context.Context, env *setup.Env, rep Report) error {
	var b [8]byte
	rand.Read(b[:])
	e := events.UserPurged(rep.User, hex.EncodeToString(b[:]), rep.Rounds)
	if _, err := env.Store.DeleteEvents(ctx, rep.User, e.ID); err != nil {
		return err
	}
	return events.Publish(ctx, env, e)
}
