// Package store keeps the pipeline's state in Firestore: users, rounds, the resources of a round, and the
// archive objects and parts being transferred. Every transition that must happen once is a transaction
// with a precondition, so at-least-once delivery cannot repeat it. A transition that makes a fact true
// for the operator's app writes its event record (shared/events/outbox says what the record is) in the
// same transaction; shared/events publishes the records.
//
// Files: store.go (the client and read helpers), model.go (documents and states), lifecycle.go (the
// state machines), consent.go (single-use links, pending consents), rounds.go (users, grants, rounds),
// resources.go (claims and transitions of resources), objects.go (archive files and parts), outbox.go
// (event records), stuck.go (the reconciler's deadline queries), delete.go (the purge's and
// retention's deletion), statelog.go (the state-change log lines).
package store

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Collections.
const (
	colStates    = "oauthStates"
	colUsers     = "users"
	colRounds    = "rounds"
	colResources = "resources"
	colObjects   = "objects"
	colParts     = "parts"
)

// Access of a grant.
const (
	AccessOneTime   = "one-time"
	AccessTimeBased = "time-based"
)

// ResourceState is where a resource stands in its round (ResourceLifecycle). The three kinds of state are
// distinct types, so a round's "exporting" cannot be written where a resource's is meant.
type ResourceState string

// Resource states.
const (
	ResPending      ResourceState = "pending"
	ResInitiating   ResourceState = "initiating"
	ResCooldown     ResourceState = "cooldown"
	ResExporting    ResourceState = "exporting"
	ResRetrying     ResourceState = "retrying"
	ResTransferring ResourceState = "transferring"
	ResDone         ResourceState = "done"
	ResFailed       ResourceState = "failed"
	ResNotGranted   ResourceState = "not_granted"
	ResExhausted    ResourceState = "exhausted"
	ResCancelled    ResourceState = "cancelled"
)

// Terminal reports whether a resource state ends the resource's part in the round, as ResourceLifecycle
// declares it.
func Terminal(state ResourceState) bool {
	spec, _ := ResourceLifecycle.State(state)
	return spec.Terminal
}

// RoundState is where a round stands (RoundLifecycle).
type RoundState string

// Round states.
const (
	RoundScheduled RoundState = "scheduled" // a later round of a time-based grant, waiting for its time
	RoundExporting RoundState = "exporting"
	RoundComplete  RoundState = "complete" // every resource terminal; reset or next round pending
	RoundClosed    RoundState = "closed"
)

// Time filters of a resource's export (Resource.TimeFilter, events' time_filter, the manifest's).
const (
	// TimeFilterApplied: the export covers [StartTime, ExportTime] only.
	TimeFilterApplied = "applied"
	// TimeFilterNone: the group supports filters but none was asked (round 1 without since): the whole
	// history up to ExportTime.
	TimeFilterNone = "none"
	// TimeFilterUnsupported: the group takes no time filter, so every round exports its whole content.
	TimeFilterUnsupported = "unsupported"
)

// ObjectState is where one archive file of a job stands (ObjectLifecycle).
type ObjectState string

// Object states.
const (
	ObjCopying  ObjectState = "copying"
	ObjVerified ObjectState = "verified"
	ObjFailed   ObjectState = "failed"
)

// User is users/{user}.
type User struct {
	ID           string    `firestore:"-"`
	Access       string    `firestore:"access"`
	Resources    []string  `firestore:"resources"`
	State        string    `firestore:"state"` // active | closed
	CurrentRound string    `firestore:"currentRound"`
	Rounds       int       `firestore:"rounds"`
	GrantStart   time.Time `firestore:"grantStart"`
	CreatedAt    time.Time `firestore:"createdAt"`
	UpdatedAt    time.Time `firestore:"updatedAt"`
}

// Round is rounds/{round}.
type Round struct {
	ID             string     `firestore:"-"`
	User           string     `firestore:"user"`
	Number         int        `firestore:"number"`
	Access         string     `firestore:"access"`
	Resources      []string   `firestore:"resources"`
	State          RoundState `firestore:"state"`
	ResetPublished bool       `firestore:"resetPublished"`
	ResetClaimedAt time.Time  `firestore:"resetClaimedAt"`
	Outcome        string     `firestore:"outcome"`
	NotBefore      time.Time  `firestore:"notBefore"`
	NextRoundAt    time.Time  `firestore:"nextRoundAt"`
	// Since is the grant's start (the start link's signed since; zero: the whole history): round 1's
	// startTime for resources with time filters, and later rounds' when no earlier round exported.
	Since time.Time `firestore:"since"`
	// GrantFirst is the number of the grant's first round: a later round continues from the exports of
	// rounds GrantFirst..Number-1, never from an earlier grant's (0 on rounds recorded before it existed).
	GrantFirst  int       `firestore:"grantFirst"`
	CreatedAt   time.Time `firestore:"createdAt"`
	CompletedAt time.Time `firestore:"completedAt"`
	ClosedAt    time.Time `firestore:"closedAt"`
}

