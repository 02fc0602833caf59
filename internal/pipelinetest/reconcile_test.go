package pipelinetest_test

import (
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/functions/reconcile"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/store"
)

const recRes = "myactivity.search"

// lostOnce loses the first delivery match accepts, and only that one.
func lostOnce(match func(d *pipelinetest.Delivery) bool) func(d *pipelinetest.Delivery) bool {
	done := false
	return func(d *pipelinetest.Delivery) bool {
		if done || !match(d) {
			return false
		}
		done = true
		return true
	}
}

func topic(name string) func(d *pipelinetest.Delivery) bool {
	return func(d *pipelinetest.Delivery) bool { return d.Topic == name }
}

func pollTask(d *pipelinetest.Delivery) bool {
	return d.Task != nil && d.Task.URL == pipelinetest.PollURL
}

func nextRoundTask(d *pipelinetest.Delivery) bool {
	if d.Task == nil || d.Task.URL != pipelinetest.InitiateURL {
		return false
	}
	m, ok := d.Task.Body.(messages.InitiateRequest)
	return ok && m.Resource == ""
}

// TestReconcilerRepairs loses one hand-off for good (or leaves work in a state no step will move), checks
// that the pipeline is stuck, runs the reconciler past the deadline, and checks that the round then ends
// without any operator action, with one repair of the expected kind.
func TestReconcilerRepairs(t *testing.T) {
	t.Parallel()
	const grace = 15 * time.Minute
	tests := []struct {
		name   string
		access string
		env    map[string]string
		fake   fakeportability.Options
		lose   func(d *pipelinetest.Delivery) bool
		// stuck, when set, leaves the pipeline stuck some other way after the first Run.
		stuck func(t *testing.T, h *pipelinetest.Harness, round string)
		after time.Duration
		kind  string
		// failJobs makes the resource's next jobs fail at Google.
		failJobs int
		// want is the resource's final state (default done) and wantReason a part of its reason.
		want       store.ResourceState
		wantReason string
	}{
		{name: "initiate request lost", lose: lostOnce(topic("initiate-requests")), after: grace + time.Minute, kind: reconcile.KindInitiate},
		{name: "initiate claim of a crashed delivery", lose: lostOnce(topic("initiate-requests")), env: map[string]string{"INITIATE_LEASE": "1ms"},
			stuck: func(t *testing.T, h *pipelinetest.Harness, round string) {
				claimInitiate(t, h, round, nil)
			}, after: time.Minute + grace + time.Minute, kind: reconcile.KindInitiate},
		{name: "cooldown task lost", lose: lostOnce(topic("initiate-requests")),
			stuck: func(t *testing.T, h *pipelinetest.Harness, round string) {
				claimInitiate(t, h, round, func(r *store.Resource) { r.State, r.NotBefore = store.ResCooldown, time.Now() })
			}, after: grace + time.Minute, kind: reconcile.KindInitiate},
		{name: "job started message lost", lose: lostOnce(topic("archive-jobs")), after: grace + time.Minute, kind: reconcile.KindPoll},
		{name: "poll task lost mid-chain", fake: fakeportability.Options{JobDuration: 10 * time.Second},
			lose: func() func(*pipelinetest.Delivery) bool {
				n := 0
				return func(d *pipelinetest.Delivery) bool {
					if !pollTask(d) {
						return false
					}
					n++
					return n == 2
				}
			}(), after: time.Minute + grace, kind: reconcile.KindPoll},
		{name: "retry claim of a crashed check", failJobs: 1, env: map[string]string{"INITIATE_LEASE": "1ms"},
			lose: func(d *pipelinetest.Delivery) bool { return pollTask(d) && d.Task.Body.(messages.PollCheck).Check == 0 },
			stuck: func(t *testing.T, h *pipelinetest.Harness, round string) {
				res, err := h.Env.Store.GetResource(h.Ctx, round, recRes)
				if err != nil {
					t.Fatal(err)
				}
				if c, err := h.Env.Store.ClaimRetry(h.Ctx, round, recRes, res.Job, time.Minute); err != nil || !c.Won {
					t.Fatalf("claim retry: %v %v", c.Won, err)
				}
			}, after: time.Minute + grace + time.Minute, kind: reconcile.KindPoll},
		{name: "transfer part lost", lose: lostOnce(topic("transfer-parts")), after: grace + time.Minute, kind: reconcile.KindTransfer},
		{name: "every transfer part lost", lose: topic("transfer-parts"), after: grace + time.Minute, kind: reconcile.KindTransfer},
		{name: "round never settled", lose: lostOnce(topic("initiate-requests")),
			stuck: func(t *testing.T, h *pipelinetest.Harness, round string) {
				claimInitiate(t, h, round, refusedByGoogle)
			}, after: grace + time.Minute, kind: reconcile.KindSettle, want: store.ResFailed},
		{name: "reset request never published", lose: lostOnce(topic("initiate-requests")),
			stuck: func(t *testing.T, h *pipelinetest.Harness, round string) {
				claimInitiate(t, h, round, refusedByGoogle)
				if _, complete, err := h.Env.Store.CompleteRoundIfDone(h.Ctx, round); err != nil || !complete {
					t.Fatalf("settle: %v %v", complete, err)
				}
			}, after: grace + time.Minute, kind: reconcile.KindSettle, want: store.ResFailed},
		{name: "reset request lost", lose: lostOnce(topic("reset-requests")), after: grace + time.Minute, kind: reconcile.KindReset},
		{name: "manifest never written (event held)",
			stuck: func(t *testing.T, h *pipelinetest.Harness, round string) {
				// The event the manifest releases is held again, as if the manifest write had been lost.
				id := outbox.ExportedID(round, recRes, resourceJob(t, h, round))
				if _, err := h.Env.Store.Client().Collection("events").Doc(id).Update(h.Ctx, []firestore.Update{
					{Path: "held", Value: true}, {Path: "published", Value: false}}); err != nil {
					t.Fatal(err)
				}
			}, after: grace + time.Minute, kind: reconcile.KindEvents},
		{name: "job older than the maximum age", env: map[string]string{"MAX_JOB_AGE": "24h", "MAX_ROUND_AGE": "48h"}, fake: fakeportability.Options{JobDuration: 1000 * time.Hour},
			access: "time-based-30d", lose: pollTask, after: 25 * time.Hour, kind: reconcile.KindJobAge,
			want: store.ResFailed, wantReason: "it was cancelled"},
		{name: "one-time job older than the maximum age (Google refuses to cancel)", env: map[string]string{"MAX_JOB_AGE": "24h", "MAX_ROUND_AGE": "48h"}, fake: fakeportability.Options{JobDuration: 1000 * time.Hour},
			lose: pollTask, after: 25 * time.Hour, kind: reconcile.KindJobAge,
			want: store.ResFailed, wantReason: "Google did not cancel it"},
		{name: "round older than the maximum age", env: map[string]string{"MAX_JOB_AGE": "24h", "MAX_ROUND_AGE": "48h"},
			lose: topic("initiate-requests"), after: 49 * time.Hour, kind: reconcile.KindRoundAge,
			want: store.ResFailed, wantReason: "did not finish within"},
		{name: "next round's task lost", access: "time-based-30d", env: map[string]string{"TIME_BASED_HORIZON": "48h"},
			lose: lostOnce(nextRoundTask), after: 25*time.Hour + grace, kind: reconcile.KindInitiate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"INITIATE_LEASE": "1m"}
			for k, v := range tc.env {
				env[k] = v
			}
			h := pipelinetest.New(t, pipelinetest.Options{Fake: tc.fake, Env: env})
			access := tc.access
			if access == "" {
				access = "one-time"
			}
			if tc.failJobs > 0 {
				if err := h.Fake.InjectFault(fakeportability.Fault{Resource: recRes, FailNextJobs: tc.failJobs}); err != nil {
					t.Fatal(err)
				}
			}
			round := h.Consent("u", []string{recRes}, access)
			h.Lose = tc.lose
			st := h.Run(500)
			if tc.stuck != nil {
				tc.stuck(t, h, round)
				time.Sleep(5 * time.Millisecond) // a 1 ms lease of the crashed claim runs out
			}
			h.Lose = nil
			if tc.lose != nil && st.Lost == 0 {
				t.Fatal("the test lost no delivery")
			}
			last := lastRound(t, h, "u")
			if last.State == store.RoundClosed && last.ID == round {
				if tc.kind != reconcile.KindEvents {
					t.Fatalf("round %s closed without the reconciler: the test loses nothing that matters", round)
				}
			}

			// Before the deadline nothing is repaired.
			if early := h.Reconcile(time.Now()); len(early.Repairs) != 0 {
				t.Fatalf("repairs before any deadline: %+v", early.Repairs)
			}
			rep := h.Reconcile(h.Later(tc.after))
			if len(rep.Repairs) == 0 || rep.Repairs[0].Kind != tc.kind || rep.Failed != 0 {
				t.Fatalf("repairs %+v (failed %d), want one of kind %s\nlogs:\n%s", rep.Repairs, rep.Failed, tc.kind, h.Logs.String())
			}
			if !strings.Contains(h.Logs.String(), `"message":"reconcile.repair","kind":"`+tc.kind+`"`) &&
				!strings.Contains(h.Logs.String(), `"kind":"`+tc.kind+`"`) {
				t.Errorf("no reconcile.repair log line of kind %s", tc.kind)
			}
			h.Run(1000)
			if tc.kind == reconcile.KindInitiate && tc.name == "next round's task lost" {
				round = store.RoundID("u", 2)
			}
			r, err := h.Env.Store.GetRound(h.Ctx, round)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != store.RoundClosed {
				t.Fatalf("round %s is %s after the repair, want closed\nlogs:\n%s", round, r.State, h.Logs.String())
			}
			res, err := h.Env.Store.GetResource(h.Ctx, round, recRes)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == "" {
				want = store.ResDone
			}
			if res.State != want || !strings.Contains(res.Reason, tc.wantReason) {
				t.Fatalf("resource %s (%q), want %s with %q", res.State, res.Reason, want, tc.wantReason)
			}
			if want == store.ResDone {
				h.VerifyExports("u")
			}
			// Once healed, a later run finds nothing more to repair.
			if again := h.Reconcile(h.Later(tc.after)); len(again.Repairs) != 0 {
				t.Fatalf("repairs after healing: %+v", again.Repairs)
			}
		})
	}
}

