// Package operator is what the operator's CLI (cmd/portctl) does: look at users and rounds, retry or
// cancel a resource, force a reset, purge a person, and replay messages that never reached their step
// (dead letters, or the initiate request a callback could not publish). It works through the same
// clients as the functions (setup.Env), so it runs against Google Cloud and against the local stack alike.
package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/purge"
	"github.com/portability-pipeline/pipeline/shared/rounds"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// Operator acts on the pipeline's state.
type Operator struct {
	Env *setup.Env
	// PubSub pulls dead letters and republishes them as they were.
	PubSub *pubsub.Client
	// Now is the clock for ages (default time.Now).
	Now func() time.Time
	// PullWait bounds each pull of a dead-letter subscription (default 5 s).
	PullWait time.Duration
}

// Needs is what the operator uses of a setup.Env.
var Needs = setup.Needs{Tokens: true, Publisher: true, Storage: true}

// New builds an Operator from the process environment (the functions' variables: PROJECT_ID, BUCKET,
// TOKEN_KEY_URI or TOKEN_KEYSET, OAUTH_CLIENT_ID/SECRET..., and the emulator hosts locally).
func New(ctx context.Context) (*Operator, error) {
	env, err := setup.New(ctx, Needs)
	if err != nil {
		return nil, err
	}
	ps, err := pubsub.NewClient(ctx, env.Config.ProjectID)
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	return &Operator{Env: env, PubSub: ps}, nil
}

func (o *Operator) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// context starts a trace for one operator action and tags its log lines.
func (o *Operator) context(ctx context.Context, action string) context.Context {
	ctx = logging.WithLogger(ctx, o.Env.Log.With("step", "operator", "action", action))
	return o.Env.Tracer.Mark(ctx, "operator "+action)
}

// --- users ----------------------------------------------------------------------------------------

// UserRow is one line of Users: a user's current round.
type UserRow struct {
	User       string           `json:"user"`
	Access     string           `json:"access"`
	State      string           `json:"state"`
	Rounds     int              `json:"rounds"`
	Round      string           `json:"round"`
	RoundState store.RoundState `json:"roundState"`
	Resources  string           `json:"resources"` // terminal/total in the current round
	Age        time.Duration    `json:"ageSeconds"`
	Updated    time.Time        `json:"updatedAt"`
}