// Resource is rounds/{round}/resources/{group}.
type Resource struct {
	Name       string        `firestore:"-"`
	State      ResourceState `firestore:"state"`
	Job        string        `firestore:"job"`
	Jobs       []string      `firestore:"jobs"`
	Retries    int           `firestore:"retries"`
	Attempts   int           `firestore:"attempts"`
	Reason     string        `firestore:"reason"`
	ClaimedAt  time.Time     `firestore:"claimedAt"`
	NotBefore  time.Time     `firestore:"notBefore"`
	ExportTime time.Time     `firestore:"exportTime"`
	// StartTime is the start of the exported range (the startTime initiate sent, corrected by the
	// job's echo); zero means from the beginning of the account's history. ExportTime is its end.
	StartTime time.Time `firestore:"startTime"`
	// TimeFilter says how the range was chosen: TimeFilterApplied, TimeFilterNone, TimeFilterUnsupported.
	TimeFilter string `firestore:"timeFilter"`
	// JobStartedAt is when Job was started (or adopted, or retried): the maximum job age counts from it.
	JobStartedAt time.Time `firestore:"jobStartedAt"`
	// PollDue is when the next state check of Job is due (the poll step records each one it schedules):
	// an exporting resource long past it has lost its poll chain.
	PollDue   time.Time `firestore:"pollDue"`
	Objects   int       `firestore:"objects"`
	Bytes     int64     `firestore:"bytes"`
	UpdatedAt time.Time `firestore:"updatedAt"`
}

// Object is one archive file of a job: .../resources/{group}/objects/{index}.
type Object struct {
	Index      int    `firestore:"index"`
	Job        string `firestore:"job"`
	SourceName string `firestore:"sourceName"`
	Name       string `firestore:"name"`
	Size       int64  `firestore:"size"`
	// CRC32C is the source's whole-object checksum from x-goog-hash.
	CRC32C      uint32      `firestore:"crc32c"`
	HasCRC32C   bool        `firestore:"hasCrc32c"`
	ContentType string      `firestore:"contentType"`
	Parts       int         `firestore:"parts"`
	PartSize    int64       `firestore:"partSize"`
	State       ObjectState `firestore:"state"`
	Attempt     int         `firestore:"attempt"`
	URL         []byte      `firestore:"url"` // sealed signed URL
	URLFetched  time.Time   `firestore:"urlFetched"`
	// URLPath is the object path the signed URL names (no query: not a credential), recorded at planning:
	// fresh URLs are matched to the object by it, never by their position in the list.
	URLPath string `firestore:"urlPath"`
	// PlannedAt is when the transfer was planned, about when the job completed: Google keeps the data
	// 14 days from completion, so a refused URL after that is gone, not stale.
	PlannedAt  time.Time `firestore:"plannedAt"`
	Reason     string    `firestore:"reason"`
	VerifiedAt time.Time `firestore:"verifiedAt"`
}

// Part is one byte range of an object: .../objects/{index}/parts/{part}.
type Part struct {
	Index   int       `firestore:"index"`
	Attempt int       `firestore:"attempt"`
	Offset  int64     `firestore:"offset"`
	Length  int64     `firestore:"length"`
	CRC32C  uint32    `firestore:"crc32c"`
	Temp    string    `firestore:"temp"`
	DoneAt  time.Time `firestore:"doneAt"`
}

// OAuthState is oauthStates/{id}: one pending consent.
type OAuthState struct {
	ID        string    `firestore:"-"`
	User      string    `firestore:"user"`
	Resources []string  `firestore:"resources"`
	Verifier  []byte    `firestore:"verifier"` // sealed PKCE verifier
	ExpiresAt time.Time `firestore:"expiresAt"`
	CreatedAt time.Time `firestore:"createdAt"`
	// Remaining lists the resources of the start link left for a later consent, when the consent URL
	// could not hold them all (Resources is the batch asked now).
	Remaining []string `firestore:"remaining,omitempty"`
	// Since is the start link's signed since (zero when it had none): round 1's startTime.
	Since time.Time `firestore:"since,omitempty"`
	// Browser is the SHA-256 of the browser cookie of the start page that began the consent: the callback
	// is accepted only from that browser (an additive field).
	Browser []byte `firestore:"browser,omitempty"`
}

// RoundID names the n-th round of a user.
func RoundID(user string, n int) string { return user + "~" + strconv.Itoa(n) }

// ParseRoundID splits a round ID.
func ParseRoundID(id string) (user string, n int, err error) {
	i := strings.LastIndex(id, "~")
	if i <= 0 {
		return "", 0, fmt.Errorf("bad round id %q", id)
	}
	n, err = strconv.Atoi(id[i+1:])
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("bad round id %q", id)
	}
	return id[:i], n, nil
}
