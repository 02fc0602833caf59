// Package purge deletes everything the pipeline holds of one person: for a deletion request of the
// operator, and for the person's own "stop and delete my data" action on the status page.
//
// Purge revokes the grant at Google (authorization:reset with the stored token, when there is one),
// destroys the token, cancels the person's running time-based jobs where the API allows it (best effort),
// deletes every archive object (exports/<user>/... and tmp/<user>/...) and every Firestore record
// (users/{user}, tokens/{user}, the rounds with their resources, objects and parts, pending consents,
// the user's event records), and publishes the user.purged event (shared/events).
//
// Messages and tasks still in flight become harmless: every step drops a message whose round, resource
// or object is gone, no step recreates a record it did not find (transactions read first; a refreshed
// token is only stored over an existing one), and a transfer that finds its object gone after writing
// deletes what it wrote.
//
// Purge is idempotent; it answers ErrNothingToPurge when nothing at all is stored, so a caller can tell
// the person politely that there was nothing to delete. Call it from any process with an Env holding
// Store, Tokens, API, Storage, Config and Publisher (an events.EventPublisher, for user.purged):
//
//	rep, err := purge.Purge(ctx, env, user)
//	if errors.Is(err, purge.ErrNothingToPurge) { ... }
package purge

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// ErrNothingToPurge means no record, token or archive of the user exists (never signed in, or purged).
var ErrNothingToPurge = errors.New("nothing is stored for this user")

// Grant outcomes in Report.Grant.
const (
	GrantReset          = "reset"           // authorization:reset succeeded
	GrantAlreadyRevoked = "already revoked" // Google answered 401: revoked or expired before
	GrantNoToken        = "no token"        // nothing stored to reset with (reset earlier)
	GrantRefused        = "refused"         // Google refused for good; see Report.GrantError
)

// Report says what a purge did.
type Report struct {
	User string `json:"user"`
	// Grant is one of the Grant* outcomes.
	Grant      string `json:"grant"`
	GrantError string `json:"grantError,omitempty"`
	// Cancelled lists the jobs cancelled at Google; NotCancelled the running jobs the API refused to cancel.
	Cancelled    []string `json:"cancelled,omitempty"`
	NotCancelled []string `json:"notCancelled,omitempty"`
	// Documents counts the Firestore documents deleted (the token included), Objects the bucket objects.
	Documents int `json:"documents"`
	Objects   int `json:"objects"`
	Rounds    int `json:"rounds"`
}

