package pipelinetest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/store"
)

func ptr[T any](v T) *T { return &v }

// want is what a scenario must leave behind.
type want struct {
	// states of resources in the first round, by name.
	states map[string]store.ResourceState
	// reasonHas: a resource's reason must contain this text.
	reasonHas map[string]string
	calls     map[string]int // exact fake call counts of the user; absent methods unchecked
	// initiates: exact initiate calls per resource (defaults to 1 for every done resource).
	initiates map[string]int
	rounds    int  // closed rounds expected (default 1)
	verify    bool // every COMPLETE job's files are in the bucket, intact
}

func TestScenarios(t *testing.T) {
	t.Parallel()
	a, b := "myactivity.search", "youtube.subscriptions"
	// startedElsewhere has another client start a job of a for u before the pipeline does, and with
	// complete lets it complete (a minute on the fake's clock).
	startedElsewhere := func(complete bool) func(t *testing.T, h *pipelinetest.Harness) {
		return func(t *testing.T, h *pipelinetest.Harness) {
			if _, err := h.API("u").Initiate(h.Ctx, []string{a}); err != nil {
				t.Fatal(err)
			}
			if complete {
				h.Fake.Clock().Advance(time.Minute)
			}
		}
	}
	// cooldown: a time-based grant of a, which another client exported just before, is initiated during
	// the 24-hour cooldown (refused as fake answers it) and again when the cooldown ends.
	cooldown := func(answer string, fake fakeportability.Options) tableCase {
		return tableCase{
			name:   "time-based cooldown honoured (" + answer + ")",
			access: "time-based-30d",
			fake:   fake,
			env:    map[string]string{"TIME_BASED_HORIZON": "24h"},
			before: startedElsewhere(true),
			want: want{states: map[string]store.ResourceState{a: store.ResDone, b: store.ResDone}, initiates: map[string]int{a: 3, b: 1},
				calls: map[string]int{"reset": 1}, verify: true},
		}
	}
	runScenarios(t, []string{a, b}, []tableCase{
		{
			name: "job fails once and is retried",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				inject(t, h, fakeportability.Fault{Resource: a, FailNextJobs: 1})
			},
			want: want{states: map[string]store.ResourceState{a: store.ResDone, b: store.ResDone}, calls: map[string]int{"retry": 1, "reset": 1, "initiate": 2}, verify: true},
		},
		{
			name: "job fails four times and is reported",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				inject(t, h, fakeportability.Fault{Resource: a, FailNextJobs: 4})
			},
			want: want{states: map[string]store.ResourceState{a: store.ResFailed, b: store.ResDone}, reasonHas: map[string]string{a: "failed 4 times"},
				calls: map[string]int{"retry": 3, "reset": 1, "initiate": 2}, verify: true},
		},
		{
			name: "job cancelled",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				inject(t, h, fakeportability.Fault{Resource: a, CancelNextJobs: 1})
			},
			want: want{states: map[string]store.ResourceState{a: store.ResCancelled, b: store.ResDone}, calls: map[string]int{"retry": 0, "reset": 1}, verify: true},
		},
		{
			name:    "partial consent",
			granted: []string{b},
			want: want{states: map[string]store.ResourceState{a: store.ResNotGranted, b: store.ResDone}, reasonHas: map[string]string{a: "not granted"},
				initiates: map[string]int{a: 1, b: 1}, calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name:   "running job adopted from a 409",
			before: startedElsewhere(false),
			want: want{states: map[string]store.ResourceState{a: store.ResDone, b: store.ResDone}, initiates: map[string]int{a: 2, b: 1},
				calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name:   "one-time resource exported before is reported exhausted",
			before: startedElsewhere(true),
			want: want{states: map[string]store.ResourceState{a: store.ResExhausted, b: store.ResDone}, reasonHas: map[string]string{a: "already exported"},
				initiates: map[string]int{a: 2, b: 1}, calls: map[string]int{"reset": 1}},
		},
		cooldown("429 with timestamp_after_24hrs", fakeportability.Options{}),
		cooldown("FAILED_PRECONDITION, as documented", fakeportability.Options{TimeBasedFailedPrecondition: true}),
		{
			name:   "time-based grant over three rounds, then reset",
			access: "time-based-30d",
			env:    map[string]string{"TIME_BASED_HORIZON": "72h"},
			want: want{states: map[string]store.ResourceState{a: store.ResDone, b: store.ResDone}, initiates: map[string]int{a: 3, b: 3},
				calls: map[string]int{"reset": 1}, rounds: 3, verify: true},
		},
		{
			name:   "signed URL expired before the transfer",
			during: atFirst("transfer-parts", expireURLs),
			want:   want{states: map[string]store.ResourceState{a: store.ResDone, b: store.ResDone}, calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "connection cut mid-body",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				inject(t, h, fakeportability.Fault{Download: &fakeportability.DownloadFault{CutAfterBytes: ptr(int64(100_000)), Count: 2}})
			},
			want: want{states: map[string]store.ResourceState{a: store.ResDone, b: store.ResDone}, calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "corrupted byte caught and copied again",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				inject(t, h, fakeportability.Fault{Download: &fakeportability.DownloadFault{CorruptAt: ptr(int64(1 << 20)), Count: 1}})
			},
			want: want{states: map[string]store.ResourceState{a: store.ResDone, b: store.ResDone}, calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name:   "archive gone after 14 days",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) { h.Fake.Clock().Advance(15 * 24 * time.Hour) }),
			want: want{states: map[string]store.ResourceState{a: store.ResFailed, b: store.ResFailed}, reasonHas: map[string]string{a: "no longer available"},
				calls: map[string]int{"reset": 1}},
		},
		{
			name: "consent revoked mid-round",
			during: func(h *pipelinetest.Harness) func(d *pipelinetest.Delivery) {
				done := false
				return func(d *pipelinetest.Delivery) {
					if !done && d.Task != nil {
						done = true
						h.Fake.RevokeUser("u")
					}
				}
			},
			want: want{states: map[string]store.ResourceState{a: store.ResFailed, b: store.ResFailed}, reasonHas: map[string]string{a: "no longer accepts"}},
		},
		{
			// Found by the chaos run: a transfer that needed fresh URLs after the consent ended retried
			// forever (the state call is refused) instead of ending the resource.
			name: "consent revoked mid-transfer, then the signed URLs expire",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				h.Fake.RevokeUser("u")
				expireURLs(h)
			}),
			want: want{states: map[string]store.ResourceState{a: store.ResFailed, b: store.ResFailed}, reasonHas: map[string]string{a: "no longer accepts"}},
		},
		{
			name: "API bursts of 503 and 429 and a failing token refresh",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				inject(t, h, fakeportability.Fault{Method: "initiate", Status: 503, Count: 2})
				inject(t, h, fakeportability.Fault{Method: "getState", Status: 429, Count: 2})
				inject(t, h, fakeportability.Fault{Method: "getState", Status: 500, Count: 1})
				inject(t, h, fakeportability.Fault{Method: "token", Status: 500, Count: 1})
				h.Fake.Clock().Advance(2 * time.Hour) // the stored access token has expired at the fake
			},
			want: want{states: map[string]store.ResourceState{a: store.ResDone, b: store.ResDone}, calls: map[string]int{"reset": 1}, verify: true},
		},
	})
}

