package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/faults"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

const search, youtube, subs = scenario.Search, scenario.YouTube, scenario.Subscriptions

var three = scenario.Three()

// expectOneTimeDone checks a one-time user whose every resource was exported: one initiate per resource,
// one reset, every file verified, the token destroyed, the round closed.
func expectOneTimeDone(t *testing.T, ctx context.Context, user string, resources []string, urlsPerJob int) {
	t.Helper()
	rep := verified(t, ctx, user)
	if want := len(resources) * urlsPerJob; rep.Verified != want {
		t.Errorf("%s: %d objects verified, want %d", user, rep.Verified, want)
	}
	methods, by := calls(user)
	for _, r := range resources {
		if by[r] != 1 {
			t.Errorf("%s: %s initiated %d times, want 1", user, r, by[r])
		}
	}
	if methods["reset"] != 1 {
		t.Errorf("%s: %d resets, want 1", user, methods["reset"])
	}
	if _, err := tokens.NewStore(st.FirestoreClient, nil, nil).Load(ctx, user); err != tokens.ErrNoToken {
		t.Errorf("%s: token still stored (%v)", user, err)
	}
	r, err := st.Store().GetRound(ctx, store.RoundID(user, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.RoundClosed || r.Outcome != "reset" {
		t.Errorf("%s: round %s/%q, want closed by reset", user, r.State, r.Outcome)
	}
}

func TestOneTimeRoundWithMultiURLJobs(t *testing.T) {
	ctx := begin(t)
	for _, u := range []string{"ana", "ben"} {
		if p := signIn(t, ctx, u, three, stack.Consent{Access: "one-time"}); p.Status != 200 {
			t.Fatalf("callback answered %d: %s", p.Status, p.Body)
		}
	}
	settle(t, ctx, "ana", "ben")
	for _, u := range []string{"ana", "ben"} {
		expectOneTimeDone(t, ctx, u, three, 2)
	}
}

func TestTimeBasedGrantOverItsLife(t *testing.T) {
	ctx := begin(t)
	signIn(t, ctx, "tia", []string{search, subs}, stack.Consent{Access: "time-based-30d"})
	settle(t, ctx, "tia")
	rep := verified(t, ctx, "tia")
	// TIME_BASED_HORIZON is 72h: a round a day for three days, then the reset.
	if rep.Rounds != 3 || rep.Verified != 3*2*2 {
		t.Errorf("%d rounds, %d objects verified; want 3 rounds, 12 objects", rep.Rounds, rep.Verified)
	}
	methods, by := calls("tia")
	if by[search] != 3 || by[subs] != 3 || methods["reset"] != 1 {
		t.Errorf("initiates %v, resets %d; want 3 per resource and 1 reset", by, methods["reset"])
	}
	var prev time.Time
	for n := 1; n <= 3; n++ {
		r := states(t, ctx, store.RoundID("tia", n))[search]
		if n > 1 && r.ExportTime.Sub(prev) < 24*time.Hour {
			t.Errorf("round %d exported %s after round %d: less than a day", n, r.ExportTime.Sub(prev), n-1)
		}
		prev = r.ExportTime
	}
}

func TestJobFailsOnceAndIsRetried(t *testing.T) {
	ctx := begin(t)
	inject(t, fakeportability.Fault{Resource: search, FailNextJobs: 1})
	signIn(t, ctx, "fay", three, stack.Consent{Access: "one-time"})
	settle(t, ctx, "fay")
	expectOneTimeDone(t, ctx, "fay", three, 2)
	methods, _ := calls("fay")
	if methods["retry"] != 1 {
		t.Errorf("%d retries, want 1", methods["retry"])
	}
	if r := states(t, ctx, store.RoundID("fay", 1))[search]; r.Retries != 1 || len(r.Jobs) != 2 {
		t.Errorf("search: %d retries over jobs %v, want 1 retry and 2 jobs", r.Retries, r.Jobs)
	}
}

func TestJobFailsFourTimesAndIsReported(t *testing.T) {
	ctx := begin(t)
	inject(t, fakeportability.Fault{Resource: search, FailNextJobs: 4})
	signIn(t, ctx, "gus", three, stack.Consent{Access: "one-time"})
	settle(t, ctx, "gus")
	res := states(t, ctx, store.RoundID("gus", 1))
	if r := res[search]; r.State != store.ResFailed || !strings.Contains(r.Reason, "failed 4 times") {
		t.Errorf("search: %s %q, want failed after 4 failures", r.State, r.Reason)
	}
	methods, _ := calls("gus")
	if methods["retry"] != 3 || methods["reset"] != 1 {
		t.Errorf("retries %d resets %d, want 3 and 1", methods["retry"], methods["reset"])
	}
	if rep := verified(t, ctx, "gus"); rep.Verified != 4 {
		t.Errorf("%d objects verified, want the other two resources' 4", rep.Verified)
	}
}

func TestSignedURLExpiresMidTransfer(t *testing.T) {
	ctx := begin(t)
	// Slow downloads leave time to age the URLs while the parts are being copied.
	midRound(t, ctx, "uri", 300, "a resource transferring", func(round string) bool {
		for _, r := range states(t, ctx, round) {
			if r.State == store.ResTransferring {
				return true
			}
		}
		return false
	})
	st.Fake.Clock().Advance(7 * time.Hour) // past the 6 h lifetime of every URL handed out so far
	settle(t, ctx, "uri")
	expectOneTimeDone(t, ctx, "uri", three, 2)
	logs, _ := st.Logs()
	if !strings.Contains(logs, "signed URLs refreshed") {
		t.Error("no transfer refreshed its signed URLs")
	}
}

func TestPartialConsent(t *testing.T) {
	ctx := begin(t)
	signIn(t, ctx, "pat", three, stack.Consent{Access: "one-time", Tick: []string{search, subs}})
	settle(t, ctx, "pat")
	res := states(t, ctx, store.RoundID("pat", 1))
	if res[youtube].State != store.ResNotGranted || res[search].State != store.ResDone || res[subs].State != store.ResDone {
		t.Errorf("states %s/%s/%s, want youtube not granted, the others done", res[search].State, res[youtube].State, res[subs].State)
	}
	if _, by := calls("pat"); by[youtube] != 0 {
		t.Errorf("an ungranted resource was initiated %d times", by[youtube])
	}
	expectOneTimeDone(t, ctx, "pat", []string{search, subs}, 2)
}

func TestDeniedConsent(t *testing.T) {
	ctx := begin(t)
	page := signIn(t, ctx, "dan", three, stack.Consent{Deny: true})
	if !strings.Contains(page.Body, "did not allow") {
		t.Errorf("page after deny: %d %.300s", page.Status, page.Body)
	}
	if _, err := st.Store().GetUser(ctx, "dan"); err == nil {
		t.Error("a denied consent recorded a user")
	}
	if _, err := tokens.NewStore(st.FirestoreClient, nil, nil).Load(ctx, "dan"); err != tokens.ErrNoToken {
		t.Errorf("a denied consent stored a token (%v)", err)
	}
	if methods, _ := calls("dan"); methods["initiate"] != 0 {
		t.Error("a denied consent initiated an export")
	}
}

// apiAs returns a Data Portability client acting with a fresh consent of the user's account, as another
// app (or an earlier session) would.
func apiAs(t *testing.T, ctx context.Context, user string, resources []string, access string) portability.API {
	t.Helper()
	tok, err := st.Fake.Grant(fakeportability.GrantRequest{User: stack.Account(user), Resources: resources, Access: access})
	if err != nil {
		t.Fatal(err)
	}
	hc := oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken}))
	api, err := portability.New(ctx, st.FakeURL+"/", hc)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func TestRunningJobAdoptedFrom409(t *testing.T) {
	ctx := begin(t)
	running, err := apiAs(t, ctx, "ada", []string{search}, "one-time").Initiate(ctx, []string{search})
	if err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, "ada", three, stack.Consent{Access: "one-time"})
	settle(t, ctx, "ada")
	if r := states(t, ctx, store.RoundID("ada", 1))[search]; r.Job != running.Job || r.State != store.ResDone {
		t.Errorf("search: job %s (%s), want the running job %s adopted", r.Job, r.State, running.Job)
	}
	verified(t, ctx, "ada")
}

