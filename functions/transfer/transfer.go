// Package transfer copies archive files from their signed URLs into Cloud Storage (Pub/Sub entry
// Transfer): one message per byte-range part, so many instances share a large archive and each call
// stays well inside the 540 s limit of an event-driven function. The delivery that records the last part
// of a file composes the parts and verifies the file's CRC32C against the source; the one that verifies
// the last file of a resource finishes the resource, and the last resource completes the round.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/iterate"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/rounds"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/signedurl"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// Needs is what the step uses beyond the configuration and the logger: the store, the user's token (fresh
// signed URLs; the encrypter opens the sealed ones), the publisher (recopies, Finish) and the bucket.
func Needs() setup.Needs {
	return setup.Needs{Store: true, Tokens: true, Publisher: true, Storage: true}
}

// Step is the transfer step, built from what it uses.
type Step struct {
	env *setup.Env
	// downloads fetches the parts: no overall timeout (parts are long), but a bounded wait for headers.
	downloads *http.Client
}

// New builds the step; it refuses an Env without what Needs names.
func New(env *setup.Env) (*Step, error) {
	if err := env.Require("transfer", Needs()); err != nil {
		return nil, err
	}
	return &Step{env: env, downloads: &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ResponseHeaderTimeout: time.Minute,
		MaxIdleConnsPerHost:   16,
	}}}, nil
}

// Part copies one part (unless a delivery already did) and then finishes what it can; a Finish message
// finishes a done resource (see finish).
func (s *Step) Part(ctx context.Context, m *messages.TransferPart) error {
	env := s.env
	// The part is filed under the message's user: it must be the round's.
	if _, err := rounds.Owned(ctx, env, m.Round, m.User); err != nil {
		return err
	}
	if m.Finish {
		return finish(ctx, env, m)
	}
	o, err := env.Store.GetObject(ctx, m.Round, m.Resource, m.Object)
	if errors.Is(err, store.ErrNotFound) {
		return handler.Drop("object %d of %s in round %s does not exist", m.Object, m.Resource, m.Round)
	}
	if err != nil {
		return err
	}
	if o.Job != m.Job {
		return handler.Drop("object %d belongs to job %s, not %s", m.Object, o.Job, m.Job)
	}
	err = part(ctx, env, s.downloads, m, o)
	if errors.Is(err, store.ErrNotFound) {
		return purgedMidway(ctx, env, m, o, err)
	}
	return err
}

func part(ctx context.Context, env *setup.Env, downloads *http.Client, m *messages.TransferPart, o *store.Object) error {
	if o.State != store.ObjCopying {
		return finishResource(ctx, env, m)
	}
	if m.Part >= o.Parts {
		return handler.Drop("part %d of an object with %d parts", m.Part, o.Parts)
	}
	if p, err := env.Store.GetPart(ctx, m.Round, m.Resource, m.Object, m.Part); err == nil && p.Attempt == o.Attempt {
		return finishObject(ctx, env, m, o) // copied by an earlier delivery
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := copyPart(ctx, env, downloads, m, o); err != nil {
		return err
	}
	return finishObject(ctx, env, m, o)
}

// purgedMidway handles records that vanished while this delivery worked (the user was purged): once the
// object's record is confirmed gone, it deletes what this or an earlier delivery wrote for the object
// (temporary parts, compose intermediates, the final object), so nothing of a purged user comes back,
// and drops the message.
func purgedMidway(ctx context.Context, env *setup.Env, m *messages.TransferPart, o *store.Object, cause error) error {
	if _, err := env.Store.GetObject(ctx, m.Round, m.Resource, m.Object); !errors.Is(err, store.ErrNotFound) {
		if err == nil {
			return cause // something else is missing: let a redelivery look again
		}
		return err
	}
	final := copyengine.ObjectName(env.Config.ObjectPrefix, m.User, m.Round, m.Resource, m.Job, m.Object, o.SourceName)
	if err := deletePurged(ctx, env, copyengine.TempPrefix(m.User, m.Round, m.Resource, m.Job, m.Object), final); err != nil {
		return fmt.Errorf("purged object: %w", err)
	}
	return handler.Drop("object %d of %s in round %s was purged during the copy; its files are deleted", m.Object, m.Resource, m.Round)
}

// deletePurged deletes the named objects and every object under prefix (already gone counts as deleted).
func deletePurged(ctx context.Context, env *setup.Env, prefix string, names ...string) error {
	b := env.Storage.Bucket(env.Config.Bucket)
	under, err := objectNames(ctx, b, prefix)
	if err != nil {
		return err
	}
	for _, n := range append(names, under...) {
		if err := b.Object(n).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			return fmt.Errorf("delete %s: %w", n, err)
		}
	}
	return nil
}

