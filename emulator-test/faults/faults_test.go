package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/store"
)

const (
	search  = "myactivity.search"
	youtube = "myactivity.youtube"
	subs    = "youtube.subscriptions"
	reviews = "maps.reviews"
)

func users(ids ...string) []User {
	out := make([]User, len(ids))
	for i, id := range ids {
		out[i] = User{ID: id, Resources: []string{search, subs}}
	}
	return out
}

func want(t *testing.T, tally *Tally, state store.ResourceState, n int) {
	t.Helper()
	if tally.Resources[string(state)] != n {
		t.Errorf("%d resources ended %s, want %d (all: %v)", tally.Resources[string(state)], state, n, tally.Resources)
	}
}

// Every push and every task arrives three times, the copies late and out of order; a malformed message
// on every topic must end in that topic's dead-letter subscription, once, and nothing else may (TestMain
// waits for the poison messages, which take about a minute).
func TestDeliveredThreeTimesOutOfOrder(t *testing.T) {
	s := begin(t)
	var poison []Step
	for _, r := range stack.Routes {
		poison = append(poison, PoisonStep(r.Topic))
	}
	tally := s.run(Scenario{Name: "x3", Users: users("tri", "tre"), Copies: 3, After: poison})
	want(t, tally, store.ResDone, 4)
	if st.DuplicatePushes() == 0 {
		t.Error("no push was duplicated")
	}
}

// The Transfer process is SIGKILLed while parts are being copied, and started again.
func TestTransferKilledMidPart(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "kill transfer", Users: users("kit"), After: []Step{KillTransferMidPart()}})
	want(t, tally, store.ResDone, 2)
	if tally.Faults[KindKillTransfer] != 1 {
		t.Error("the Transfer process was not killed mid-part")
	}
}

// Each other consumer is killed at the stage where it works, in one round delivered twice.
func TestOtherFunctionsKilled(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "kill others", Users: users("kol"), Copies: 2, After: []Step{
		KillWhen("PollTask", store.ResExporting), KillWhen("PollStart", store.ResExporting),
		KillWhen("Reset", store.ResTransferring, store.ResDone)}})
	want(t, tally, store.ResDone, 2)
}

// The Pub/Sub emulator goes down and comes back (topology recreated) while jobs are being polled.
func TestPubSubRestarted(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "pubsub restart", Users: users("pia"), After: []Step{RestartPubSub()}})
	want(t, tally, store.ResDone, 2)
}

// The Firestore emulator goes down and comes back with its data while jobs are polled or transferred.
func TestFirestoreRestarted(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "firestore restart", Users: users("fran"), Exclusive: true, After: []Step{RestartFirestore()}})
	want(t, tally, store.ResDone, 2)
	if tally.Faults[KindFirestore] != 1 {
		t.Error("the Firestore emulator was not restarted mid-round")
	}
}

// Bursts of 429, 500 and 503 and slow answers on every method the pipeline calls, a failing retry, a
// refused reset, and a token refresh that fails once.
func TestAPIBurstsOnEveryMethod(t *testing.T) {
	s := begin(t)
	var before []Step
	for _, m := range []string{fakeportability.MethodInitiate, fakeportability.MethodGetState, fakeportability.MethodRetry, fakeportability.MethodReset, fakeportability.MethodCancel} {
		before = append(before, MethodFault(m, 429, 0, 1), MethodFault(m, 500, 0, 1), MethodFault(m, 503, 0, 1), MethodFault(m, 0, 1500, 1))
	}
	// accessType.check is called by the callback, which retries it within the request.
	before = append(before, MethodFault(fakeportability.MethodCheck, 503, 0, 1), MethodFault(fakeportability.MethodCheck, 0, 1000, 1))
	before = append(before, JobFault(search, 1, 0)) // so that :retry is called
	tally := s.run(Scenario{Name: "api bursts", Users: users("abe"), Before: before, After: []Step{TokenFailsOnce()}})
	want(t, tally, store.ResDone, 2)
	if tally.Retries != 1 {
		t.Errorf("%d retries, want 1", tally.Retries)
	}
}

