package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/operator"
	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/manifest"
)

// Event is an export event as the operator's app receives it.
type Event struct {
	events.Event
	// Deliveries counts how often it arrived (Pub/Sub is at-least-once; duplicates are dropped by id).
	Deliveries int
	// Attrs are the Pub/Sub attributes; OrderingKey the message's ordering key.
	Attrs       map[string]string
	OrderingKey string
	Received    time.Time
}

// Of returns the events of user, in order.
func Of(list []Event, user string) []Event {
	var out []Event
	for _, e := range list {
		if e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// CheckEvents lists what is wrong with events as an app receives them: attributes or an ordering key
// that do not name the event's type and user, or a user's events out of (round_number, stage) order
// (user.purged comes last).
func CheckEvents(list []Event) []string {
	var problems []string
	last := map[string][2]int{}
	for _, e := range list {
		if e.OrderingKey != e.User || e.Attrs["type"] != e.Type || e.Attrs["user"] != e.User || e.Attrs["schema_version"] != "1" {
			problems = append(problems, fmt.Sprintf("%s %s: ordering key %q, attributes %v", e.Type, e.ID, e.OrderingKey, e.Attrs))
		}
		k := [2]int{e.RoundNumber, e.Stage}
		if e.Type == outbox.UserPurged {
			k[0] = 1 << 30
		}
		if p := last[e.User]; k[0] < p[0] || k[0] == p[0] && k[1] < p[1] {
			problems = append(problems, fmt.Sprintf("%s %s (round %d stage %d) after round %d stage %d", e.Type, e.Resource, e.RoundNumber, e.Stage, p[0], p[1]))
		}
		last[e.User] = k
	}
	return problems
}

// Lines renders events as "round type resource/state" lines ("round grant.ended ending"), sorted within
// each (round, stage) since the resources of one stage publish in any order.
func Lines(list []Event) []string {
	var out, group []string
	flush := func() { slices.Sort(group); out = append(out, group...); group = nil }
	for i, e := range list {
		if i > 0 && (e.RoundNumber != list[i-1].RoundNumber || e.Stage != list[i-1].Stage) {
			flush()
		}
		s := fmt.Sprintf("%d %s", e.RoundNumber, e.Type)
		switch e.Type {
		case outbox.ResourceExported, outbox.ResourceFailed:
			s += " " + e.Resource + "/" + e.State
		case outbox.GrantEnded:
			s += " " + e.Ending
		}
		group = append(group, s)
	}
	flush()
	return out
}

// Line is the demo consumer's one-line rendering: time, type, user, resource, objects/bytes.
func Line(e Event) string {
	line := fmt.Sprintf("%s  %-17s %-10s", e.OccurredAt.Format("15:04:05"), e.Type, e.User)
	switch e.Type {
	case outbox.ResourceExported:
		line += fmt.Sprintf(" %-24s %d objects, %d bytes", e.Resource, len(e.Objects), e.Bytes)
		if r := e.TimeRange; r != nil {
			var start time.Time
			if r.Start != nil {
				start = *r.Start
			}
			line += ", activity " + operator.Activity(start, r.End, e.TimeFilter)
		}
	case outbox.ResourceFailed:
		line += fmt.Sprintf(" %-24s %s: %s", e.Resource, e.State, e.Reason)
	case outbox.RoundCompleted:
		var objs int
		var bytes int64
		for _, r := range e.Resources {
			objs += r.Objects
			bytes += r.Bytes
		}
		line += fmt.Sprintf(" round %-18d %d resources, %d objects, %d bytes", e.RoundNumber, len(e.Resources), objs, bytes)
	case outbox.GrantEnded, outbox.UserPurged:
		line += fmt.Sprintf(" %-24s %s", e.Ending, e.Reason)
	}
	if e.Deliveries > 1 {
		line += fmt.Sprintf("  (arrived %d times)", e.Deliveries)
	}
	return line
}

// WaitUserEvents reads the driver's events until user's grant.ended arrived (or ctx ends) and returns
// the user's events.
func WaitUserEvents(ctx context.Context, d Driver, user string) ([]Event, error) {
	for {
		list, err := d.Events(ctx)
		if err != nil {
			return nil, err
		}
		mine := Of(list, user)
		if slices.ContainsFunc(mine, func(e Event) bool { return e.Type == outbox.GrantEnded }) {
			return mine, nil
		}
		select {
		case <-ctx.Done():
			return mine, fmt.Errorf("waiting for the grant.ended of %s (%d events so far): %w", user, len(mine), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ReadManifest reads the manifest.json a resource.exported event names.
func ReadManifest(ctx context.Context, v View, e Event) (manifest.Manifest, error) {
	var m manifest.Manifest
	name, ok := strings.CutPrefix(e.Manifest, "gs://"+v.BucketName+"/")
	if !ok {
		return m, fmt.Errorf("%s: manifest at %q, not in gs://%s", e.Resource, e.Manifest, v.BucketName)
	}
	r, err := v.Bucket.Object(name).NewReader(ctx)
	if err != nil {
		return m, fmt.Errorf("%s: read manifest: %w", e.Resource, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return m, fmt.Errorf("%s: read manifest: %w", e.Resource, err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: manifest: %w", e.Resource, err)
	}
	return m, nil
}

// CheckManifest lists what is wrong with the manifest of a resource.exported event against the fake's
// job: its job, resource and archives (object, kind, size, CRC32C, bytes read, every zip entry) and
// the services of archive_browser.json, which must name the resource.
func CheckManifest(ctx context.Context, v View, e Event, job fakeportability.JobInfo) ([]string, error) {
	m, err := ReadManifest(ctx, v, e)
	if err != nil {
		return nil, err
	}
	if m.Job != e.Job || m.Resource != e.Resource || len(m.Archives) != len(job.Files) || len(e.Objects) != len(job.Files) || m.ExportTime.IsZero() {
		return []string{fmt.Sprintf("%s: manifest of job %s/%s with %d archives, event with %d objects, fake job %s with %d files",
			e.Resource, m.Job, m.Resource, len(m.Archives), len(e.Objects), job.ID, len(job.Files))}, nil
	}
	var problems []string
	for i, f := range job.Files {
		a := m.Archives[i]
		if a.Object != e.Objects[i].Name || a.Size != f.Size || a.CRC32C != f.CRC32C || a.Kind != f.Kind {
			problems = append(problems, fmt.Sprintf("%s archive %d: %s %d %s %s, fake %d %s %s", e.Resource, i, a.Object, a.Size, a.CRC32C, a.Kind, f.Size, f.CRC32C, f.Kind))
		}
		if a.Kind == manifest.KindZip && (a.BytesRead <= 0 || a.BytesRead > a.Size) {
			problems = append(problems, fmt.Sprintf("%s archive %d: %d bytes read of %d", e.Resource, i, a.BytesRead, a.Size))
		}
		var got, want []string
		for _, x := range a.Files {
			got = append(got, fmt.Sprintf("%s %d %08x", x.Path, x.Size, x.CRC32))
		}
		for _, x := range f.Entries {
			want = append(want, fmt.Sprintf("%s %d %08x", x.Path, x.Size, x.CRC32))
		}
		if !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("%s archive %d lists:\n%s\nthe fake put in it:\n%s", e.Resource, i, strings.Join(got, "\n"), strings.Join(want, "\n")))
		}
	}
	if !slices.ContainsFunc(m.Services, func(s manifest.Service) bool {
		return slices.ContainsFunc(s.Folders, func(f manifest.Folder) bool { return f.Resource == e.Resource })
	}) {
		problems = append(problems, fmt.Sprintf("%s: archive_browser.json services %+v do not name the resource", e.Resource, m.Services))
	}
	return problems, nil
}