// objectNames lists the names of the objects under prefix.
func objectNames(ctx context.Context, b *storage.BucketHandle, prefix string) ([]string, error) {
	var names []string
	err := iterate.All(b.Objects(ctx, &storage.Query{Prefix: prefix}).Next, func(a *storage.ObjectAttrs) error {
		names = append(names, a.Name)
		return nil
	})
	return names, err
}

func sink(env *setup.Env) copyengine.Sink {
	return copyengine.NewGCSSink(env.Storage, env.Config.Bucket)
}

func tempPrefix(m *messages.TransferPart, attempt int) string {
	return copyengine.TempPrefix(m.User, m.Round, m.Resource, m.Job, m.Object) + "a" + strconv.Itoa(attempt) + "/"
}

// retention is how long Google keeps an archive after its job completed.
const retention = 14 * 24 * time.Hour

var errPastRetention = errors.New("the archive is past Google's 14-day retention")

// copyPart copies one part. Every "this URL no longer works" answer (400 ExpiredToken or
// MalformedSecurityHeader, 403, a 404 inside the retention) gets one state call for fresh URLs, matched
// to the files by path, and the part resumes. What no retry can change (the fresh URLs refused too, the
// archive past retention, the job gone or changed at Google, a source that answers unusably) fails the
// object with a reason, so the resource, the round and the reset end visibly; only what may heal is
// returned for redelivery.
func copyPart(ctx context.Context, env *setup.Env, downloads *http.Client, m *messages.TransferPart, o *store.Object) error {
	url, err := signedurl.Open(ctx, env.Crypto, m.Job, m.Object, o.URL)
	if err != nil {
		return err
	}
	policy := env.Config.Export.URLPolicy()
	if err := policy.Check(url); err != nil {
		return failObject(ctx, env, m, o, "The stored download link is not one this pipeline accepts ("+err.Error()+").")
	}
	// consentGone: fresh URLs need a state call, which Google refuses once the consent is withdrawn or
	// expired (or we destroyed the token); no retry can fetch the rest of the archive then.
	var consentGone, refreshed atomic.Bool
	var refusal atomic.Pointer[string] // why fresh URLs cannot be had, when no retry can change it
	refuse := func(reason string) { refusal.Store(&reason) }
	refresh := func(ctx context.Context) (string, error) {
		if !o.PlannedAt.IsZero() && time.Since(o.PlannedAt) > retention {
			return "", errPastRetention
		}
		api, err := env.API(ctx, m.User)
		if errors.Is(err, tokens.ErrNoToken) {
			consentGone.Store(true)
		}
		if err != nil {
			return "", err
		}
		objects, err := env.Store.ListObjects(ctx, m.Round, m.Resource)
		if err != nil {
			return "", err
		}
		paths := make([]string, len(objects))
		for _, x := range objects {
			if x.Index >= 0 && x.Index < len(paths) {
				paths[x.Index] = x.URLPath
			}
		}
		sealed, urls, err := signedurl.Fresh(ctx, env.Crypto, api, policy, m.Job, paths)
		switch kind := portability.KindOf(err); {
		case err == nil:
		case errors.Is(err, signedurl.ErrMismatch), errors.Is(err, copyengine.ErrURLRefused):
			refuse("Google's fresh download links do not match the files planned (" + err.Error() + ").")
		case errors.Is(err, signedurl.ErrNotComplete):
			refuse("Google no longer reports the export as complete, so no fresh download links could be had (" + err.Error() + ").")
		case kind == portability.KindUnauthorized:
			consentGone.Store(true)
		case kind != portability.KindRetry:
			if portability.StatusOf(err) == http.StatusNotFound {
				refuse("Google no longer knows this export (its job is gone), so no fresh download links could be had.")
			} else {
				refuse("Google refused to give fresh download links (" + err.Error() + ").")
			}
		}
		if err != nil {
			return "", err
		}
		if err := env.Store.UpdateURLs(ctx, m.Round, m.Resource, sealed); err != nil {
			return "", err
		}
		refreshed.Store(true)
		logging.FromContext(ctx).Info("signed URLs refreshed")
		return urls[m.Object], nil
	}
	parts := copyengine.Plan(o.Size, copyengine.PlanOptions{PartSize: o.PartSize})
	if len(parts) != o.Parts {
		return handler.Drop("object %d plans %d parts, recorded %d", m.Object, len(parts), o.Parts)
	}
	src := copyengine.NewURLSource(policy.Client(downloads), url, o.Size, refresh)
	start := time.Now()
	// One refresh per delivery: fresh URLs that fail the same way will not work on a later try either.
	res, err := copyengine.CopyPart(ctx, src, sink(env), parts[m.Part], copyengine.CopyOptions{TempPrefix: tempPrefix(m, o.Attempt), MaxRefreshes: 1})
	if err != nil {
		class := copyengine.Classify(err)
		reason := ""
		switch {
		case consentGone.Load():
			reason = "Google no longer accepts this consent (withdrawn or expired), so the rest of the archive could not be fetched."
		case refusal.Load() != nil:
			reason = *refusal.Load()
		case errors.Is(err, errPastRetention), class == copyengine.Gone && refreshed.Load():
			reason = "The archive is no longer available at Google."
		case class == copyengine.URLExpired && refreshed.Load():
			reason = "Google's storage refused the download link again after fresh links were fetched (" + copyengine.Describe(err) + ")."
		case copyengine.IsSourceFault(err):
			reason = "Google's storage answered in a way the transfer cannot use (" + copyengine.Describe(err) + ")."
		}
		if reason != "" {
			logging.FromContext(ctx).Warn("archive file cannot be copied", "reason", reason, "class", class.String())
			return failObject(ctx, env, m, o, reason)
		}
		return fmt.Errorf("copy part %d: %w", m.Part, err)
	}
	logging.FromContext(ctx).Info("part copied", "bytes", res.Length, "resumes", res.Resumes,
		"seconds", time.Since(start).Seconds(), "attempt", o.Attempt)
	return env.Store.PartDone(ctx, m.Round, m.Resource, m.Object, store.Part{Index: res.Index, Attempt: o.Attempt,
		Offset: res.Offset, Length: res.Length, CRC32C: res.CRC32C, Temp: res.Name})
}

