package transfer

import (
	"context"
	"errors"
	"fmt"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// writeManifest writes manifest.json beside a done resource's archives and then releases its
// resource.exported event (recorded held by FinishResource), so the event never announces a manifest that
// is not there. Once the event is released it does nothing; the manifest is the same on every write.
func writeManifest(ctx context.Context, env *setup.Env, m *messages.TransferPart) error {
	id := store.EventID(store.EventResourceExported, m.Round, m.Resource, m.Job)
	ev, err := env.Store.GetEvent(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // no event to release (a resource done before events existed, or purged)
	case err != nil:
		return err
	case !ev.Held:
		return nil
	}
	res, err := env.Store.GetResource(ctx, m.Round, m.Resource)
	if err != nil {
		return err
	}
	objects, err := env.Store.ListObjects(ctx, m.Round, m.Resource)
	if err != nil {
		return err
	}
	b := env.Storage.Bucket(env.Config.Bucket)
	inputs := make([]manifest.Input, 0, len(objects))
	for _, o := range objects {
		if o.State != store.ObjVerified {
			return fmt.Errorf("object %d of a done resource is %s", o.Index, o.State)
		}
		in := manifest.Input{Index: o.Index, Object: o.Name, SourceName: o.SourceName, Size: o.Size}
		if o.HasCRC32C {
			in.CRC32C = events.CRC32C(o.CRC32C)
		}
		in.Source = manifest.GCSRanger{Object: b.Object(o.Name)}
		inputs = append(inputs, in)
	}
	man, err := manifest.Build(ctx, manifest.Job{User: m.User, Round: m.Round, Resource: m.Resource, Job: m.Job,
		ExportTime: res.ExportTime, StartTime: res.StartTime, TimeFilter: res.TimeFilter}, inputs)
	if err != nil {
		return fmt.Errorf("build the manifest: %w", err)
	}
	name := manifest.ObjectName(env.Config.ObjectPrefix, m.User, m.Round, m.Resource, m.Job)
	if err := manifest.Write(ctx, b.Object(name), man); err != nil {
		return err
	}
	logging.FromContext(ctx).Info("manifest written", "object", name, "files", man.Totals.Files, "bytes_read", man.Totals.BytesRead)
	return env.Store.ReleaseEvent(ctx, id)
}
