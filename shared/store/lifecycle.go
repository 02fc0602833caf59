package store

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/config"
)

// The lifecycle of resources, rounds and archive objects, declared once: every state with what it means,
// every allowed transition {from, event, to}, and for each non-terminal state how long it may last
// (derived from the configuration) and the reconciler's repair that re-drives it. The store refuses a
// transition the table does not declare (Transition returns ErrNotAllowed); functions/reconcile builds its
// deadline queries from the deadlines; docs/design.md shows the diagrams generated from the table
// (TestLifecycleDiagramsMatchDesign keeps them in step).

// Transition is one allowed change of state and the event that causes it.
type Transition[S ~string] struct {
	From  S
	Event string
	To    S
}

// Deadline says when a state is stuck: the record has held it for longer than Limit past its Field.
// Redrive is the reconciler's repair (functions/reconcile kinds).
type Deadline struct {
	Field string
	// Limit derives the allowed duration from the configuration; LimitDoc names it for the diagram.
	Limit    func(c *config.Config) time.Duration
	LimitDoc string
	Redrive  string
	Why      string
}

// StateSpec is one state of a lifecycle.
type StateSpec[S ~string] struct {
	Name S
	// Initial states are those a record is created in; Terminal ones end the record's part.
	Initial   bool
	Terminal  bool
	Doc       string
	Deadlines []Deadline
}

// Lifecycle is the state machine of one kind of record.
type Lifecycle[S ~string] struct {
	Name        string
	States      []StateSpec[S]
	Transitions []Transition[S]
}

// Repairs of the reconciler, as the lifecycle names them (functions/reconcile logs them as "kind").
const (
	RedriveInitiate = "initiate"
	RedrivePoll     = "poll"
	RedriveTransfer = "transfer"
	RedriveSettle   = "settle"
	RedriveReset    = "reset"
	RedriveJobAge   = "job-age"
	RedriveRoundAge = "round-age"
	RedriveExpire   = "expire" // retention, not a repair
)

func grace(c *config.Config) time.Duration { return c.Reconcile.Grace }
func leaseGrace(c *config.Config) time.Duration {
	return c.Export.InitiateLease + c.Reconcile.Grace
}