// tableCase is one row of the table-driven pipeline tests (scenarios_test.go, fidelity_test.go): a user
// consents, the pipeline runs until quiet, and check compares the round with want.
type tableCase struct {
	name    string
	fake    fakeportability.Options
	env     map[string]string
	access  string   // "": one-time
	granted []string // nil: all the resources asked
	// before runs after the consent, before any delivery; during wraps every delivery.
	before func(t *testing.T, h *pipelinetest.Harness)
	during func(h *pipelinetest.Harness) func(d *pipelinetest.Delivery)
	want   want
	// after checks more than want says, once the round is quiet.
	after func(t *testing.T, h *pipelinetest.Harness, round string)
}

// runScenarios runs each case in a harness of its own, in parallel: "u" consents to resources.
func runScenarios(t *testing.T, resources []string, tests []tableCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newScenario(t, tc.fake, tc.env)
			access := tc.access
			if access == "" {
				access = "one-time"
			}
			granted := tc.granted
			if granted == nil {
				granted = resources
			}
			round := h.ConsentPartial("u", resources, granted, access)
			if tc.before != nil {
				tc.before(t, h)
			}
			if tc.during != nil {
				h.BeforeDeliver = tc.during(h)
			}
			h.Run(3000)
			check(t, h, round, tc.want)
			if tc.after != nil {
				tc.after(t, h, round)
			}
		})
	}
}