// A signed URL expires while a part is copied, a connection is cut mid-body, a byte is corrupted: the
// URL is refreshed, the part resumed, the corruption caught and the file copied again.
func TestBrokenDownloads(t *testing.T) {
	s := begin(t)
	cut, at := int64(300_000), int64(42)
	// Download faults are taken in order by every GET, the poller's one-byte probes (four: two jobs of two
	// files) included: the corruption outlasts them and lands on the first parts copied (each covering
	// offset 42), then the next download is cut.
	tally := s.run(Scenario{Name: "downloads", Users: users("dora"), Before: []Step{
		DownloadFault(KindCorrupt, fakeportability.DownloadFault{CorruptAt: &at, Count: 6}),
		DownloadFault(KindCut, fakeportability.DownloadFault{CutAfterBytes: &cut}),
	}, After: []Step{ExpireURLsMidPart(6)}})
	want(t, tally, store.ResDone, 2)
	logs, _ := st.Logs()
	for _, line := range []string{"signed URLs refreshed", "failed verification"} {
		if !contains(logs, line) {
			t.Errorf("logs lack %q: the fault did not bite", line)
		}
	}
}

// Jobs FAILED once (retried), three times (retried to the limit, then exported), four times (reported
// failed) and CANCELLED (reported cancelled).
func TestJobOutcomes(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "jobs", Users: []User{
		{ID: "jo", Resources: []string{search, youtube}},
		{ID: "jay", Resources: []string{subs, reviews}},
	}, Before: []Step{JobFault(search, 1, 0), JobFault(youtube, 3, 0), JobFault(reviews, 4, 0), JobFault(subs, 0, 1)}})
	want(t, tally, store.ResDone, 2)
	want(t, tally, store.ResFailed, 1)
	want(t, tally, store.ResCancelled, 1)
	if tally.Retries != 1+3+3 {
		t.Errorf("%d retries, want 7", tally.Retries)
	}
}

// A running one-time job of the same resource answers 409 and is adopted; a time-based resource exported
// an hour ago answers 429 with timestamp_after_24hrs and is exported a day later.
func TestRunningJobAndCooldown(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "409", Users: []User{{ID: "ada", Resources: []string{search, subs}, ExternalJobs: 1}},
		Before: []Step{ExternalJob(search, "one-time")}})
	want(t, tally, store.ResDone, 2)
	s2 := begin2(t, s)
	tally = s2.run(Scenario{Name: "cooldown", Users: []User{{ID: "cole", Resources: []string{search, subs}, Access: "time-based-30d", ExternalJobs: 1}},
		Before: []Step{ExternalJob(search, "time-based-30d")}})
	want(t, tally, store.ResDone, 4) // two rounds of two resources
	first, err := st.Store().ListResources(s.ctx, store.RoundID("cole", 1))
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]store.Resource{}
	for _, r := range first {
		exported[r.Name] = r
	}
	if d := exported[search].ExportTime.Sub(exported[subs].ExportTime); d < 23*time.Hour {
		t.Errorf("search exported %s after subs in round 1: the cooldown was not honoured", d)
	}
}

// begin2 starts a second scenario in the same test on a fresh tally (the stack is not cleared).
func begin2(t *testing.T, s *suite) *suite {
	return &suite{t: t, ctx: s.ctx, tasksFailed: TasksFailed(st),
		env: &Env{St: st, T: NewTally(), DL: deadLetters, CloseWithin: s.env.CloseWithin, Log: t.Logf}}
}

// One user withdraws consent while their jobs run (401 everywhere); another user of the same round of
// tests is not affected.
func TestConsentRevokedMidRound(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "revoke", Users: []User{
		{ID: "rex", Resources: []string{search, subs}, Revoked: true},
		{ID: "ray", Resources: []string{youtube}},
	}, After: []Step{RevokeMidRound()}})
	if tally.Resources[string(store.ResDone)] < 1 || tally.Resources[string(store.ResFailed)] < 1 {
		t.Errorf("resources %v: want ray's done and rex's failed", tally.Resources)
	}
	rep, _ := st.Store().ListResources(s.ctx, store.RoundID("rex", 1))
	for _, r := range rep {
		if r.State == store.ResFailed && !contains(r.Reason, "consent") {
			t.Errorf("rex's %s failed for %q, want a reason naming the consent", r.Name, r.Reason)
		}
	}
}