// ResourceLifecycle is the life of rounds/{round}/resources/{group}.
var ResourceLifecycle = Lifecycle[ResourceState]{
	Name: "resource",
	States: []StateSpec[ResourceState]{
		{Name: ResPending, Initial: true, Doc: "granted, waiting for its initiate call",
			Deadlines: []Deadline{{FieldUpdatedAt, grace, "RECONCILE_GRACE", RedriveInitiate, "its initiate request was lost"}}},
		{Name: ResInitiating, Doc: "claimed by an initiate delivery for INITIATE_LEASE",
			Deadlines: []Deadline{{FieldClaimedAt, leaseGrace, "INITIATE_LEASE + RECONCILE_GRACE", RedriveInitiate, "the claiming delivery crashed and was not redelivered"}}},
		{Name: ResCooldown, Doc: "time-based: waits for the API's next allowed export (notBefore)",
			Deadlines: []Deadline{{FieldNotBefore, grace, "RECONCILE_GRACE past notBefore", RedriveInitiate, "its delayed initiate task did not run"}}},
		{Name: ResExporting, Doc: "its job runs at Google; the poll chain checks it",
			Deadlines: []Deadline{
				{FieldJobStartedAt, func(c *config.Config) time.Duration { return c.Reconcile.MaxJobAge }, "MAX_JOB_AGE", RedriveJobAge, "the job ran longer than MAX_JOB_AGE"},
				{FieldPollDue, grace, "RECONCILE_GRACE past pollDue", RedrivePoll, "its next state check is overdue: the poll task was lost"},
			}},
		{Name: ResRetrying, Doc: "claimed by a poll check retrying a FAILED job",
			Deadlines: []Deadline{{FieldClaimedAt, leaseGrace, "INITIATE_LEASE + RECONCILE_GRACE", RedrivePoll, "the retrying check crashed and its task is gone"}}},
		{Name: ResTransferring, Doc: "its archive files are copied, part by part",
			Deadlines: []Deadline{{FieldUpdatedAt, grace, "RECONCILE_GRACE without a part done", RedriveTransfer, "parts were lost"}}},
		{Name: ResDone, Terminal: true, Doc: "every archive file stored and verified"},
		{Name: ResFailed, Terminal: true, Doc: "ended without (all of) its data, with a reason"},
		{Name: ResNotGranted, Initial: true, Terminal: true, Doc: "not granted in the consent"},
		{Name: ResExhausted, Terminal: true, Doc: "one-time: already exported with this consent"},
		{Name: ResCancelled, Terminal: true, Doc: "its job was cancelled"},
	},
	Transitions: []Transition[ResourceState]{
		{ResPending, "initiate claimed", ResInitiating},
		{ResInitiating, "claim lease expired, taken over", ResInitiating},
		{ResCooldown, "cooldown over, claimed", ResInitiating},
		{ResInitiating, "transient API error, claim released", ResPending},
		{ResInitiating, "job started or adopted", ResExporting},
		{ResInitiating, "API cooldown (429)", ResCooldown},
		{ResInitiating, "already exported (429)", ResExhausted},
		{ResInitiating, "not granted (403)", ResNotGranted},
		{ResInitiating, "refused or consent gone", ResFailed},
		{ResPending, "consent gone or round too old", ResFailed},
		{ResCooldown, "consent gone or round too old", ResFailed},
		{ResExporting, "job FAILED, retry claimed", ResRetrying},
		{ResRetrying, "retry claim expired, taken over", ResRetrying},
		{ResRetrying, "retry started", ResExporting},
		{ResRetrying, "transient API error, claim released", ResExporting},
		{ResExporting, "job COMPLETE, transfer planned", ResTransferring},
		{ResExporting, "job failed for good, consent gone, too old", ResFailed},
		{ResRetrying, "retry refused or exhausted", ResFailed},
		{ResExporting, "job CANCELLED", ResCancelled},
		{ResRetrying, "job CANCELLED", ResCancelled},
		{ResTransferring, "every file verified", ResDone},
		{ResTransferring, "a file failed, or round too old", ResFailed},
		{ResFailed, "operator retry", ResPending},
	},
}

// RoundLifecycle is the life of rounds/{round}.
var RoundLifecycle = Lifecycle[RoundState]{
	Name: "round",
	States: []StateSpec[RoundState]{
		{Name: RoundScheduled, Initial: true, Doc: "a later round of a time-based grant, waiting for notBefore",
			Deadlines: []Deadline{{FieldNotBefore, grace, "RECONCILE_GRACE past notBefore", RedriveInitiate, "its initiate task was lost"}}},
		{Name: RoundExporting, Initial: true, Doc: "its resources are exported",
			Deadlines: []Deadline{
				{FieldCreatedAt, grace, "RECONCILE_GRACE, every resource terminal", RedriveSettle, "it was never settled"},
				{FieldCreatedAt, func(c *config.Config) time.Duration { return c.Reconcile.MaxRoundAge }, "MAX_ROUND_AGE", RedriveRoundAge, "it stayed open longer than MAX_ROUND_AGE"},
			}},
		{Name: RoundComplete, Doc: "every resource terminal; reset or next round pending",
			Deadlines: []Deadline{{FieldCompletedAt, grace, "RECONCILE_GRACE", RedriveReset, "its reset request was never published or never ran"}}},
		{Name: RoundClosed, Terminal: true, Doc: "reset done or next round scheduled",
			Deadlines: []Deadline{{FieldClosedAt, func(c *config.Config) time.Duration { return c.Reconcile.Retention }, "ROUND_RETENTION", RedriveExpire, "retention: deleted with everything below it"}}},
	},
	Transitions: []Transition[RoundState]{
		{RoundScheduled, "its time came (initiate)", RoundExporting},
		{RoundExporting, "every resource terminal (settle)", RoundComplete},
		{RoundComplete, "operator retry", RoundExporting},
		{RoundComplete, "reset, or next round scheduled", RoundClosed},
		{RoundExporting, "operator reset or purge", RoundClosed},
		{RoundScheduled, "operator reset or purge", RoundClosed},
	},
}

