// Package reconcile finds work that stopped moving and re-drives it (HTTP entry Reconcile, called by
// Cloud Scheduler with an OIDC token of its own invoker account). Every hand-off of the pipeline is
// at-least-once, but a hand-off can still be lost for good: a Pub/Sub message dead-lettered after a long
// outage, a Cloud Task that used up its attempts (Cloud Tasks has no dead-letter queue: that poll chain
// simply ends), a step that kept failing until the dead letter. Each kind of stuck work has a deadline
// derived from the configuration (the grace past a hand-off, the initiate lease, the poll ladder's next
// check, the maximum job and round ages), found with an indexed query, and one repair that goes through
// the same idempotent path the steps use: republish an initiate, re-create the named poll task,
// republish missing parts, settle a round again, flush held events, republish a reset. Two overlapping
// runs are safe for the same reason a redelivered message is: every step it re-drives is idempotent.
//
// Each run is bounded (pages per query, a time budget); it writes one log line "reconcile.repair" per
// repair (kind, user, round, resource, job) and one "reconcile.summary" (repairs,
// oldestOpenRoundAgeSeconds), on which Terraform builds its log-based metrics and alerts. It also
// enforces retention: closed rounds older than ROUND_RETENTION are deleted with everything below them.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/oidcauth"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/trace"
)

// Needs is what a run that repairs uses beyond the configuration and the logger: the store, and to
// re-drive the work the publisher (the step topics), Cloud Tasks (poll checks) and a user's token (to
// cancel an overage job). A dry run (portctl stuck) needs only the store.
func Needs() setup.Needs { return setup.Needs{Store: true, Tokens: true, Publisher: true, Tasks: true} }

// NewHandler returns the HTTP entry point Reconcile: it admits only the scheduler's invoker (OIDC,
// audience RECONCILE_URL, email RECONCILE_INVOKER_EMAIL), runs once and answers the run's counts. It
// refuses an Env without what Needs names or without the reconciler's configuration.
func NewHandler(env *setup.Env) (http.Handler, error) {
	rec, err := New(env, Options{})
	if err != nil {
		return nil, err
	}
	if err := env.Config.RequireReconcile(); err != nil {
		return nil, err
	}
	verifier := oidcauth.New(env.Config.Tasks.OIDCIssuer, env.Config.Reconcile.URL, env.Config.Reconcile.InvokerEmail)
	// Each admitted run is one span (of the scheduler's request trace); its context reaches the run.
	run := verifier.Require(trace.Serve(env.Tracer, "reconcile", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			http.Error(w, "POST or GET only", http.StatusMethodNotAllowed)
			return
		}
		rep, err := rec.Run(ctx)
		if err != nil {
			logging.FromContext(ctx).Error("reconcile run failed", "error", err.Error())
			http.Error(w, "reconcile failed; the next run tries again", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(rep.Counts()); err != nil {
			logging.FromContext(ctx).Warn("reconcile answer not written", "error", err.Error())
		}
	})))
	log := env.Log.With("step", "reconcile")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run.ServeHTTP(w, r.WithContext(logging.WithLogger(r.Context(), log)))
	}), nil
}

// Options shape a Reconciler.
type Options struct {
	// Now is the clock deadlines are measured on (default time.Now).
	Now func() time.Time
	// DryRun finds what would be repaired and changes nothing (portctl stuck).
	DryRun bool
}

// Reconciler finds and repairs stuck work.
type Reconciler struct {
	env *setup.Env
	now func() time.Time
	dry bool
}

// New checks what a run needs and returns a Reconciler.
func New(env *setup.Env, opts Options) (*Reconciler, error) {
	needs := Needs()
	if opts.DryRun {
		needs = setup.Needs{Store: true}
	}
	if err := env.Require("reconcile", needs); err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Reconciler{env: env, now: func() time.Time { return now().UTC() }, dry: opts.DryRun}, nil
}

// errBudget ends a run whose time budget is spent.
var errBudget = errors.New("time budget spent")

// Run makes one pass: it finds stuck work and repairs it (or, dry, only lists it), and deletes expired
// closed rounds. A repair that fails is counted and logged; the next run finds the work again.
func (r *Reconciler) Run(ctx context.Context) (Report, error) {
	start := time.Now()
	rc := r.env.Config.Reconcile
	deadline := start.Add(rc.Budget)
	p := &pass{r: r, ctx: ctx, now: r.now(), deadline: deadline, seen: map[string]bool{}, rounds: map[string]*roundInfo{}}
	err := p.all()
	if errors.Is(err, errBudget) {
		p.rep.Truncated, err = true, nil
	}
	rep := p.rep
	rep.Seconds = time.Since(start).Seconds()
	if !r.dry {
		logging.FromContext(ctx).Info("reconcile.summary", "repairs", len(rep.Repairs), "failed", rep.Failed,
			"oldestOpenRoundAgeSeconds", rep.OldestOpenRoundAge.Seconds(), "oldestOpenRound", rep.OldestOpenRound,
			"expiredRounds", len(rep.Expired), "truncated", rep.Truncated, "seconds", rep.Seconds)
	}
	return rep, err
}

// Report is what one run found and did.
type Report struct {
	Repairs []Repair `json:"repairs"`
	// Failed counts repairs whose action failed (they are found again next run).
	Failed int `json:"failed"`
	// Expired lists the closed rounds deleted for retention.
	Expired []string `json:"expired,omitempty"`
	// Truncated means a page limit or the time budget left work for the next run.
	Truncated          bool          `json:"truncated"`
	OldestOpenRound    string        `json:"oldestOpenRound,omitempty"`
	OldestOpenRoundAge time.Duration `json:"oldestOpenRoundAgeSeconds"`
	Seconds            float64       `json:"seconds"`
}

// Counts is the report without identifiers (the HTTP answer).
func (r Report) Counts() map[string]any {
	byKind := map[string]int{}
	for _, rp := range r.Repairs {
		byKind[rp.Kind]++
	}
	return map[string]any{"repairs": len(r.Repairs), "byKind": byKind, "failed": r.Failed, "expired": len(r.Expired),
		"truncated": r.Truncated, "oldestOpenRoundAgeSeconds": r.OldestOpenRoundAge.Seconds()}
}

// Repair is one piece of stuck work and what re-drives it.
type Repair struct {
	Kind     string `json:"kind"`
	User     string `json:"user"`
	Round    string `json:"round"`
	Resource string `json:"resource,omitempty"`
	Job      string `json:"job,omitempty"`
	// State is the state the work was found in; Overdue how long past its deadline.
	State   string        `json:"state"`
	Overdue time.Duration `json:"overdueSeconds"`
	// Action says what the repair does (or would do).
	Action string `json:"action"`
	Error  string `json:"error,omitempty"`
}
