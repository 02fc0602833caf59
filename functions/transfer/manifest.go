package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/rounds"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// requestFinish hands a done resource's finishing to its own message (Finish), so the delivery that
// copied the last part does no work that grows with the archive. It is published again by every delivery
// that finds the resource done with its event still held: the finishing is idempotent.
func requestFinish(ctx context.Context, env *setup.Env, m *messages.TransferPart) error {
	return env.Publisher.Publish(ctx, env.Config.Topics.Transfer, &messages.TransferPart{V: messages.Version,
		User: m.User, Round: m.Round, Resource: m.Resource, Job: m.Job, Finish: true})
}

// manifestPending says whether a done resource still waits for its manifest (its resource.exported event
// is held until the manifest is written).
func manifestPending(ctx context.Context, env *setup.Env, m *messages.TransferPart) (bool, error) {
	ev, err := env.Store.GetEvent(ctx, outbox.ExportedID(m.Round, m.Resource, m.Job))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil // no event to release (a resource done before events existed, or purged)
	case err != nil:
		return false, err
	}
	return ev.Held, nil
}

// finish is one delivery of a Finish message: it adds to the manifest what its budget allows and hands
// the rest to another Finish message; the delivery that completes the manifest writes it, releases the
// event and settles the round. Every piece is idempotent (the same archive gives the same description,
// the manifest the same bytes, the event is released and published once, the reset requested once), so a
// duplicate message or a second chain of them costs work but changes nothing.
func finish(ctx context.Context, env *setup.Env, m *messages.TransferPart) error {
	res, err := env.Store.GetResource(ctx, m.Round, m.Resource)
	if errors.Is(err, store.ErrNotFound) {
		return handler.Drop("resource %s of round %s does not exist (purged)", m.Resource, m.Round)
	}
	if err != nil {
		return err
	}
	if res.Job != m.Job || res.State != store.ResDone {
		return handler.Drop("resource %s is %s with job %s, not done with job %s", m.Resource, res.State, res.Job, m.Job)
	}
	pending, err := manifestPending(ctx, env, m)
	if err != nil {
		return err
	}
	if pending {
		done, err := buildManifest(ctx, env, m, res)
		if errors.Is(err, store.ErrNotFound) {
			return finishPurged(ctx, env, m, err)
		}
		if err != nil {
			return err
		}
		if !done {
			return requestFinish(ctx, env, m)
		}
	}
	return rounds.CompleteIfDone(ctx, env, m.Round)
}

// finishPurged handles records that vanished while this delivery built the manifest (the user was purged):
// once the resource's record is confirmed gone it deletes the manifest and the described archives this or
// an earlier delivery wrote, so nothing of a purged user comes back, and drops the message.
func finishPurged(ctx context.Context, env *setup.Env, m *messages.TransferPart, cause error) error {
	if _, err := env.Store.GetResource(ctx, m.Round, m.Resource); !errors.Is(err, store.ErrNotFound) {
		if err == nil {
			return cause // something else is missing: let a redelivery look again
		}
		return err
	}
	name := manifest.ObjectName(env.Config.ObjectPrefix, m.User, m.Round, m.Resource, m.Job)
	if err := deletePurged(ctx, env, partsPrefix(m), name); err != nil {
		return fmt.Errorf("purged resource: %w", err)
	}
	return handler.Drop("resource %s of round %s was purged while its manifest was built; it is deleted", m.Resource, m.Round)
}

// described is one archive's share of the manifest, kept between the deliveries that build it.
type described struct {
	Archive  manifest.Archive   `json:"archive"`
	Services []manifest.Service `json:"services"`
}

// partsPrefix is where the described archives of a job wait for the manifest's assembly (under
// copyengine.TempRoot: the bucket's lifecycle rule removes what a purge or an abandoned job leaves).
func partsPrefix(m *messages.TransferPart) string {
	p := copyengine.TempPrefix(m.User, m.Round, m.Resource, m.Job, 0)
	return strings.TrimSuffix(p, "0/") + "manifest/"
}