// finishObject composes and verifies the object once every part of its attempt is recorded.
func finishObject(ctx context.Context, env *setup.Env, m *messages.TransferPart, o *store.Object) error {
	done, err := env.Store.DoneParts(ctx, m.Round, m.Resource, m.Object, o.Attempt)
	if err != nil {
		return err
	}
	if len(done) < o.Parts {
		return nil
	}
	res, err := env.Store.GetResource(ctx, m.Round, m.Resource)
	if err != nil {
		return err
	}
	results := make([]copyengine.PartResult, len(done))
	for i, p := range done {
		results[i] = copyengine.PartResult{Index: p.Index, Name: p.Temp, Offset: p.Offset, Length: p.Length, CRC32C: p.CRC32C}
	}
	final := copyengine.ObjectName(env.Config.ObjectPrefix, m.User, m.Round, m.Resource, m.Job, m.Object, o.SourceName)
	out, err := copyengine.Compose(ctx, sink(env), final, results, copyengine.ComposeOptions{
		SourceCRC32C:   o.CRC32C,
		NoSourceCRC32C: !o.HasCRC32C,
		ContentType:    o.ContentType,
		TempPrefix:     tempPrefix(m, o.Attempt),
		Metadata: map[string]string{
			"user": m.User, "round": m.Round, "resource": m.Resource, "job": m.Job,
			"file-index": strconv.Itoa(m.Object), "source-name": o.SourceName,
			"export-time":   res.ExportTime.UTC().Format(time.RFC3339),
			"source-crc32c": strconv.FormatUint(uint64(o.CRC32C), 10),
		},
	})
	log := logging.FromContext(ctx)
	switch {
	case errors.Is(err, copyengine.ErrChecksumMismatch), errors.Is(err, copyengine.ErrPartsMissing):
		log.Warn("archive file failed verification; copying it again", "error", err.Error(), "attempt", o.Attempt)
		return recopy(ctx, env, m, o)
	case err != nil:
		return fmt.Errorf("compose object %d: %w", m.Object, err)
	}
	if out.CleanupErr != nil {
		log.Warn("temporary part objects left for the lifecycle rule", "error", out.CleanupErr.Error())
	}
	if changed, err := env.Store.VerifyObject(ctx, m.Round, m.Resource, m.Object, o.Attempt, final); err != nil {
		return err
	} else if changed {
		log.Info("archive file verified", "object", final, "bytes", out.Size, "crc32c", out.CRC32C)
	}
	return finishResource(ctx, env, m)
}

