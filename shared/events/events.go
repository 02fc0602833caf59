// Package events tells the operator's app what happened to a user's exports: it publishes versioned JSON
// events to the topic export-events (config Topics.Events), one message per fact.
//
// # Schema (schema_version 1)
//
// Every event is one JSON object; Pub/Sub attributes repeat type, schema_version and user, and the
// ordering key is the user ID.
//
//	type               when                                              fields besides the common ones
//	resource.exported  a resource's archives are stored and verified     resource, job, state=done, export_time,
//	                                                                     time_range{start?,end}, time_filter,
//	                                                                     objects[{name,size,crc32c}], bytes, manifest
//	resource.failed    a resource ends without data                      resource, job?, state (failed, not_granted,
//	                                                                     exhausted, cancelled), reason (plain words)
//	round.completed    every resource of a round is terminal             access, resources[{resource,state,job,objects,bytes,reason}]
//	grant.ended        the grant is over (tokens reset and destroyed)    access, ending (one_time, horizon,
//	                                                                     nothing_exported), reason?
//	user.purged        the operator purged the user's data               ending=purged
//
// Common fields: schema_version, id, type, occurred_at, user, round, round_number, stage.
//
// time_range is the span of activity the archives hold: end is the export time; start is absent when
// the archive holds everything from the beginning of the account's history. time_filter says why:
// "applied" (only [start, end]: a later round of a time-based grant continues where the previous one
// ended, or round 1 started at the start link's since), "none" (the group takes filters but round 1
// asked for everything), "unsupported" (the group takes no time filter: every round holds its whole
// content again, and the app replaces rather than appends). round.completed lines carry both too.
//
// # Delivery contract
//
// Pub/Sub is at-least-once, so the contract is: each fact has exactly one event ID (derived from its type
// and identifiers, outbox.ID), and the pipeline publishes it until Pub/Sub acknowledges it. The event
// is recorded in Firestore (events/{id}, an outbox) in the same transaction that makes the fact true;
// every later step touching the user publishes the user's unpublished events, in order, and marks them
// published. A crash between publish and mark publishes the same event (same id, same bytes) again, so
// consumers must deduplicate by id.
//
// Order: events of a user are published in the order (round_number, stage, occurred_at) with the user as
// ordering key, and a resource.exported event waits until its manifest is written (the user's later
// events wait behind it). Redeliveries can still repeat an earlier event later; a consumer that needs the
// order sorts by (round_number, stage): resources (1) before their round (2) before the grant's end (3)
// before a purge (4). Events with equal (round_number, stage) are about different resources and
// independent.
//
// # Purge
//
// The purge step announces a purge with
//
//	events.Publish(ctx, env, outbox.PurgeRecord(user, purgeID, rounds))
//
// where purgeID is stable across redeliveries of the purge request (its message or request ID): the event
// is recorded once (events/{id}) and published; call it after deleting the user's data and after
// store.DeleteEvents(ctx, user, id) (which keeps the purge's own record).
//
// # Who owns what
//
// shared/events/outbox says what an event is before it goes out (type, ID, stage, ending, the record);
// shared/store writes and reads the records in its transactions; this package renders a record as the
// wire event above and publishes it.
package events

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/publish"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// SchemaVersion is the version of the JSON schema below; a consumer refuses versions it does not know.
const SchemaVersion = 1

