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
	KindInitiate = store.RedriveInitiate
	// KindPoll: an exporting resource long past its next state check, or a retry claim that ran out: the
	// poll chain is lost. Re-create the poll task.
	KindPoll = store.RedrivePoll
	// KindTransfer: a transferring resource whose parts stopped arriving. Republish its missing parts.
	KindTransfer = store.RedriveTransfer
	// KindSettle: a round whose resources are all terminal but that never completed, or a complete round
	// whose reset request was never published. Settle it again.
	KindSettle = store.RedriveSettle
	// KindReset: a complete round whose published reset request never ran. Republish the reset.
	KindReset = store.RedriveReset
	// KindEvents: events recorded but never published (flush them), or held for a manifest never
	// written (republish a part of the resource: the transfer step writes the manifest and releases it).
	KindEvents = "events"
	// KindJobAge: a job running longer than MAX_JOB_AGE. Cancel it where the API allows, fail the resource.
	KindJobAge = store.RedriveJobAge
	// KindRoundAge: a round open longer than MAX_ROUND_AGE. Fail its unfinished resources and settle it.
	KindRoundAge = store.RedriveRoundAge
)

// Kinds lists every repair kind (portctl, the chaos summary, the docs).
var Kinds = []string{KindInitiate, KindPoll, KindTransfer, KindSettle, KindReset, KindEvents, KindJobAge, KindRoundAge}

// resourceRule is one deadline of a non-terminal resource state, as store.ResourceLifecycle declares it:
// a resource in state whose field is older than limit is stuck, and kind re-drives it. The reconciler
// runs one collection-group query per rule (an index each in terraform/firestore.tf).
type resourceRule struct {
	state       store.ResourceState
	field, kind string
	limit       func(c *config.Config) time.Duration
	why         string
}

// resourceRules are the lifecycle's resource deadlines, in its order (the job-age deadline of exporting
// comes before the lost-poll one: the first rule that finds a resource repairs it in a run).
var resourceRules = func() []resourceRule {
	var out []resourceRule
	for _, s := range store.ResourceLifecycle.States {
		for _, d := range s.Deadlines {
			out = append(out, resourceRule{state: s.Name, field: d.Field, kind: d.Redrive, limit: d.Limit, why: d.Why})
		}
	}
	return out
}()

// roundRule is one query over rounds: state by field, from the shortest deadline the lifecycle gives
// the state on that field (round() decides which repair applies).
type roundRule struct {
	state store.RoundState
	field string
	limit func(c *config.Config) time.Duration
}

var roundRules = func() []roundRule {
	var out []roundRule
	for _, s := range store.RoundLifecycle.States {
		byField := map[string][]func(*config.Config) time.Duration{}
		var fields []string
		for _, d := range s.Deadlines {
			if byField[d.Field] == nil {
				fields = append(fields, d.Field)
			}
			byField[d.Field] = append(byField[d.Field], d.Limit)
		}
		for _, f := range fields {
			limits := byField[f]
			out = append(out, roundRule{state: s.Name, field: f, limit: func(c *config.Config) time.Duration {
				m := limits[0](c)
				for _, l := range limits[1:] {
					m = min(m, l(c))
				}
				return m
			}})
		}
	}
	return out
}()