// buildManifest describes the archives not yet described, in index order, until the delivery's budget
// (Config.Export.FinishReadBudget bytes read, FinishTimeBudget spent) is used, at least one per delivery
// so every delivery makes progress; it says false when archives are left. Once all are described it
// writes manifest.json, releases the resource.exported event and deletes the described parts.
func buildManifest(ctx context.Context, env *setup.Env, m *messages.TransferPart, res *store.Resource) (bool, error) {
	log := logging.FromContext(ctx)
	objects, err := env.Store.ListObjects(ctx, m.Round, m.Resource)
	if err != nil {
		return false, err
	}
	b := env.Storage.Bucket(env.Config.Bucket)
	prefix := partsPrefix(m)
	listed, err := objectNames(ctx, b, prefix)
	if err != nil {
		return false, fmt.Errorf("list the described archives: %w", err)
	}
	have := map[int]string{}
	for _, name := range listed {
		if i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, prefix), ".json")); err == nil {
			have[i] = name
		}
	}
	start := time.Now()
	var read int64
	count := 0
	for _, o := range objects {
		if o.State != store.ObjVerified {
			return false, fmt.Errorf("object %d of a done resource is %s", o.Index, o.State)
		}
		if _, ok := have[o.Index]; ok {
			continue
		}
		if count > 0 && (read >= env.Config.Export.FinishReadBudget || time.Since(start) >= env.Config.Export.FinishTimeBudget) {
			log.Info("manifest continues in another delivery", "described", count, "bytes_read", read,
				"seconds", time.Since(start).Seconds(), "left", len(objects)-len(have))
			return false, nil
		}
		in := manifest.Input{Index: o.Index, Object: o.Name, SourceName: o.SourceName, Size: o.Size,
			Source: manifest.GCSRanger{Object: b.Object(o.Name)}}
		if o.HasCRC32C {
			in.CRC32C = events.CRC32C(o.CRC32C)
		}
		a, services, err := manifest.Describe(ctx, in)
		if err != nil {
			return false, fmt.Errorf("describe archive %d: %w", o.Index, err)
		}
		name := prefix + strconv.Itoa(o.Index) + ".json"
		if err := writeJSON(ctx, b.Object(name), described{Archive: a, Services: services}); err != nil {
			return false, err
		}
		have[o.Index] = name
		read += a.BytesRead
		count++
	}
	if count > 0 {
		log.Info("archives described", "described", count, "bytes_read", read, "seconds", time.Since(start).Seconds())
	}

	parts, err := readDescribed(ctx, b, objects, have)
	if err != nil {
		return false, err
	}
	man := manifest.New(manifest.Job{User: m.User, Round: m.Round, Resource: m.Resource, Job: m.Job,
		ExportTime: res.ExportTime, StartTime: res.StartTime, TimeFilter: res.TimeFilter})
	for _, d := range parts {
		man.Add(d.Archive, d.Services)
	}
	name := manifest.ObjectName(env.Config.ObjectPrefix, m.User, m.Round, m.Resource, m.Job)
	if err := manifest.Write(ctx, b.Object(name), man); err != nil {
		return false, err
	}
	log.Info("manifest written", "object", name, "archives", man.Totals.Archives, "files", man.Totals.Files, "bytes_read", man.Totals.BytesRead)
	if err := env.Store.ReleaseEvent(ctx, outbox.ExportedID(m.Round, m.Resource, m.Job)); err != nil {
		return false, err
	}
	for _, n := range have {
		if err := b.Object(n).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			log.Warn("described archive left for the lifecycle rule", "object", n, "error", err.Error())
		}
	}
	return true, nil
}

// readDescribed reads every object's description, 8 at a time, in index order.
func readDescribed(ctx context.Context, b *storage.BucketHandle, objects []store.Object, have map[int]string) ([]described, error) {
	out := make([]described, len(objects))
	errs := make([]error, len(objects))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, o := range objects {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = readJSON(ctx, b.Object(have[o.Index]), &out[i])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("read the described archives: %w", err)
	}
	return out, nil
}

func writeJSON(ctx context.Context, obj *storage.ObjectHandle, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w := obj.NewWriter(ctx)
	w.ContentType = "application/json"
	if _, err := w.Write(data); err != nil {
		_ = w.Close() // the write failed already; Close only ends the upload
		return fmt.Errorf("write %s: %w", obj.ObjectName(), err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", obj.ObjectName(), err)
	}
	return nil
}

func readJSON(ctx context.Context, obj *storage.ObjectHandle, v any) error {
	r, err := obj.NewReader(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", obj.ObjectName(), err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", obj.ObjectName(), err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", obj.ObjectName(), err)
	}
	return nil
}