// recopy starts another attempt of the whole object, or gives it up after MaxVerifyAttempts.
func recopy(ctx context.Context, env *setup.Env, m *messages.TransferPart, o *store.Object) error {
	after, err := env.Store.RecopyObject(ctx, m.Round, m.Resource, m.Object, o.Attempt, env.Config.Export.MaxVerifyAttempts, "checksum mismatch after repeated copies")
	if err != nil {
		return err
	}
	if after.State != store.ObjCopying {
		return finishResource(ctx, env, m)
	}
	for p := 0; p < after.Parts; p++ {
		if err := env.Publisher.Publish(ctx, env.Config.Topics.Transfer, &messages.TransferPart{V: messages.Version,
			User: m.User, Round: m.Round, Resource: m.Resource, Job: m.Job, Object: m.Object, Part: p}); err != nil {
			return err
		}
	}
	return nil
}

// failObject gives up an object that no retry can copy, with a reason in plain words.
func failObject(ctx context.Context, env *setup.Env, m *messages.TransferPart, o *store.Object, reason string) error {
	if _, err := env.Store.RecopyObject(ctx, m.Round, m.Resource, m.Object, o.Attempt, 0, reason); err != nil {
		return err
	}
	return finishResource(ctx, env, m)
}

// finishResource ends the resource when all its objects are verified (or one failed) and settles the
// round. A done resource whose manifest is still to be written is finished by a Finish message instead,
// whose work (the manifest) grows with the archives and so must not share this delivery with a copy.
func finishResource(ctx context.Context, env *setup.Env, m *messages.TransferPart) error {
	state, changed, err := env.Store.FinishResource(ctx, m.Round, m.Resource)
	if err != nil {
		return err
	}
	if changed {
		logging.FromContext(ctx).Info("resource finished", "state", state)
	}
	if state == store.ResDone {
		pending, err := manifestPending(ctx, env, m)
		if err != nil {
			return err
		}
		if pending {
			return requestFinish(ctx, env, m)
		}
	}
	if store.Terminal(state) {
		return rounds.CompleteIfDone(ctx, env, m.Round)
	}
	return nil
}