// Purge deletes everything stored of user (see the package documentation). A returned error other than
// ErrNothingToPurge means "run it again": nothing is deleted before the grant is reset, so a transient
// failure of Google's reset leaves the token in place for the next attempt.
func Purge(ctx context.Context, env *setup.Env, user string) (Report, error) {
	rep := Report{User: user}
	if !store.ValidUserID(user) {
		return rep, fmt.Errorf("purge: %q is not a user ID", user)
	}
	ctx = logging.With(ctx, "user", user)
	log := logging.FromContext(ctx)

	recs, err := env.Store.FindUserRecords(ctx, user)
	if err != nil {
		return rep, err
	}
	hasToken, err := tokenExists(ctx, env, user)
	if err != nil {
		return rep, err
	}
	prefixes := []string{copyengine.UserPrefix(env.Config.ObjectPrefix, user), copyengine.TempUserPrefix(user)}
	hasObjects := false
	for _, p := range prefixes {
		if n, err := eachObject(ctx, env, p, 1, nil); err != nil {
			return rep, err
		} else if n > 0 {
			hasObjects = true
		}
	}
	if recs.Empty() && !hasToken && !hasObjects {
		return rep, ErrNothingToPurge
	}
	rep.Rounds = len(recs.Rounds)

	// Google first, while the token still works: running jobs, then the grant.
	rep.Grant = GrantNoToken
	if hasToken {
		api, err := env.API(ctx, user)
		switch {
		case errors.Is(err, tokens.ErrNoToken):
		case err != nil:
			return rep, fmt.Errorf("purge %s: open token: %w", user, err)
		default:
			cancelJobs(ctx, env, api, recs.Rounds, &rep)
			err := api.Reset(ctx)
			switch kind := portability.KindOf(err); {
			case err == nil:
				rep.Grant = GrantReset
			case kind == portability.KindUnauthorized:
				rep.Grant = GrantAlreadyRevoked
			case kind == portability.KindRetry:
				return rep, fmt.Errorf("purge %s: authorization reset: %w", user, err)
			default:
				rep.Grant, rep.GrantError = GrantRefused, err.Error()
				log.Error("authorization reset refused; purging anyway", "error", err.Error())
			}
		}
		if err := env.Tokens.Delete(ctx, user); err != nil {
			return rep, err
		}
		rep.Documents++
	}

	// Records next (the user document first, which stops further rounds), then the archives: a transfer
	// that wrote after the listing below finds its record gone and deletes what it wrote.
	n, err := env.Store.DeleteUser(ctx, user)
	rep.Documents += n
	if err != nil {
		return rep, err
	}
	for _, p := range prefixes {
		n, err := eachObject(ctx, env, p, 0, func(o *storage.ObjectHandle) error { return o.Delete(ctx) })
		rep.Objects += n
		if err != nil {
			return rep, fmt.Errorf("delete archives under %s: %w", p, err)
		}
	}
	log.Info("user purged", "event", "user.purged", "grant", rep.Grant, "cancelled", len(rep.Cancelled),
		"documents", rep.Documents, "objects", rep.Objects, "rounds", rep.Rounds)
	if err := announce(ctx, env, user, rep.Rounds); err != nil {
		return rep, fmt.Errorf("purge %s: data deleted, user.purged not published (run the purge again): %w", user, err)
	}
	return rep, nil
}

func tokenExists(ctx context.Context, env *setup.Env, user string) (bool, error) {
	_, err := env.Tokens.Load(ctx, user)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, tokens.ErrNoToken):
		return false, nil
	default:
		// Stored but unreadable (key rotated away...): it exists, and goes with the rest.
		return true, nil
	}
}

// cancelJobs cancels the running jobs of the user's time-based rounds (the API cancels nothing else).
func cancelJobs(ctx context.Context, env *setup.Env, api portability.API, rounds []string, rep *Report) {
	log := logging.FromContext(ctx)
	for _, rid := range rounds {
		r, err := env.Store.GetRound(ctx, rid)
		if err != nil || r.Access != store.AccessTimeBased {
			continue
		}
		list, err := env.Store.ListResources(ctx, rid)
		if err != nil {
			log.Warn("list resources to cancel their jobs", "round", rid, "error", err.Error())
			continue
		}
		for _, res := range list {
			if res.Job == "" || (res.State != store.ResExporting && res.State != store.ResRetrying) || slices.Contains(rep.Cancelled, res.Job) {
				continue
			}
			if err := api.Cancel(ctx, res.Job); err != nil {
				log.Warn("running job not cancelled", "round", rid, "resource", res.Name, "job", res.Job, "error", err.Error())
				rep.NotCancelled = append(rep.NotCancelled, res.Job)
				continue
			}
			rep.Cancelled = append(rep.Cancelled, res.Job)
		}
	}
}

// eachObject calls fn on every object under prefix (up to limit objects when limit > 0) and counts them.
func eachObject(ctx context.Context, env *setup.Env, prefix string, limit int, fn func(*storage.ObjectHandle) error) (int, error) {
	b := env.Storage.Bucket(env.Config.Bucket)
	it := b.Objects(ctx, &storage.Query{Prefix: prefix, Projection: storage.ProjectionNoACL})
	n := 0
	for limit <= 0 || n < limit {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return n, err
		}
		if fn != nil {
			if err := fn(b.Object(a.Name)); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
				return n, err
			}
		}
		n++
	}
	return n, nil
}