// atFirst runs fn before the first delivery on topic (a row's during).
func atFirst(topic string, fn func(h *pipelinetest.Harness)) func(h *pipelinetest.Harness) func(d *pipelinetest.Delivery) {
	return func(h *pipelinetest.Harness) func(d *pipelinetest.Delivery) {
		done := false
		return func(d *pipelinetest.Delivery) {
			if !done && d.Topic == topic {
				done = true
				fn(h)
			}
		}
	}
}

// expireURLs moves the fake's clock past the life of the signed URLs it handed out (six hours).
func expireURLs(h *pipelinetest.Harness) { h.Fake.Clock().Advance(7 * time.Hour) }

func inject(t *testing.T, h *pipelinetest.Harness, f fakeportability.Fault) {
	t.Helper()
	if err := h.Fake.InjectFault(f); err != nil {
		t.Fatal(err)
	}
}

func check(t *testing.T, h *pipelinetest.Harness, round string, w want) {
	t.Helper()
	list, err := h.Env.Store.ListResources(h.Ctx, round)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if s, ok := w.states[r.Name]; ok && r.State != s {
			t.Errorf("%s: state %s (reason %q), want %s", r.Name, r.State, r.Reason, s)
		}
		if s, ok := w.reasonHas[r.Name]; ok && !strings.Contains(r.Reason, s) {
			t.Errorf("%s: reason %q does not say %q", r.Name, r.Reason, s)
		}
		want, ok := w.initiates[r.Name]
		if !ok && r.State == store.ResDone && w.rounds <= 1 {
			want, ok = 1, true
		}
		if got := h.InitiatesOf("u", r.Name); ok && got != want {
			t.Errorf("%s: initiated %d times, want %d", r.Name, got, want)
		}
	}
	calls := h.UserCalls("u")
	for m, n := range w.calls {
		if calls[m] != n {
			t.Errorf("%s calls = %d, want %d (all: %v)", m, calls[m], n, calls)
		}
	}
	rounds := w.rounds
	if rounds == 0 {
		rounds = 1
	}
	u, err := h.Env.Store.GetUser(h.Ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if u.State != "closed" || u.Rounds != rounds {
		t.Errorf("user state %s after %d rounds, want closed after %d", u.State, u.Rounds, rounds)
	}
	for n := 1; n <= rounds; n++ {
		r, err := h.Env.Store.GetRound(h.Ctx, store.RoundID("u", n))
		if err != nil {
			t.Fatal(err)
		}
		if r.State != store.RoundClosed {
			t.Errorf("round %d is %s, want closed", n, r.State)
		}
	}
	if _, err := h.Env.Tokens.Load(h.Ctx, "u"); err == nil {
		t.Error("token still stored after the grant ended")
	}
	if w.verify {
		h.VerifyExports("u")
	}
	if len(h.Objects("tmp/")) != 0 && w.verify {
		t.Errorf("temporary part objects left behind")
	}
	if t.Failed() {
		t.Logf("logs:\n%s", tail(h.Logs.String(), 60))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newScenario is the harness of one table scenario: the fake as the row sets it, with archives of
// 2 MiB + 7 bytes (three parts of the harness's 1 MiB, the last one short) where the row sets no size.
func newScenario(t *testing.T, fake fakeportability.Options, env map[string]string) *pipelinetest.Harness {
	t.Helper()
	if fake.ArchiveSize == 0 {
		fake.ArchiveSize = 2<<20 + 7
	}
	return pipelinetest.New(t, pipelinetest.Options{Fake: fake, Env: env})
}
