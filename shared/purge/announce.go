package purge

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/setup"
)

// announce publishes user.purged (shared/events) and then deletes the user's event records too, the
// purge's own included once Pub/Sub has it, so nothing of the user stays in Firestore. A purge that failed
// before the event was published left its record unpublished: the next run reuses it (one event per
// purge) and publishes it.
func announce(ctx context.Context, env *setup.Env, user string, rounds int) error {
	e := outbox.PurgeRecord(user, newPurgeID(), rounds)
	if pending, err := env.Store.PendingEvents(ctx, user); err == nil {
		for _, p := range pending {
			if p.Type == outbox.UserPurged {
				e.ID = p.ID
			}
		}
	}
	if _, err := env.Store.DeleteEvents(ctx, user, e.ID); err != nil {
		return err
	}
	if err := events.Publish(ctx, env, e); err != nil {
		return err
	}
	_, err := env.Store.DeleteEvents(ctx, user)
	return err
}

func newPurgeID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
