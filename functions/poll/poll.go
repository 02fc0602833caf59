// Package poll watches archive jobs. PollStart (Pub/Sub) schedules the first state check of a new job;
// PollTask (Cloud Tasks, OIDC-checked) makes one check and acts on it: schedule the next check on a
// ladder of growing delays, retry a FAILED job (at most 3 times), record a CANCELLED one, or plan the
// transfer of a COMPLETE one and publish one message per part.
package poll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/rounds"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/signedurl"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tasks"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// Needs is what the steps use beyond the configuration and the logger: the store, the user's token (state
// calls; the encrypter seals the signed URLs), the publisher (transfer parts) and Cloud Tasks (checks).
func Needs() setup.Needs { return setup.Needs{Store: true, Tokens: true, Publisher: true, Tasks: true} }

// Steps are the poll steps, built from what they use.
type Steps struct {
	env *setup.Env
	// probes makes the size probes of the signed URLs.
	probes *http.Client
}

// New builds the steps; it refuses an Env without what Needs names.
func New(env *setup.Env) (*Steps, error) {
	if err := env.Require("poll", Needs()); err != nil {
		return nil, err
	}
	return &Steps{env: env, probes: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// Start schedules the first state check of a job (entry point PollStart).
func (s *Steps) Start(ctx context.Context, m *messages.JobStarted) error { return start(ctx, s.env, m) }

// Check makes one state check of a job and acts on its state (entry point PollTask).
func (s *Steps) Check(ctx context.Context, m *messages.PollCheck) error {
	return check(ctx, s.env, s.probes, m)
}

func start(ctx context.Context, env *setup.Env, m *messages.JobStarted) error {
	// The check's task is named after the job: one scheduled for the wrong user would also take the name
	// of the right one's.
	if _, err := rounds.Owned(ctx, env, m.Round, m.User); err != nil {
		return err
	}
	return schedule(ctx, env, messages.PollCheck{V: messages.Version, User: m.User, Round: m.Round, Resource: m.Resource, Job: m.Job})
}

// schedule enqueues check number c.Check of a job after its ladder delay. The task name derives from
// job and check number, so duplicates of the same step collapse into one task.
func schedule(ctx context.Context, env *setup.Env, c messages.PollCheck) error {
	at := time.Now().Add(env.Config.Tasks.PollDelay(c.Check))
	if err := env.Tasks.Enqueue(ctx, tasks.Task{
		Key:  c.TaskKey(),
		URL:  env.Config.Tasks.PollURL,
		Body: c,
		At:   at,
	}); err != nil {
		return err
	}
	// The reconciler re-creates the check of a resource long past this time: its poll chain was lost
	// (a task deleted, or one that used up its attempts; Cloud Tasks has no dead-letter queue).
	return env.Store.NotePollDue(ctx, c.Round, c.Resource, c.Job, at)
}

func check(ctx context.Context, env *setup.Env, probes *http.Client, m *messages.PollCheck) error {
	if _, err := rounds.Owned(ctx, env, m.Round, m.User); err != nil {
		return err
	}
	res, err := env.Store.GetResource(ctx, m.Round, m.Resource)
	if errors.Is(err, store.ErrNotFound) {
		return handler.Drop("resource %s of round %s does not exist", m.Resource, m.Round)
	}
	if err != nil {
		return err
	}
	if res.Job != m.Job || (res.State != store.ResExporting && res.State != store.ResRetrying && res.State != store.ResTransferring) {
		if store.Terminal(res.State) && res.Job == m.Job {
			// An earlier delivery ended the resource, then failed to publish what follows (the round's
			// reset request, its events): Pub/Sub was down, say. rounds.CompleteIfDone again (idempotent; it flushes the
			// events too), or the round would wait for a reset request nobody sends.
			if err := rounds.CompleteIfDone(ctx, env, m.Round); err != nil {
				return err
			}
		} else if store.Terminal(res.State) {
			if err := events.Flush(ctx, env, m.User); err != nil {
				return err
			}
		} else if res.State == store.ResExporting && res.Job != m.Job && slices.Contains(res.Jobs, m.Job) {
			// The job was retried and replaced by res.Job; the delivery that retried it may have failed to
			// schedule the new job's first check. Schedule it again (named after the job: never twice).
			if err := schedule(ctx, env, messages.PollCheck{V: messages.Version, User: m.User, Round: m.Round, Resource: m.Resource, Job: res.Job}); err != nil {
				return err
			}
		}
		return handler.Drop("job %s is not the resource's running job (state %s)", m.Job, res.State)
	}
	api, err := env.API(ctx, m.User)
	if errors.Is(err, tokens.ErrNoToken) {
		return end(ctx, env, m, store.ResFailed, "The consent was withdrawn during the export.")
	}
	if err != nil {
		return err
	}
	st, err := api.State(ctx, m.Job)
	switch kind := portability.KindOf(err); {
	case err == nil:
	case kind == portability.KindRetry:
		return err
	case kind == portability.KindUnauthorized:
		return end(ctx, env, m, store.ResFailed, "Google no longer accepts this consent (withdrawn or expired).")
	case portability.StatusOf(err) == http.StatusNotFound:
		return end(ctx, env, m, store.ResFailed, "Google no longer knows this export (its job is gone).")
	default:
		return end(ctx, env, m, store.ResFailed, "Google could not report the export: "+err.Error())
	}
	switch st.State {
	case portability.StateInProgress:
		next := *m
		next.Check++
		return schedule(ctx, env, next)
	case portability.StateFailed:
		return retry(ctx, env, api, m, res)
	case portability.StateCancelled:
		return end(ctx, env, m, store.ResCancelled, "The export was cancelled.")
	case portability.StateComplete:
		logging.FromContext(ctx).Info("export complete", "urls", len(st.URLs), "exportTime", st.ExportTime)
		err := plan(ctx, env, probes, m, st, false)
		if errors.Is(err, errStaleURL) {
			// A URL of this answer was refused or not found: one fresh state call, as the transfer does.
			if st, err = api.State(ctx, m.Job); err != nil {
				return err
			}
			if st.State != portability.StateComplete {
				return end(ctx, env, m, store.ResFailed, "Google no longer reports the export as complete ("+st.State+").")
			}
			err = plan(ctx, env, probes, m, st, true)
		}
		return err
	default:
		return fmt.Errorf("job %s in unknown state %q", m.Job, st.State)
	}
}

// end moves the resource to a terminal state and settles the round.
func end(ctx context.Context, env *setup.Env, m *messages.PollCheck, state store.ResourceState, reason string) error {
	logging.FromContext(ctx).Info("resource ends", "state", state, "reason", reason)
	if _, err := env.Store.EndJob(ctx, m.Round, m.Resource, m.Job, state, reason); err != nil {
		return err
	}
	return rounds.CompleteIfDone(ctx, env, m.Round)
}

// retry asks the API to run a FAILED job again, at most MaxRetries times per resource.
func retry(ctx context.Context, env *setup.Env, api portability.API, m *messages.PollCheck, res *store.Resource) error {
	max := env.Config.Export.MaxRetries
	if res.Retries >= max {
		return end(ctx, env, m, store.ResFailed, fmt.Sprintf("Google could not produce this export (it failed %d times).", res.Retries+1))
	}
	claim, err := env.Store.ClaimRetry(ctx, m.Round, m.Resource, m.Job, env.Config.Export.InitiateLease)
	if err != nil {
		return err
	}
	if !claim.Won {
		if claim.Resource.State == store.ResRetrying && claim.Resource.Job == m.Job {
			return fmt.Errorf("another delivery holds the retry claim")
		}
		return nil
	}
	newJob, err := api.Retry(ctx, m.Job)
	if err != nil {
		if portability.KindOf(err) == portability.KindRetry {
			_, rerr := env.Store.ReleaseRetry(ctx, m.Round, m.Resource, m.Job)
			return errors.Join(err, rerr)
		}
		return end(ctx, env, m, store.ResFailed, "Google refused to retry the failed export: "+err.Error())
	}
	logging.FromContext(ctx).Info("failed export retried", "newJob", newJob, "retry", res.Retries+1)
	if _, err := env.Store.RecordRetry(ctx, m.Round, m.Resource, m.Job, newJob); err != nil {
		return err
	}
	return schedule(ctx, env, messages.PollCheck{V: messages.Version, User: m.User, Round: m.Round, Resource: m.Resource, Job: newJob})
}

// emptyAnswersAccepted is how many consecutive COMPLETE answers without URLs make an export with no
// files: nothing documents such an answer, so a first one may be a glitch and is asked again.
const emptyAnswersAccepted = 3

// plan checks and probes every URL of a complete job, records the objects and their parts, and publishes
// the parts. A URL the policy refuses, a file larger than MAX_ARCHIVE_FILE_SIZE or a probe answer no retry
// can change fails the file at planning, and so the resource, with a reason; nothing is published then.
// errStaleURL: a URL of the state answer was refused (URLExpired) or not found (Gone) at the probe; the
// first time, Check asks for fresh URLs and plans again.
var errStaleURL = errors.New("a signed URL of the state answer was refused")

func plan(ctx context.Context, env *setup.Env, probes *http.Client, m *messages.PollCheck, st portability.State, again bool) error {
	log := logging.FromContext(ctx)
	if len(st.URLs) == 0 {
		if m.EmptyAnswers+1 < emptyAnswersAccepted {
			log.Warn("export complete without URLs; asking again", "answers", m.EmptyAnswers+1)
			next := *m
			next.Check++
			next.EmptyAnswers++
			return schedule(ctx, env, next)
		}
		log.Info("export complete with no files", "answers", m.EmptyAnswers+1)
		if _, _, err := env.Store.PlanTransfer(ctx, m.Round, m.Resource, m.Job, st.StartTime, st.ExportTime, nil); err != nil {
			return err
		}
		if _, _, err := env.Store.FinishResource(ctx, m.Round, m.Resource); err != nil {
			return err
		}
		return rounds.CompleteIfDone(ctx, env, m.Round)
	}
	policy := env.Config.Export.URLPolicy()
	client := policy.Client(probes)
	now := time.Now().UTC()
	objects := make([]store.Object, len(st.URLs))
	failed := ""
	seen := map[string]bool{}
	for i, u := range st.URLs {
		o, reason, err := planObject(ctx, env, m, policy, client, i, u, now, again)
		if err != nil {
			return err
		}
		if reason == "" && seen[o.URLPath] {
			reason = "Google listed this file twice in one answer."
		}
		seen[o.URLPath] = true
		if reason != "" {
			o.State, o.Reason, o.Parts = store.ObjFailed, reason, 0
			failed = fmt.Sprintf("archive file %d: %s", i, reason)
		}
		objects[i] = o
	}
	if failed != "" {
		// One file cannot be fetched: the resource fails; copying the others would only delay that.
		for i := range objects {
			if objects[i].State == store.ObjCopying {
				objects[i].State, objects[i].Reason, objects[i].Parts = store.ObjFailed, "not copied: "+failed, 0
			}
		}
	}
	_, recorded, err := env.Store.PlanTransfer(ctx, m.Round, m.Resource, m.Job, st.StartTime, st.ExportTime, objects)
	if err != nil {
		return err
	}
	if failed != "" {
		log.Warn("archive refused at planning", "reason", failed)
		if _, _, err := env.Store.FinishResource(ctx, m.Round, m.Resource); err != nil {
			return err
		}
		return rounds.CompleteIfDone(ctx, env, m.Round)
	}
	// Publish every part not yet verified; after a redelivery some go twice, which transfer absorbs.
	for _, o := range recorded {
		if o.State != store.ObjCopying {
			continue
		}
		for p := 0; p < o.Parts; p++ {
			if err := env.Publisher.Publish(ctx, env.Config.Topics.Transfer, &messages.TransferPart{V: messages.Version,
				User: m.User, Round: m.Round, Resource: m.Resource, Job: m.Job, Object: o.Index, Part: p}); err != nil {
				return err
			}
		}
	}
	return nil
}

// planObject checks and probes URL i. A non-empty reason fails the file (plain words, no URL query); an
// error means try the whole check again later.
func planObject(ctx context.Context, env *setup.Env, m *messages.PollCheck, policy *copyengine.URLPolicy, client *http.Client, i int, u string, now time.Time, again bool) (store.Object, string, error) {
	o := store.Object{Index: i, Job: m.Job, State: store.ObjCopying, PartSize: env.Config.Export.PartSize, URLFetched: now, PlannedAt: now}
	if err := policy.Check(u); err != nil {
		return o, "Google returned a download link this pipeline does not accept (" + err.Error() + ").", nil
	}
	path, err := copyengine.ObjectPath(u)
	if err != nil {
		return o, "Google returned a download link without a file path.", nil
	}
	o.URLPath = path
	src, err := copyengine.Probe(ctx, client, u)
	switch class := copyengine.Classify(err); {
	case err == nil:
	case (class == copyengine.Gone || class == copyengine.URLExpired) && !again:
		return o, "", errStaleURL
	case class == copyengine.Gone:
		return o, "The archive is no longer available at Google.", nil
	case class == copyengine.URLExpired:
		// Fresh URLs from a second state call refused too: a later try will not do better.
		return o, "Google's storage refused its freshly issued download links (" + copyengine.Describe(err) + ").", nil
	case copyengine.IsSourceFault(err):
		return o, "Google's storage answered the size probe in a way the transfer cannot use (" + copyengine.Describe(err) + ").", nil
	default:
		return o, "", fmt.Errorf("probe archive file %d: %w", i, err)
	}
	if src.Size > env.Config.Export.MaxFileSize {
		return o, fmt.Sprintf("The archive file is %d bytes, above the configured maximum of %d (MAX_ARCHIVE_FILE_SIZE).", src.Size, env.Config.Export.MaxFileSize), nil
	}
	sealed, err := signedurl.Seal(ctx, env.Crypto, m.Job, i, u)
	if err != nil {
		return o, "", err
	}
	parts := copyengine.Plan(src.Size, copyengine.PlanOptions{PartSize: env.Config.Export.PartSize})
	o.SourceName, o.Size, o.CRC32C, o.HasCRC32C, o.ContentType = src.Name, src.Size, src.CRC32C, src.HasCRC32C, src.ContentType
	o.Parts, o.URL = len(parts), sealed
	return o, "", nil
}