// Everything at once: duplicated deliveries, a killed poller, 503s, a corrupted download, a failed job,
// for two users.
func TestMixed(t *testing.T) {
	s := begin(t)
	at := int64(7)
	tally := s.run(Scenario{Name: "mixed", Users: users("mia", "max"), Copies: 2,
		Before: []Step{MethodFault(fakeportability.MethodGetState, 503, 0, 3), MethodFault(fakeportability.MethodInitiate, 500, 0, 2),
			DownloadFault(KindCorrupt, fakeportability.DownloadFault{CorruptAt: &at}), JobFault(subs, 1, 0)},
		After: []Step{KillWhen("PollTask", store.ResExporting, store.ResRetrying), KillTransferMidPart()}})
	want(t, tally, store.ResDone, 4)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// Cloud Storage refuses the pipeline's own writes: 429 and 503 on uploads and composes, a compose that
// is done but answered 503, a 412 on an upload. Every file still lands once, verified.
func TestCloudStorageFaults(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "storage faults", Users: users("gina"), Before: []Step{
		StorageFault(KindGCSUpload429, stack.GCSFault{Op: stack.GCSUpload, Status: 429, Count: 2}),
		StorageFault(KindGCSUpload503, stack.GCSFault{Op: stack.GCSUpload, Status: 503, Count: 2}),
		StorageFault(KindPrecondition, stack.GCSFault{Op: stack.GCSUpload, Status: 412}),
		StorageFault(KindGCSCompose429, stack.GCSFault{Op: stack.GCSCompose, Status: 429}),
		StorageFault(KindGCSCompose503, stack.GCSFault{Op: stack.GCSCompose, Status: 503}),
		StorageFault(KindComposeHalfway, stack.GCSFault{Op: stack.GCSCompose, Status: 503, Halfway: true}),
	}})
	want(t, tally, store.ResDone, 2)
	taken := st.GCSFaultsTaken()
	for _, k := range []string{"upload 429", "upload 503", "upload 412", "compose 429", "compose 503"} {
		if taken[k] == 0 {
			t.Errorf("storage fault %q never answered (taken: %v)", k, taken)
		}
	}
}

// Odd answers of Cloud Storage and the API that the pipeline survives: URLs shuffled on every state
// call, COMPLETE without URLs once, no x-goog-hash, no Content-Length, then mid-transfer a 403
// AccessDenied, a short 206 and a server ignoring Range.
func TestOddAnswersSurvived(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "odd answers", Users: users("otto"), Before: []Step{
		StateFault(KindShuffle, fakeportability.StateFault{ShuffleURLs: true, Count: 1000}),
		StateFault(KindNoURLs, fakeportability.StateFault{NoURLs: true}),
		DownloadFault(KindNoHash, fakeportability.DownloadFault{NoHash: true, Count: 3}),
		DownloadFault(KindNoLength, fakeportability.DownloadFault{NoContentLength: true, Count: 3}),
	}, After: []Step{
		DuringTransfer(DownloadFault(KindAccessDenied, fakeportability.DownloadFault{Status: 403, Code: "AccessDenied"})),
		DuringTransfer(DownloadFault(KindShort206, fakeportability.DownloadFault{ShortBy: 777})),
		DuringTransfer(DownloadFault(KindRangeIgnored, fakeportability.DownloadFault{IgnoreRange: true, Count: 2})),
	}})
	want(t, tally, store.ResDone, 2)
}

// Answers no retry can change end the resources visibly, with a reason, and the round and the reset
// still end: a 302 to another host, a job gone at Google, the app removed (invalid_grant).
func TestOddAnswersEndResources(t *testing.T) {
	s := begin(t)
	tally := s.run(Scenario{Name: "redirect", Users: users("rex"), Before: []Step{
		DownloadFault(KindRedirect, fakeportability.DownloadFault{RedirectTo: "http://elsewhere.invalid/a.zip", Count: 1000})}})
	want(t, tally, store.ResFailed, 2)
	tally = s.run(Scenario{Name: "job gone", Users: users("gil"), Before: []Step{
		MethodFaultKind(KindJobGone, fakeportability.MethodGetState, 404, 1000)}})
	want(t, tally, store.ResFailed, 4) // the tally adds up the test's scenarios
	u := users("ivy")
	u[0].Revoked = true
	tally = s.run(Scenario{Name: "invalid grant", Users: u, After: []Step{DuringTransfer(InvalidGrant())}})
	// The fault bites at the next token refresh: mid-copy the resources fail with a reason; when both were
	// copied first, it bites at the reset and they end done. Either way the suite's invariants (every
	// resource done or failed with a reason, the round and the grant closed) hold, and the refusal is logged.
	if tally.Resources[string(store.ResFailed)] < 5 {
		t.Logf("invalid_grant bit after ivy's files were copied: her resources ended done (all: %v)", tally.Resources)
	}
	logs, _ := st.Logs()
	if !contains(logs, `"message":"token.refresh_failed"`) || !contains(logs, `"reason":"invalid_grant"`) {
		t.Error("no token.refresh_failed line with reason invalid_grant in the functions' logs")
	}
}