// Event is the JSON body of every event.
type Event struct {
	SchemaVersion int       `json:"schema_version"`
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	OccurredAt    time.Time `json:"occurred_at"`
	User          string    `json:"user"`
	Round         string    `json:"round,omitempty"`
	RoundNumber   int       `json:"round_number,omitempty"`
	// Stage orders a user's events within a round: 1 resource, 2 round, 3 grant, 4 purge.
	Stage      int        `json:"stage"`
	Resource   string     `json:"resource,omitempty"`
	Job        string     `json:"job,omitempty"`
	State      string     `json:"state,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	ExportTime *time.Time `json:"export_time,omitempty"`
	TimeRange  *TimeRange `json:"time_range,omitempty"`
	TimeFilter string     `json:"time_filter,omitempty"`
	Objects    []Object   `json:"objects,omitempty"`
	Bytes      int64      `json:"bytes,omitempty"`
	// Manifest is gs://bucket/<prefix>/<user>/<round>/<resource>/<job>/manifest.json.
	Manifest  string     `json:"manifest,omitempty"`
	Access    string     `json:"access,omitempty"`
	Ending    string     `json:"ending,omitempty"`
	Resources []Resource `json:"resources,omitempty"`
}

// Object is one stored archive file.
type Object struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// CRC32C is base64 of the big-endian CRC32C, as Cloud Storage reports it (absent when Google gave none).
	CRC32C string `json:"crc32c,omitempty"`
}

// Resource is one line of a round.completed summary.
type Resource struct {
	Resource   string     `json:"resource"`
	State      string     `json:"state"`
	Job        string     `json:"job,omitempty"`
	Objects    int        `json:"objects"`
	Bytes      int64      `json:"bytes"`
	Reason     string     `json:"reason,omitempty"`
	TimeRange  *TimeRange `json:"time_range,omitempty"`
	TimeFilter string     `json:"time_filter,omitempty"`
}

// TimeRange is the span of activity an export holds: Start absent means from the beginning of the
// account's history; End is the export time.
type TimeRange struct {
	Start *time.Time `json:"start,omitempty"`
	End   time.Time  `json:"end"`
}

// rangeOf is the wire range of an export (nil when there was no export).
func rangeOf(start, end time.Time) *TimeRange {
	if end.IsZero() {
		return nil
	}
	r := &TimeRange{End: end.UTC()}
	if !start.IsZero() {
		s := start.UTC()
		r.Start = &s
	}
	return r
}

// CRC32C formats a CRC32C value as Cloud Storage does (base64 of 4 big-endian bytes).
func CRC32C(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return base64.StdEncoding.EncodeToString(b[:])
}

// Render turns an outbox record into the wire event (deterministic: the same record gives the same bytes).
func Render(e outbox.Record, bucket, prefix string) Event {
	out := Event{SchemaVersion: SchemaVersion, ID: e.ID, Type: e.Type, OccurredAt: e.OccurredAt.UTC(), User: e.User,
		Round: e.Round, RoundNumber: e.RoundNumber, Stage: e.Stage, Resource: e.Resource, Job: e.Job, State: e.State,
		Reason: e.Reason, Access: e.Access, Ending: e.Ending}
	if e.RoundNumber == outbox.PurgeRound {
		out.RoundNumber = 0
	}
	if !e.ExportTime.IsZero() {
		t := e.ExportTime.UTC()
		out.ExportTime = &t
	}
	if e.Type == outbox.ResourceExported {
		out.TimeRange, out.TimeFilter = rangeOf(e.StartTime, e.ExportTime), e.TimeFilter
	}
	for _, o := range e.Objects {
		obj := Object{Name: o.Name, Size: o.Size}
		if o.HasCRC32C {
			obj.CRC32C = CRC32C(o.CRC32C)
		}
		out.Objects = append(out.Objects, obj)
		out.Bytes += o.Size
	}
	if e.Type == outbox.ResourceExported && len(e.Objects) > 0 {
		out.Manifest = "gs://" + bucket + "/" + manifest.ObjectName(prefix, e.User, e.Round, e.Resource, e.Job)
	}
	for _, r := range e.Resources {
		line := Resource{Resource: r.Name, State: r.State, Job: r.Job, Objects: r.Objects, Bytes: r.Bytes, Reason: r.Reason}
		if r.State == string(store.ResDone) {
			line.TimeRange, line.TimeFilter = rangeOf(r.StartTime, r.ExportTime), r.TimeFilter
		}
		out.Resources = append(out.Resources, line)
	}
	return out
}

// Attributes are the Pub/Sub attributes of an event.
func Attributes(e Event) map[string]string {
	return map[string]string{"type": e.Type, "schema_version": strconv.Itoa(e.SchemaVersion), "user": e.User, "id": e.ID}
}

// Publish records e in the outbox (once: an existing record with its ID wins) and publishes the user's
// unpublished events, e among them.
func Publish(ctx context.Context, env *setup.Env, e outbox.Record) error {
	if _, err := env.Store.RecordEvent(ctx, e); err != nil {
		return err
	}
	return Flush(ctx, env, e.User)
}

// Flush publishes the user's unpublished events in order and marks each published. It stops at the first
// failure (the caller returns an error, so its message is delivered again and flushes again).
func Flush(ctx context.Context, env *setup.Env, user string) error {
	if env.Config.Topics.Events == "" {
		return nil
	}
	pending, err := env.Store.PendingEvents(ctx, user)
	if err != nil || len(pending) == 0 {
		return err
	}
	pub, ok := env.Publisher.(publish.EventPublisher)
	if !ok {
		return fmt.Errorf("the publisher (%T) cannot publish events", env.Publisher)
	}
	for _, rec := range pending {
		e := Render(rec, env.Config.Bucket, env.Config.ObjectPrefix)
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := pub.PublishEvent(ctx, env.Config.Topics.Events, user, data, Attributes(e)); err != nil {
			return fmt.Errorf("publish event %s %s: %w", e.Type, e.ID, err)
		}
		if err := env.Store.MarkEventPublished(ctx, rec.ID); err != nil {
			return fmt.Errorf("mark event %s published: %w", e.ID, err)
		}
		logging.FromContext(ctx).Info("event published", "event", e.Type, "eventId", e.ID, "round", e.Round, "resource", e.Resource)
	}
	return nil
}

// Decode parses an event and refuses a schema version it does not know.
func Decode(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("decode event: %w", err)
	}
	if e.SchemaVersion != SchemaVersion || e.ID == "" || e.Type == "" {
		return e, fmt.Errorf("event with schema_version %d, id %q, type %q: not version %d", e.SchemaVersion, e.ID, e.Type, SchemaVersion)
	}
	return e, nil
}