func TestTimeBasedCooldownHonoured(t *testing.T) {
	ctx := begin(t)
	if _, err := apiAs(t, ctx, "cole", []string{search}, "time-based-30d").Initiate(ctx, []string{search}); err != nil {
		t.Fatal(err)
	}
	st.Fake.Clock().Advance(time.Minute) // that export completes: search may not be exported again for 24 h
	signIn(t, ctx, "cole", []string{search, subs}, stack.Consent{Access: "time-based-30d"})
	settle(t, ctx, "cole")
	first := states(t, ctx, store.RoundID("cole", 1))
	if first[search].State != store.ResDone || first[search].ExportTime.Sub(first[subs].ExportTime) < 23*time.Hour {
		t.Errorf("round 1: search %s exported at %s, subs at %s; want search a day later", first[search].State, first[search].ExportTime, first[subs].ExportTime)
	}
	verified(t, ctx, "cole")
}

func TestEveryMessageDeliveredTwice(t *testing.T) {
	ctx := begin(t)
	st.DeliverTwice(true)
	dupTasks := st.Tasks.Stats().Duplicates
	for _, u := range []string{"dot", "dee"} {
		signIn(t, ctx, u, three, stack.Consent{Access: "one-time"})
	}
	settle(t, ctx, "dot", "dee")
	for _, u := range []string{"dot", "dee"} {
		expectOneTimeDone(t, ctx, u, three, 2)
	}
	if st.DuplicatePushes() == 0 || st.Tasks.Stats().Duplicates == dupTasks {
		t.Errorf("no duplicates were delivered (pushes %d, tasks %d)", st.DuplicatePushes(), st.Tasks.Stats().Duplicates-dupTasks)
	}
}

func TestNoSecretInLogs(t *testing.T) {
	ctx := begin(t)
	signIn(t, ctx, "sam", []string{search}, stack.Consent{Access: "one-time"})
	settle(t, ctx, "sam")
	logs, err := st.Logs()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"sig=", "access_token", "refresh_token", "fake-client-secret", string(st.StartLinkKey), "code_verifier", "ya29"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	// The real values: every token, code, verifier, ID token and signed URL the fake handed out or
	// received so far in this test binary (function logs accumulate across tests; TestMain scans once more
	// after the last test).
	issued := st.Fake.IssuedSecrets()
	if len(issued) == 0 {
		t.Error("the fake recorded no secret: the scan proves nothing")
	}
	for _, f := range faults.FindSecrets(logs, issued, nil) {
		t.Errorf("logs contain a secret: %s", f)
	}
	if os.Getenv("E2E_SHOW_LOGS") != "" {
		t.Log(logs)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