// ObjectLifecycle is the life of .../objects/{index}.
var ObjectLifecycle = Lifecycle[ObjectState]{
	Name: "object",
	States: []StateSpec[ObjectState]{
		{Name: ObjCopying, Initial: true, Doc: "its parts are copied (attempt n)"},
		{Name: ObjVerified, Terminal: true, Doc: "composed; its CRC32C equals the source's"},
		{Name: ObjFailed, Terminal: true, Doc: "source gone, or still mismatched after MAX_VERIFY_ATTEMPTS"},
	},
	Transitions: []Transition[ObjectState]{
		{ObjCopying, "checksum mismatch, copied again", ObjCopying},
		{ObjCopying, "composed and verified", ObjVerified},
		{ObjCopying, "source gone or attempts used up", ObjFailed},
	},
}

// Allows reports whether the lifecycle declares a transition from -> to.
func (l *Lifecycle[S]) Allows(from, to S) bool {
	return slices.ContainsFunc(l.Transitions, func(t Transition[S]) bool { return t.From == from && t.To == to })
}

// State returns the spec of a state.
func (l *Lifecycle[S]) State(name S) (StateSpec[S], bool) {
	i := slices.IndexFunc(l.States, func(s StateSpec[S]) bool { return s.Name == name })
	if i < 0 {
		return StateSpec[S]{}, false
	}
	return l.States[i], true
}

// check refuses an undeclared transition.
func (l *Lifecycle[S]) check(from, to S) error {
	if from == to || l.Allows(from, to) {
		return nil // a declared transition, or an update within a state (fields only)
	}
	return fmt.Errorf("%w: %s %s -> %s is not a transition of the lifecycle", ErrNotAllowed, l.Name, from, to)
}

// Mermaid renders the lifecycle as a Mermaid state diagram: initial states from [*], terminal states
// to [*], each non-terminal state's deadlines as a note.
func (l *Lifecycle[S]) Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	id := func(s S) string { return strings.ReplaceAll(string(s), "_", "") }
	for _, s := range l.States {
		fmt.Fprintf(&b, "    %s: %s\n", id(s.Name), s.Name)
	}
	for _, s := range l.States {
		if s.Initial {
			fmt.Fprintf(&b, "    [*] --> %s\n", id(s.Name))
		}
	}
	for _, t := range l.Transitions {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", id(t.From), id(t.To), t.Event)
	}
	for _, s := range l.States {
		if s.Terminal {
			fmt.Fprintf(&b, "    %s --> [*]\n", id(s.Name))
		}
	}
	for _, s := range l.States {
		if len(s.Deadlines) == 0 {
			continue
		}
		var lines []string
		for _, d := range s.Deadlines {
			lines = append(lines, fmt.Sprintf("after %s, reconciler %s", d.LimitDoc, d.Redrive))
		}
		fmt.Fprintf(&b, "    note right of %s: %s\n", id(s.Name), strings.Join(lines, "; "))
	}
	return b.String()
}

// Strings is the lifecycle with its states as plain strings, for code that treats every lifecycle alike
// (the table checks and the diagrams of docs/design.md).
func (l *Lifecycle[S]) Strings() *Lifecycle[string] {
	out := &Lifecycle[string]{Name: l.Name}
	for _, s := range l.States {
		out.States = append(out.States, StateSpec[string]{Name: string(s.Name), Initial: s.Initial, Terminal: s.Terminal,
			Doc: s.Doc, Deadlines: s.Deadlines})
	}
	for _, t := range l.Transitions {
		out.Transitions = append(out.Transitions, Transition[string]{From: string(t.From), Event: t.Event, To: string(t.To)})
	}
	return out
}
