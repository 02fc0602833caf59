package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/internal/operator"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/purge"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/trace"
)

var (
	opOnce sync.Once
	op     *operator.Operator
	opErr  error
)

// portctl returns the operator built as cmd/portctl builds it: setup.New from the environment the
// functions get (what devstack -keep-running exports).
func portctl(t *testing.T, ctx context.Context) *operator.Operator {
	t.Helper()
	opOnce.Do(func() {
		for _, kv := range st.FunctionEnv() {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
		op, opErr = operator.New(context.Background())
		if opErr == nil {
			op.PullWait = 2 * time.Second
		}
	})
	if opErr != nil {
		t.Fatalf("portctl on the stack: %v", opErr)
	}
	return op
}

// run runs a portctl command line and returns its output.
func run(t *testing.T, ctx context.Context, asJSON bool, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := operator.Run(ctx, portctl(t, ctx), &out, asJSON, args)
	return out.String(), err
}

func mustRun(t *testing.T, ctx context.Context, asJSON bool, args ...string) string {
	t.Helper()
	out, err := run(t, ctx, asJSON, args...)
	if err != nil {
		t.Fatalf("portctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// grantWithoutMessage records what the callback records (token, grant, first round) but publishes nothing,
// as when the callback's publish failed. It returns the round.
func grantWithoutMessage(t *testing.T, ctx context.Context, user string, resources []string) string {
	t.Helper()
	o := portctl(t, ctx)
	tok, err := st.Fake.Grant(fakeportability.GrantRequest{User: stack.Account(user), Resources: resources, Access: "one-time"})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Env.Tokens.Save(ctx, user, &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		TokenType: "Bearer", Expiry: time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)}); err != nil {
		t.Fatal(err)
	}
	r, err := o.Env.Store.StartGrant(ctx, store.NewGrant{User: user, Access: store.AccessOneTime, Granted: resources})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// quiet waits until no task runs and no push is delivered for a while.
func quiet(t *testing.T, ctx context.Context) {
	t.Helper()
	calm := 0
	for calm < 8 {
		if st.Tasks.Busy() {
			calm = 0
		} else {
			calm++
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func TestPortctlUsersShowAndPurgeAfterOneTimeRound(t *testing.T) {
	ctx := begin(t)
	signIn(t, ctx, "ola", three, stack.Consent{Access: "one-time"})
	signIn(t, ctx, "oli", []string{search}, stack.Consent{Access: "one-time"})
	settle(t, ctx, "ola", "oli")

	table := mustRun(t, ctx, false, "users")
	if !strings.Contains(table, "USER") || !strings.Contains(table, "ola") || !strings.Contains(table, "3/3") {
		t.Errorf("users table:\n%s", table)
	}
	var rows []operator.UserRow
	if err := json.Unmarshal([]byte(mustRun(t, ctx, true, "users")), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("users -json: %v %+v", err, rows)
	}
	if rows[0].User != "ola" || rows[0].State != "closed" || rows[0].RoundState != store.RoundClosed {
		t.Errorf("row %+v", rows[0])
	}
	show := mustRun(t, ctx, false, "show", "ola")
	for _, want := range three {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %s:\n%s", want, show)
		}
	}
	var d operator.UserDetail
	if err := json.Unmarshal([]byte(mustRun(t, ctx, true, "show", "ola")), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Rounds) != 1 || len(d.Rounds[0].Resources) != 3 || d.HasToken {
		t.Fatalf("show -json: %+v", d)
	}
	for _, r := range d.Rounds[0].Resources {
		if r.State != store.ResDone || len(r.Objects) != 2 || r.Objects[0].PartsDone != r.Objects[0].Parts {
			t.Errorf("%s: %s with %d files", r.Name, r.State, len(r.Objects))
		}
	}
	t.Logf("portctl users:\n%s\nportctl show ola:\n%s", table, show)

	var rep purge.Report
	if err := json.Unmarshal([]byte(mustRun(t, ctx, true, "purge", "ola")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Grant != purge.GrantNoToken || rep.Objects < 6 || rep.Documents == 0 {
		t.Errorf("purge report %+v; want no token (reset already), 6 archive files and manifests", rep)
	}
	scenario.ExpectNothingOf(t, ctx, st.View(), "ola", true)
	if n := verified(t, ctx, "oli").Verified; n != 2 {
		t.Errorf("oli: %d files verified after ola's purge, want 2", n)
	}
	if _, err := run(t, ctx, false, "purge", "ola"); !errors.Is(err, purge.ErrNothingToPurge) {
		t.Errorf("second purge: %v, want ErrNothingToPurge", err)
	}
	if _, err := run(t, ctx, false, "purge", "never-seen"); !errors.Is(err, purge.ErrNothingToPurge) {
		t.Errorf("purge of an unknown user: %v, want ErrNothingToPurge", err)
	}
	if _, err := run(t, ctx, false, "show", "ola"); !errors.Is(err, operator.ErrNoUser) {
		t.Errorf("show after purge: %v", err)
	}
	if _, err := run(t, ctx, false, "frobnicate"); !errors.Is(err, operator.ErrUsage) {
		t.Errorf("unknown command: %v", err)
	}
}

func TestPurgeMidRound(t *testing.T) {
	ctx := begin(t)
	// Slow downloads keep the transfers going while the purge runs.
	midRound(t, ctx, "mia", 400, "a part copied", func(round string) bool {
		for _, r := range states(t, ctx, round) {
			if r.State == store.ResTransferring {
				p, err := st.Store().TransferProgress(ctx, round, r.Name)
				if err == nil && p.BytesDone > 0 {
					return true
				}
			}
		}
		return false
	})
	rep, err := portctl(t, ctx).Purge(ctx, "mia")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Grant != purge.GrantReset {
		t.Errorf("grant %q %s, want reset", rep.Grant, rep.GrantError)
	}
	quiet(t, ctx)
	time.Sleep(2 * time.Second) // pushes of the purged round still arrive: they must not write anything
	scenario.ExpectNothingOf(t, ctx, st.View(), "mia", false)
	if methods, _ := calls("mia"); methods["reset"] != 1 {
		t.Errorf("%d resets at Google, want 1", methods["reset"])
	}
	logs, _ := st.Logs()
	if !strings.Contains(logs, "was purged during the copy") && !strings.Contains(logs, "does not exist") {
		t.Log("no in-flight message met the purge (it ran between deliveries)")
	}
	t.Logf("purge report %+v", rep)
}

func TestPortctlRetryFailedResource(t *testing.T) {
	ctx := begin(t)
	round := grantWithoutMessage(t, ctx, "rita", []string{search})
	if ok, err := st.Store().Transition(ctx, round, search, []store.ResourceState{store.ResPending}, "", func(r *store.Resource) {
		r.State, r.Reason = store.ResFailed, "Google could not produce this export."
	}); err != nil || !ok {
		t.Fatalf("make %s failed: %v", search, err)
	}
	if out := mustRun(t, ctx, false, "retry", "rita", search); !strings.Contains(out, "pending again") {
		t.Errorf("retry said %q", out)
	}
	settle(t, ctx, "rita")
	if r := states(t, ctx, round)[search]; r.State != store.ResDone {
		t.Errorf("%s after retry: %s %q", search, r.State, r.Reason)
	}
	verified(t, ctx, "rita")
	// The round is closed now (grant reset): a retry is refused.
	if _, err := run(t, ctx, false, "retry", "rita", search); !errors.Is(err, store.ErrNotAllowed) {
		t.Errorf("retry of a done resource in a closed round: %v", err)
	}
}

func TestPortctlCancelTimeBasedJob(t *testing.T) {
	ctx := begin(t)
	signIn(t, ctx, "cat", []string{search}, stack.Consent{Access: "time-based-30d"})
	waitFor(t, ctx, "the job running", func() bool {
		r, err := st.Store().GetResource(ctx, store.RoundID("cat", 1), search)
		return err == nil && r.State == store.ResExporting
	})
	out := mustRun(t, ctx, false, "cancel", "cat", search)
	settle(t, ctx, "cat")
	if r := states(t, ctx, store.RoundID("cat", 1))[search]; r.State != store.ResCancelled {
		t.Errorf("%s: %s %q, want cancelled (%s)", search, r.State, r.Reason, out)
	}
	if methods, _ := calls("cat"); methods["cancel"] != 1 || methods["reset"] != 1 {
		t.Errorf("cancels %d, resets %d; want 1 and 1", methods["cancel"], methods["reset"])
	}
	if _, err := run(t, ctx, false, "cancel", "cat", search); !errors.Is(err, store.ErrNotAllowed) {
		t.Errorf("cancel of a cancelled resource: %v", err)
	}
}

func TestPortctlForcedReset(t *testing.T) {
	ctx := begin(t)
	midRound(t, ctx, "rex", 300, "a job running", func(round string) bool {
		r, err := st.Store().GetResource(ctx, round, search)
		return err == nil && r.Job != ""
	})
	var res operator.ResetOutcome
	if err := json.Unmarshal([]byte(mustRun(t, ctx, true, "reset", "rex")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Grant != purge.GrantReset || res.Round != store.RoundID("rex", 1) {
		t.Errorf("reset %+v", res)
	}
	settle(t, ctx, "rex")
	quiet(t, ctx)
	r, err := st.Store().GetRound(ctx, store.RoundID("rex", 1))
	if err != nil || r.State != store.RoundClosed {
		t.Fatalf("round %+v %v", r, err)
	}
	if methods, _ := calls("rex"); methods["reset"] != 1 {
		t.Errorf("%d resets at Google, want 1", methods["reset"])
	}
	if d, err := portctl(t, ctx).Show(ctx, "rex"); err != nil || d.HasToken {
		t.Errorf("token after a forced reset: %v", err)
	}
}

func TestPortctlReplayInitiate(t *testing.T) {
	ctx := begin(t)
	round := grantWithoutMessage(t, ctx, "ivy", []string{search, subs})
	mustRun(t, ctx, false, "replay-initiate", "ivy", round)
	settle(t, ctx, "ivy")
	expectOneTimeDone(t, ctx, "ivy", []string{search, subs}, 2)
	if _, err := run(t, ctx, false, "replay-initiate", "ivy", round); !errors.Is(err, store.ErrNotAllowed) {
		t.Errorf("replay of a closed round: %v", err)
	}
}

func TestPortctlReplayDeadLetters(t *testing.T) {
	ctx := begin(t)
	round := grantWithoutMessage(t, ctx, "dex", []string{search})
	// The initiate request ended in the dead-letter topic (as after too many failed deliveries).
	data, err := messages.Encode(&messages.InitiateRequest{V: messages.Version, User: "dex", Round: round})
	if err != nil {
		t.Fatal(err)
	}
	// A trace of the message's own (what a step published before the message dead-lettered).
	traceID := fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
	if _, err := st.PubSubClient.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{
		Topic:    "projects/" + st.Project + "/topics/initiate-requests" + operator.DeadLetterSuffix,
		Messages: []*pubsubpb.PubsubMessage{{Data: data, Attributes: map[string]string{trace.Header: "00-" + traceID + "-00f067aa0ba902b7-01"}}},
	}); err != nil {
		t.Fatal(err)
	}
	var got []operator.Replayed
	if err := json.Unmarshal([]byte(mustRun(t, ctx, true, "replay-dead-letters")), &got); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, r := range got {
		total += r.Messages
		if r.Topic == "initiate-requests" && r.Messages != 1 {
			t.Errorf("initiate-requests: %d replayed, want 1", r.Messages)
		}
	}
	if total != 1 || len(got) != 4 {
		t.Errorf("replayed %+v, want 1 message over the 4 topics", got)
	}
	settle(t, ctx, "dex")
	expectOneTimeDone(t, ctx, "dex", []string{search}, 2)
	// The replayed message kept its trace: the initiate step logged under it.
	logs, _ := st.Logs()
	if !strings.Contains(logs, "/traces/"+traceID) {
		t.Error("the replayed message lost its trace")
	}
	if out := mustRun(t, ctx, false, "replay-dead-letters", "initiate-requests"); !strings.Contains(out, "initiate-requests  0") {
		t.Errorf("second replay:\n%s", out)
	}
}

// TestOneTracePerJourney follows one person from the callback to the reset: every log line about the
// person, in every function's process, carries the same trace (Cloud Logging's trace field), and each
// line of a delivery its span.
func TestOneTracePerJourney(t *testing.T) {
	ctx := begin(t)
	signIn(t, ctx, "tru", []string{search, subs}, stack.Consent{Access: "one-time"})
	settle(t, ctx, "tru")
	traces := map[string]int{}
	entries := map[string]bool{}
	states := 0
	for _, entry := range stack.Entries {
		data, err := os.ReadFile(st.Functions[entry].Log)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil || m["user"] != "tru" {
				continue
			}
			tr, _ := m[trace.KeyTrace].(string)
			if tr == "" || m[trace.KeySpan] == nil {
				t.Errorf("%s: line without trace: %s", entry, line)
				continue
			}
			// The journey starts at the callback; the start and consent pages before it are requests of
			// their own.
			if entry == "OAuthCallback" && m["round"] == nil {
				continue
			}
			traces[tr]++
			entries[entry] = true
			if m["event"] == store.LogResourceState {
				states++
				if m["from"] == nil || m["to"] == nil || m["round"] == nil || m["resource"] == nil {
					t.Errorf("state line without from/to/round/resource: %s", line)
				}
			}
		}
	}
	if len(traces) != 1 {
		t.Errorf("the journey spans %d traces: %v", len(traces), traces)
	}
	// PollStart only enqueues the first check: it logs nothing when all goes well.
	for _, e := range []string{"OAuthCallback", "Initiate", "PollTask", "Transfer", "Reset"} {
		if !entries[e] {
			t.Errorf("no traced line of tru from %s", e)
		}
	}
	// pending → initiating → exporting → transferring → done, for each of two resources.
	if states < 8 {
		t.Errorf("%d resource.state lines, want at least 8", states)
	}
	t.Logf("traces %v over %d entries, %d resource.state lines", traces, len(entries), states)
}
