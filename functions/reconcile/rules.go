package reconcile

import (
	"time"

	"github.com/portability-pipeline/pipeline/shared/config"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Kinds of repair (the "kind" of each reconcile.repair line).
const (
	// KindInitiate: a resource pending, claimed by a crashed initiate, or past its cooldown, or a scheduled
	// round past its start, whose initiate request was lost. Republish the initiate request.
	KindInitiate = "initiate"
	// KindPoll: an exporting resource long past its next state check, or a retry claim that ran out: the
	// poll chain is lost. Re-create the poll task.
	KindPoll = "poll"
	// KindTransfer: a transferring resource whose parts stopped arriving. Republish its missing parts.
	KindTransfer = "transfer"
	// KindSettle: a round whose resources are all terminal but that never completed, or a complete round
	// whose reset request was never published. Settle it again.
	KindSettle = "settle"
	// KindReset: a complete round whose published reset request never ran. Republish the reset.
	KindReset = "reset"
	// KindEvents: events recorded but never published (flush them), or held for a manifest never
	// written (republish a part of the resource: the transfer step writes the manifest and releases it).
	KindEvents = "events"
	// KindJobAge: a job running longer than MAX_JOB_AGE. Cancel it where the API allows, fail the resource.
	KindJobAge = "job-age"
	// KindRoundAge: a round open longer than MAX_ROUND_AGE. Fail its unfinished resources and settle it.
	KindRoundAge = "round-age"
)

// Kinds lists every repair kind (portctl, the chaos summary, the docs).
var Kinds = []string{KindInitiate, KindPoll, KindTransfer, KindSettle, KindReset, KindEvents, KindJobAge, KindRoundAge}

// resourceRule is one deadline of a non-terminal resource state: a resource in state whose field is
// older than limit is stuck, and kind re-drives it. The reconciler runs one collection-group query per
// rule (an index each in terraform/firestore.tf).
type resourceRule struct {
	state, field, kind string
	limit              func(c *config.Config) time.Duration
	why                string
}

func grace(c *config.Config) time.Duration { return c.Reconcile.Grace }
func leasePlusGrace(c *config.Config) time.Duration {
	return c.Export.InitiateLease + c.Reconcile.Grace
}

// resourceRules are checked in order; the first rule that finds a resource is the one that repairs it
// in a run (the job-age rule comes before the lost-poll rule of the same state).
var resourceRules = []resourceRule{
	{store.ResPending, store.FieldUpdatedAt, KindInitiate, grace, "pending longer than the grace: its initiate request was lost"},
	{store.ResInitiating, store.FieldClaimedAt, KindInitiate, leasePlusGrace, "initiate claim expired: the claiming delivery crashed and was not redelivered"},
	{store.ResCooldown, store.FieldNotBefore, KindInitiate, grace, "cooldown over: its delayed initiate task did not run"},
	{store.ResExporting, store.FieldJobStartedAt, KindJobAge, func(c *config.Config) time.Duration { return c.Reconcile.MaxJobAge }, "job older than MAX_JOB_AGE"},
	{store.ResExporting, store.FieldPollDue, KindPoll, grace, "next state check overdue: the poll task was lost"},
	{store.ResRetrying, store.FieldClaimedAt, KindPoll, leasePlusGrace, "retry claim expired: the retrying check crashed and its task is gone"},
	{store.ResTransferring, store.FieldUpdatedAt, KindTransfer, grace, "transfer without progress: parts were lost"},
}

// roundRule is one deadline of a round state.
type roundRule struct {
	state, field string
	limit        func(c *config.Config) time.Duration
}

var roundRules = []roundRule{
	{store.RoundScheduled, store.FieldNotBefore, grace},   // KindInitiate
	{store.RoundExporting, store.FieldCreatedAt, grace},   // KindSettle when all terminal; KindRoundAge past MAX_ROUND_AGE
	{store.RoundComplete, store.FieldCompletedAt, grace},  // KindSettle or KindReset
	{store.RoundClosed, store.FieldClosedAt, retentionOf}, // retention: delete
}

func retentionOf(c *config.Config) time.Duration { return c.Reconcile.Retention }