// Users lists every user with its current round.
func (o *Operator) Users(ctx context.Context) ([]UserRow, error) {
	users, err := o.Env.Store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UserRow, 0, len(users))
	for _, u := range users {
		row := UserRow{User: u.ID, Access: u.Access, State: u.State, Rounds: u.Rounds, Round: u.CurrentRound,
			Age: o.now().Sub(u.CreatedAt).Round(time.Second), Updated: u.UpdatedAt}
		if r, err := o.Env.Store.GetRound(ctx, u.CurrentRound); err == nil {
			row.RoundState = r.State
			row.Age = o.now().Sub(r.CreatedAt).Round(time.Second)
			if list, err := o.Env.Store.ListResources(ctx, r.ID); err == nil {
				done := 0
				for _, res := range list {
					if store.Terminal(res.State) {
						done++
					}
				}
				row.Resources = fmt.Sprintf("%d/%d", done, len(list))
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// --- show -------------------------------------------------------------------------------------------

// UserDetail is everything stored of one user (never the token or signed URLs).
type UserDetail struct {
	User     store.User    `json:"user"`
	HasToken bool          `json:"hasToken"`
	Rounds   []RoundDetail `json:"rounds"`
}

// RoundDetail is one round with its resources.
type RoundDetail struct {
	store.Round
	ID        string           `json:"id"`
	Resources []ResourceDetail `json:"resources"`
}

// ResourceDetail is one resource with its archive files.
type ResourceDetail struct {
	store.Resource
	Name    string         `json:"name"`
	Objects []ObjectDetail `json:"objects,omitempty"`
}

// ObjectDetail is one archive file and the progress of its parts.
type ObjectDetail struct {
	Index     int               `json:"index"`
	Name      string            `json:"name"`
	Source    string            `json:"source"`
	Size      int64             `json:"size"`
	State     store.ObjectState `json:"state"`
	Attempt   int               `json:"attempt"`
	Parts     int               `json:"parts"`
	PartsDone int               `json:"partsDone"`
	Reason    string            `json:"reason,omitempty"`
}

// ErrNoUser means the user has no record.
var ErrNoUser = errors.New("no such user")

// Show returns everything stored of user, newest round first.
func (o *Operator) Show(ctx context.Context, user string) (*UserDetail, error) {
	u, err := o.Env.Store.GetUser(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoUser, user)
	}
	if err != nil {
		return nil, err
	}
	d := &UserDetail{User: *u}
	if _, err := o.Env.Tokens.Load(ctx, user); !errors.Is(err, tokens.ErrNoToken) {
		d.HasToken = true
	}
	rs, err := o.Env.Store.UserRounds(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		rd := RoundDetail{Round: r, ID: r.ID}
		list, err := o.Env.Store.ListResources(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		for _, res := range list {
			resd := ResourceDetail{Resource: res, Name: res.Name}
			objs, err := o.Env.Store.ListObjects(ctx, r.ID, res.Name)
			if err != nil {
				return nil, err
			}
			for _, ob := range objs {
				od := ObjectDetail{Index: ob.Index, Name: ob.Name, Source: ob.SourceName, Size: ob.Size, State: ob.State,
					Attempt: ob.Attempt, Parts: ob.Parts, Reason: ob.Reason}
				if ob.State == store.ObjVerified {
					od.PartsDone = ob.Parts
				} else if parts, err := o.Env.Store.DoneParts(ctx, r.ID, res.Name, ob.Index, ob.Attempt); err == nil {
					od.PartsDone = len(parts)
				}
				resd.Objects = append(resd.Objects, od)
			}
			rd.Resources = append(rd.Resources, resd)
		}
		d.Rounds = append(d.Rounds, rd)
	}
	return d, nil
}

// currentRound returns the user's current round.
func (o *Operator) currentRound(ctx context.Context, user string) (*store.Round, error) {
	u, err := o.Env.Store.GetUser(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoUser, user)
	}
	if err != nil {
		return nil, err
	}
	if u.CurrentRound == "" {
		return nil, fmt.Errorf("%s has no round", user)
	}
	return o.Env.Store.GetRound(ctx, u.CurrentRound)
}

// --- retry, cancel, reset ---------------------------------------------------------------------------

// Retry re-initiates a resource that ended failed in the user's current round: the resource goes back to
// pending (the round back to exporting if it had completed) and an initiate request for the round is
// published. A round whose grant was reset already cannot be retried: the person must consent again.
func (o *Operator) Retry(ctx context.Context, user, resource string) (string, error) {
	ctx = logging.With(o.context(ctx, "retry"), "user", user, "resource", resource)
	r, err := o.currentRound(ctx, user)
	if err != nil {
		return "", err
	}
	ctx = logging.With(ctx, "round", r.ID)
	if err := o.Env.Store.ReopenResource(ctx, r.ID, resource, "Initiated again by the operator."); err != nil {
		return "", err
	}
	if err := o.Env.Publisher.Publish(ctx, o.Env.Config.Topics.Initiate, &messages.InitiateRequest{
		V: messages.Version, User: user, Round: r.ID}); err != nil {
		return "", fmt.Errorf("resource %s is pending again, but the initiate request was not published (run replay-initiate %s %s): %w", resource, user, r.ID, err)
	}
	return r.ID, nil
}

// Cancel cancels the running job of a resource of the user's current round at Google and records the
// resource cancelled. The API cancels only in-progress jobs (of time-based grants, per its guide); its
// refusal is returned and nothing is recorded.
func (o *Operator) Cancel(ctx context.Context, user, resource string) (string, error) {
	ctx = logging.With(o.context(ctx, "cancel"), "user", user, "resource", resource)
	r, err := o.currentRound(ctx, user)
	if err != nil {
		return "", err
	}
	res, err := o.Env.Store.GetResource(ctx, r.ID, resource)
	if err != nil {
		return "", err
	}
	running := []store.ResourceState{store.ResExporting, store.ResRetrying}
	if res.Job == "" || !slices.Contains(running, res.State) {
		return "", fmt.Errorf("%w: resource %s is %s: no running job to cancel", store.ErrNotAllowed, resource, res.State)
	}
	ctx = logging.With(ctx, "round", r.ID, "job", res.Job)
	api, err := o.Env.API(ctx, user)
	if err != nil {
		return "", err
	}
	if err := api.Cancel(ctx, res.Job); err != nil {
		return "", fmt.Errorf("Google did not cancel job %s: %w", res.Job, err) //nolint:staticcheck // ST1005: "Google" is a name
	}
	if _, err := o.Env.Store.EndJob(ctx, r.ID, resource, res.Job, store.ResCancelled, "The export was cancelled by the operator."); err != nil {
		return "", err
	}
	return res.Job, rounds.CompleteIfDone(ctx, o.Env, r.ID)
}

// ResetOutcome says what a forced reset did.
type ResetOutcome struct {
	User  string `json:"user"`
	Round string `json:"round"`
	Grant string `json:"grant"` // as purge.Report.Grant
	Error string `json:"error,omitempty"`
}

// Reset forces the end of the user's grant: authorization:reset with the stored token, the token
// destroyed, the current round closed (and with it the grant). Work still in flight finds no token and
// ends its resources failed.
func (o *Operator) Reset(ctx context.Context, user string) (ResetOutcome, error) {
	ctx = logging.With(o.context(ctx, "reset"), "user", user)
	out := ResetOutcome{User: user, Grant: purge.GrantNoToken}
	r, err := o.currentRound(ctx, user)
	if err != nil {
		return out, err
	}
	out.Round = r.ID
	api, err := o.Env.API(ctx, user)
	switch {
	case errors.Is(err, tokens.ErrNoToken):
	case err != nil:
		return out, err
	default:
		err := api.Reset(ctx)
		switch kind := portability.KindOf(err); {
		case err == nil:
			out.Grant = purge.GrantReset
		case kind == portability.KindUnauthorized:
			out.Grant = purge.GrantAlreadyRevoked
		case kind == portability.KindRetry:
			return out, fmt.Errorf("authorization reset: %w", err)
		default:
			out.Grant, out.Error = purge.GrantRefused, err.Error()
		}
	}
	if err := o.Env.Tokens.Delete(ctx, user); err != nil {
		return out, err
	}
	if err := o.Env.Store.EndGrant(ctx, r.ID, "reset by the operator", outbox.EndingOneTime, "The operator reset the grant."); err != nil {
		return out, err
	}
	logging.FromContext(ctx).Info("grant reset by the operator", "round", r.ID, "grant", out.Grant)
	return out, nil
}

// Purge deletes everything stored of user (shared/purge).
func (o *Operator) Purge(ctx context.Context, user string) (purge.Report, error) {
	return purge.Purge(o.context(ctx, "purge"), o.Env, user)
}

// ReplayInitiate publishes the initiate request of a round again: what the callback logs with
// "action": "replay-initiate" when its publish failed. The initiate step is idempotent.
func (o *Operator) ReplayInitiate(ctx context.Context, user, round string) error {
	ctx = logging.With(o.context(ctx, "replay-initiate"), "user", user, "round", round)
	r, err := o.Env.Store.GetRound(ctx, round)
	if err != nil {
		return err
	}
	if r.User != user {
		return fmt.Errorf("round %s belongs to another user", round)
	}
	if r.State != store.RoundExporting && r.State != store.RoundScheduled {
		return fmt.Errorf("%w: round %s is %s: nothing to initiate", store.ErrNotAllowed, round, r.State)
	}
	return o.Env.Publisher.Publish(ctx, o.Env.Config.Topics.Initiate, &messages.InitiateRequest{V: messages.Version, User: user, Round: round})
}