func resourceJob(t *testing.T, h *pipelinetest.Harness, round string) string {
	t.Helper()
	res, err := h.Env.Store.GetResource(h.Ctx, round, recRes)
	if err != nil {
		t.Fatal(err)
	}
	return res.Job
}

func lastRound(t *testing.T, h *pipelinetest.Harness, user string) store.Round {
	t.Helper()
	rs, err := h.Env.Store.UserRounds(h.Ctx, user)
	if err != nil || len(rs) == 0 {
		t.Fatalf("rounds of %s: %v", user, err)
	}
	return rs[0]
}

// TestReconcilerRetention deletes a closed round and everything below it once ROUND_RETENTION has passed,
// and nothing before.
func TestReconcilerRetention(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Env: map[string]string{"ROUND_RETENTION": "240h"}})
	round := h.Consent("u", []string{recRes}, "one-time")
	h.Run(500)
	if r, err := h.Env.Store.GetRound(h.Ctx, round); err != nil || r.State != store.RoundClosed {
		t.Fatalf("round: %+v %v", r, err)
	}
	if rep := h.Reconcile(h.Later(239 * time.Hour)); len(rep.Expired) != 0 {
		t.Fatalf("expired before the retention: %v", rep.Expired)
	}
	rep := h.Reconcile(h.Later(241 * time.Hour))
	if len(rep.Expired) != 1 || rep.Expired[0] != round || len(rep.Repairs) != 0 {
		t.Fatalf("report %+v, want round %s expired and no repair", rep, round)
	}
	recs, err := h.Env.Store.FindUserRecords(h.Ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !recs.Empty() {
		t.Fatalf("left after retention: %+v", recs)
	}
	// No sub-collection survives its round (TTL would leave these behind).
	for _, col := range []string{"resources", "objects", "parts"} {
		n, err := h.Env.Store.Client().CollectionGroup(col).Documents(h.Ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(n) != 0 {
			t.Errorf("%d %s documents left", len(n), col)
		}
	}
}

// TestReconcilerDryRunChangesNothing: portctl stuck lists what a run would repair and changes nothing.
func TestReconcilerDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{})
	round := h.Consent("u", []string{recRes}, "one-time")
	h.Lose = lostOnce(topic("archive-jobs"))
	h.Run(500)
	rec, err := reconcile.New(h.Env, reconcile.Options{DryRun: true, Now: func() time.Time { return h.Later(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := rec.Run(h.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Repairs) != 1 || rep.Repairs[0].Kind != reconcile.KindPoll || rep.Repairs[0].Round != round {
		t.Fatalf("dry run found %+v", rep.Repairs)
	}
	if h.Bus.Pending() != 0 {
		t.Fatalf("a dry run queued %d deliveries", h.Bus.Pending())
	}
	if strings.Contains(h.Logs.String(), "reconcile.repair") {
		t.Fatal("a dry run logged a repair")
	}
}

// claimInitiate claims the initiate of the round's resource as a delivery that then died would have, and
// when set is given, records what that delivery wrote next (set changes the claimed resource).
func claimInitiate(t *testing.T, h *pipelinetest.Harness, round string, set func(*store.Resource)) {
	t.Helper()
	if c, err := h.Env.Store.ClaimInitiate(h.Ctx, round, recRes, time.Minute, false); err != nil || !c.Won {
		t.Fatalf("claim: %v %v", c.Won, err)
	}
	if set == nil {
		return
	}
	if _, err := h.Env.Store.Transition(h.Ctx, round, recRes, []store.ResourceState{store.ResInitiating}, "", set); err != nil {
		t.Fatal(err)
	}
}

// refusedByGoogle ends the resource as an initiate that Google refused.
func refusedByGoogle(r *store.Resource) {
	r.State, r.Reason = store.ResFailed, "Google refused the export: test"
}
