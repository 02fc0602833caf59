package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// colEvents is the outbox of events for the operator's app (shared/events publishes it).
const colEvents = "events"

// Event types (the wire names of shared/events).
const (
	EventResourceExported = "resource.exported"
	EventResourceFailed   = "resource.failed"
	EventRoundCompleted   = "round.completed"
	EventGrantEnded       = "grant.ended"
	EventUserPurged       = "user.purged"
)

// Stages order a user's events within a round: resources first, then the round, then the grant.
const (
	StageResource = 1
	StageRound    = 2
	StageGrant    = 3
	StagePurge    = 4
)

// Endings of a grant (grant.ended).
const (
	EndingOneTime  = "one_time"         // the one-time export is done and the grant was reset
	EndingHorizon  = "horizon"          // a time-based grant reached the configured horizon
	EndingNoExport = "nothing_exported" // a time-based round exported nothing (consent withdrawn or expired)
	EndingPurged   = "purged"           // the operator purged the user
)

// EventObject is one verified archive file of an exported resource.
type EventObject struct {
	Name      string `firestore:"name"`
	Size      int64  `firestore:"size"`
	CRC32C    uint32 `firestore:"crc32c"`
	HasCRC32C bool   `firestore:"hasCrc32c"`
}

// EventResource is one line of a round's summary.
type EventResource struct {
	Name    string `firestore:"name"`
	State   string `firestore:"state"`
	Job     string `firestore:"job"`
	Objects int    `firestore:"objects"`
	Bytes   int64  `firestore:"bytes"`
	Reason  string `firestore:"reason"`
	// The range of the export (done resources): see Resource.StartTime, ExportTime, TimeFilter.
	StartTime  time.Time `firestore:"startTime"`
	ExportTime time.Time `firestore:"exportTime"`
	TimeFilter string    `firestore:"timeFilter"`
}

// Event is events/{id}: one fact for the operator's app, recorded in the transaction that makes it true
// (an outbox). shared/events publishes unpublished records and marks them published.
type Event struct {
	ID          string          `firestore:"-"`
	Type        string          `firestore:"type"`
	User        string          `firestore:"user"`
	Round       string          `firestore:"round"`
	RoundNumber int             `firestore:"roundNumber"`
	Stage       int             `firestore:"stage"`
	Resource    string          `firestore:"resource"`
	Job         string          `firestore:"job"`
	State       string          `firestore:"state"`
	Reason      string          `firestore:"reason"`
	Access      string          `firestore:"access"`
	Ending      string          `firestore:"ending"`
	ExportTime  time.Time       `firestore:"exportTime"`
	StartTime   time.Time       `firestore:"startTime"`
	TimeFilter  string          `firestore:"timeFilter"`
	Objects     []EventObject   `firestore:"objects"`
	Resources   []EventResource `firestore:"resources"`
	OccurredAt  time.Time       `firestore:"occurredAt"`
	// Held events wait for something outside the transaction (the manifest) before they may be published;
	// a user's later events wait behind them, to keep the order.
	Held        bool      `firestore:"held"`
	Published   bool      `firestore:"published"`
	PublishedAt time.Time `firestore:"publishedAt"`
}

// EventID derives the one ID of a fact: the first 128 bits of sha256 over its type and identifiers.
func EventID(typ string, keys ...string) string {
	h := sha256.Sum256([]byte(typ + "\x00" + strings.Join(keys, "\x00")))
	return hex.EncodeToString(h[:16])
}

func (s *Store) event(id string) *firestore.DocumentRef { return s.fs.Collection(colEvents).Doc(id) }

// recordEvent writes the event in tx (same ID, same content: a retried transaction writes it again).
func (s *Store) recordEvent(tx *firestore.Transaction, e Event) error {
	if e.OccurredAt.IsZero() {
		e.OccurredAt = s.now()
	}
	return tx.Set(s.event(e.ID), e)
}

// resourceEvent is the event of a resource that has just become terminal in round rid.
func resourceEvent(rid, name string, r *Resource, objects []EventObject) Event {
	user, n, _ := ParseRoundID(rid)
	e := Event{User: user, Round: rid, RoundNumber: n, Stage: StageResource, Resource: name, Job: r.Job,
		State: r.State, Reason: r.Reason, ExportTime: r.ExportTime, StartTime: r.StartTime, TimeFilter: r.TimeFilter}
	if r.State == ResDone {
		e.Type = EventResourceExported
		e.Objects = objects
		e.Reason = ""
		// The manifest is written after the transaction; the event waits for it.
		e.Held = len(objects) > 0
	} else {
		e.Type = EventResourceFailed
	}
	e.ID = EventID(e.Type, rid, name, r.Job)
	return e
}

// PendingEvents returns the user's unpublished events in publishing order: by round, then stage, then
// time. Events after a held one are left out (they wait for it).
func (s *Store) PendingEvents(ctx context.Context, user string) ([]Event, error) {
	snaps, err := s.fs.Collection(colEvents).Where("user", "==", user).Where("published", "==", false).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", user, err)
	}
	out, err := decodeAll[Event](snaps, func(v *Event, id string) { v.ID = id })
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Event) int {
		switch {
		case a.RoundNumber != b.RoundNumber:
			return a.RoundNumber - b.RoundNumber
		case a.Stage != b.Stage:
			return a.Stage - b.Stage
		case !a.OccurredAt.Equal(b.OccurredAt):
			return a.OccurredAt.Compare(b.OccurredAt)
		}
		return strings.Compare(a.ID, b.ID)
	})
	for i, e := range out {
		if e.Held {
			return out[:i], nil
		}
	}
	return out, nil
}

// GetEvent reads one event record.
func (s *Store) GetEvent(ctx context.Context, id string) (*Event, error) {
	e, err := get[Event](ctx, nil, s.event(id))
	if err != nil {
		return nil, err
	}
	e.ID = id
	return e, nil
}

// RecordEvent records an event outside a transition (user.purged): created once; an existing record is
// kept as it is and returned.
func (s *Store) RecordEvent(ctx context.Context, e Event) (*Event, error) {
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
	snaps, err := s.fs.Collection(colEvents).Where("user", "==", user).Documents(ctx).GetAll()
	if err != nil {
		return 0, err
	}
	bw := s.fs.BulkWriter(ctx)
	n := 0
	for _, snap := range snaps {
		if slices.Contains(keep, snap.Ref.ID) {
			continue
		}
		if _, err := bw.Delete(snap.Ref); err != nil {
			return n, err
		}
		n++
	}
	bw.End()
	return n, nil
}

func isAlreadyExists(err error) bool { return status.Code(err) == codes.AlreadyExists }
