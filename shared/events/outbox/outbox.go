// Package outbox says what an event for the operator's app is before it is published: its type, its one
// ID, the stage that orders it, the grant endings, and the record the store writes to events/{id} in the
// transaction that makes the fact true. shared/store keeps the records (it imports this package and
// nothing here imports the store); shared/events renders them as the wire schema and publishes them.
package outbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Types of events (the wire names of shared/events' schema).
const (
	ResourceExported = "resource.exported"
	ResourceFailed   = "resource.failed"
	RoundCompleted   = "round.completed"
	GrantEnded       = "grant.ended"
	UserPurged       = "user.purged"
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

// PurgeRound is the round number of user.purged: after every round, so it is published last.
const PurgeRound = math.MaxInt32

// Object is one verified archive file of an exported resource.
type Object struct {
	Name      string `firestore:"name"`
	Size      int64  `firestore:"size"`
	CRC32C    uint32 `firestore:"crc32c"`
	HasCRC32C bool   `firestore:"hasCrc32c"`
}

// ResourceLine is one line of a round's summary.
type ResourceLine struct {
	Name    string `firestore:"name"`
	State   string `firestore:"state"`
	Job     string `firestore:"job"`
	Objects int    `firestore:"objects"`
	Bytes   int64  `firestore:"bytes"`
	Reason  string `firestore:"reason"`
	// The range of the export (done resources): see store.Resource's StartTime, ExportTime, TimeFilter.
	StartTime  time.Time `firestore:"startTime"`
	ExportTime time.Time `firestore:"exportTime"`
	TimeFilter string    `firestore:"timeFilter"`
}

// Record is events/{id}: one fact for the operator's app, recorded in the transaction that makes it true
// (an outbox). shared/events publishes unpublished records and marks them published.
type Record struct {
	ID          string         `firestore:"-"`
	Type        string         `firestore:"type"`
	User        string         `firestore:"user"`
	Round       string         `firestore:"round"`
	RoundNumber int            `firestore:"roundNumber"`
	Stage       int            `firestore:"stage"`
	Resource    string         `firestore:"resource"`
	Job         string         `firestore:"job"`
	State       string         `firestore:"state"`
	Reason      string         `firestore:"reason"`
	Access      string         `firestore:"access"`
	Ending      string         `firestore:"ending"`
	ExportTime  time.Time      `firestore:"exportTime"`
	StartTime   time.Time      `firestore:"startTime"`
	TimeFilter  string         `firestore:"timeFilter"`
	Objects     []Object       `firestore:"objects"`
	Resources   []ResourceLine `firestore:"resources"`
	OccurredAt  time.Time      `firestore:"occurredAt"`
	// Held records wait for something outside the transaction (the manifest) before they may be
	// published; a user's later records wait behind them, to keep the order.
	Held        bool      `firestore:"held"`
	Published   bool      `firestore:"published"`
	PublishedAt time.Time `firestore:"publishedAt"`
}

// ID derives the one ID of a fact: the first 128 bits of sha256 over its type and identifiers.
func ID(typ string, keys ...string) string {
	h := sha256.Sum256([]byte(typ + "\x00" + strings.Join(keys, "\x00")))
	return hex.EncodeToString(h[:16])
}

// ExportedID is the ID of resource.exported for job's export of resource in round (the transfer step
// finds the held record by it to release it once the manifest is written).
func ExportedID(round, resource, job string) string {
	return ID(ResourceExported, round, resource, job)
}

// ResourceEnd is a resource of a round that has just become terminal.
type ResourceEnd struct {
	User        string
	Round       string
	RoundNumber int
	Resource    string
	Job         string
	State       string
	Reason      string
	// Exported is true when the resource is done (its archives are stored and verified): the fact is
	// resource.exported with Objects; otherwise it is resource.failed with Reason.
	Exported              bool
	StartTime, ExportTime time.Time
	TimeFilter            string
	Objects               []Object
}

// ResourceRecord is the record of a resource that has just become terminal: resource.exported (held
// until its manifest is written when it has archive files) or resource.failed.
func ResourceRecord(e ResourceEnd) Record {
	r := Record{User: e.User, Round: e.Round, RoundNumber: e.RoundNumber, Stage: StageResource, Resource: e.Resource,
		Job: e.Job, State: e.State, Reason: e.Reason, ExportTime: e.ExportTime, StartTime: e.StartTime, TimeFilter: e.TimeFilter}
	if e.Exported {
		r.Type, r.Objects, r.Reason = ResourceExported, e.Objects, ""
		// The manifest is written after the transaction; the event waits for it.
		r.Held = len(e.Objects) > 0
	} else {
		r.Type = ResourceFailed
	}
	r.ID = ID(r.Type, e.Round, e.Resource, e.Job)
	return r
}

// RoundRecord is the record of round.completed: every resource of the round is terminal; lines summarise
// them (sorted by name here, so the same round gives the same record).
func RoundRecord(user, round string, number int, access string, lines []ResourceLine, at time.Time) Record {
	lines = slices.Clone(lines)
	slices.SortFunc(lines, func(a, b ResourceLine) int { return strings.Compare(a.Name, b.Name) })
	return Record{ID: ID(RoundCompleted, round), Type: RoundCompleted, User: user, Round: round, RoundNumber: number,
		Stage: StageRound, Access: access, Resources: lines, OccurredAt: at}
}

// GrantRecord is the record of grant.ended: the grant whose last round is round ended with ending (one of
// the Ending constants) for reason (plain words).
func GrantRecord(user, round string, number int, access, ending, reason string, at time.Time) Record {
	return Record{ID: ID(GrantEnded, round), Type: GrantEnded, User: user, Round: round, RoundNumber: number,
		Stage: StageGrant, Access: access, Ending: ending, Reason: reason, OccurredAt: at}
}

// PurgeRecord is the record of user.purged: the operator purged user's data. purgeID must be the same on every
// redelivery of the purge (it keys the event ID); rounds is how many rounds were deleted (informative).
func PurgeRecord(user, purgeID string, rounds int) Record {
	return Record{ID: ID(UserPurged, user, purgeID), Type: UserPurged, User: user, RoundNumber: PurgeRound,
		Stage: StagePurge, Ending: EndingPurged,
		Reason: fmt.Sprintf("the operator purged this user's data (%d rounds)", rounds)}
}

// Publishable orders a user's unpublished records for publishing, by round, then stage, then time (then
// ID, so the order is total), and leaves out every record from the first held one on: they wait for it.
func Publishable(records []Record) []Record {
	slices.SortFunc(records, func(a, b Record) int {
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
	for i, r := range records {
		if r.Held {
			return records[:i]
		}
	}
	return records
}
