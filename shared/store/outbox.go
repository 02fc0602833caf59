package store

import (
	"context"
	"fmt"
	"slices"

	"cloud.google.com/go/firestore"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
)

// colEvents is the outbox of events for the operator's app: the store writes the records
// (shared/events/outbox says what they are) and shared/events publishes them.
const colEvents = "events"

func (s *Store) event(id string) *firestore.DocumentRef { return s.fs.Collection(colEvents).Doc(id) }

// recordEvent writes the event in tx (same ID, same content: a retried transaction writes it again).
func (s *Store) recordEvent(tx *firestore.Transaction, e outbox.Record) error {
	if e.OccurredAt.IsZero() {
		e.OccurredAt = s.now()
	}
	return tx.Set(s.event(e.ID), e)
}

// resourceEvent is the outbox record of a resource that has just become terminal in round rid (objects:
// its verified archive files, when it is done).
func resourceEvent(rid, name string, r *Resource, objects []outbox.Object) outbox.Record {
	user, n, _ := ParseRoundID(rid)
	return outbox.ResourceRecord(outbox.ResourceEnd{User: user, Round: rid, RoundNumber: n, Resource: name, Job: r.Job,
		State: string(r.State), Reason: r.Reason, Exported: r.State == ResDone, StartTime: r.StartTime, ExportTime: r.ExportTime,
		TimeFilter: r.TimeFilter, Objects: objects})
}

// PendingEvents returns the user's unpublished events in publishing order: by round, then stage, then
// time. Records from the first held one on are left out (they wait for it).
func (s *Store) PendingEvents(ctx context.Context, user string) ([]outbox.Record, error) {
	out, err := queryAll(ctx, s.fs.Collection(colEvents).Where("user", "==", user).Where("published", "==", false), eventID)
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", user, err)
	}
	return outbox.Publishable(out), nil
}

// GetEvent reads one event record.
func (s *Store) GetEvent(ctx context.Context, id string) (*outbox.Record, error) {
	return getNamed(ctx, s.event(id), eventID)
}

// RecordEvent records an event outside a transition (user.purged): created once; an existing record is
// kept as it is and returned.
func (s *Store) RecordEvent(ctx context.Context, e outbox.Record) (*outbox.Record, error) {
	if e.OccurredAt.IsZero() {
		e.OccurredAt = s.now()
	}
	_, err := s.event(e.ID).Create(ctx, e)
	if err != nil && !isAlreadyExists(err) {
		return nil, fmt.Errorf("record event %s: %w", e.ID, err)
	}
	return s.GetEvent(ctx, e.ID)
}

// ReleaseEvent lets a held event be published (its manifest is written).
func (s *Store) ReleaseEvent(ctx context.Context, id string) error {
	_, err := s.event(id).Update(ctx, []firestore.Update{{Path: "held", Value: false}})
	if notFound(err) {
		return fmt.Errorf("event %s: %w", id, ErrNotFound)
	}
	return err
}

// MarkEventPublished records that Pub/Sub accepted the event.
func (s *Store) MarkEventPublished(ctx context.Context, id string) error {
	_, err := s.event(id).Update(ctx, []firestore.Update{{Path: "published", Value: true}, {Path: "publishedAt", Value: s.now()}})
	return err
}

// DeleteEvents removes every event record of a user (purge); it returns how many it deleted.
func (s *Store) DeleteEvents(ctx context.Context, user string, keep ...string) (int, error) {
	ids, err := s.idsWhere(ctx, colEvents, "user", user)
	if err != nil {
		return 0, err
	}
	bw := s.fs.BulkWriter(ctx)
	n := 0
	for _, id := range ids {
		if slices.Contains(keep, id) {
			continue
		}
		if _, err := bw.Delete(s.event(id)); err != nil {
			return n, err
		}
		n++
	}
	bw.End()
	return n, nil
}
