// Package faults runs the pipeline on the local stack under injected faults (duplicated and reordered
// deliveries, crashed function processes, a Pub/Sub outage, API error bursts and slow answers, broken
// downloads, failing and cancelled jobs, revoked consent) and checks, after each scenario, the invariants
// the pipeline promises: nothing lost, nothing done twice, nobody let in. The package's tests run the
// named scenarios; emulator-test/cmd/chaos runs randomized mixes of them for as long as asked.
package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/faketasks"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// User is one person of a scenario: the app's user ID, the Google account they consent with, the
// resources of their start link and what they do on the consent page.
type User struct {
	ID        string
	Resources []string
	Access    string   // one-time (default), time-based-30d, time-based-180d
	Tick      []string // resources left ticked (nil: all)
	// Revoked: the scenario withdraws the user's consent mid-round (no successful reset expected).
	Revoked bool
	// ExternalJobs counts jobs another client started for the account (not the pipeline's doing).
	ExternalJobs int
}

// Account is the Google account of the user at the fake.
func (u User) Account() string { return stack.Account(u.ID) }

// Tally adds up what scenarios did and found.
type Tally struct {
	mu          sync.Mutex
	Scenarios   int
	Users       int
	Faults      map[string]int // injected, by kind
	Archives    int            // objects verified against the source
	Bytes       int64          // bytes of those objects
	Resources   map[string]int // final resource states
	Resets      int
	Retries     int
	DeadLetters int // dead-lettered messages, every one accounted for
	Violations  []string
	Invariants  map[string]int // checks made, by invariant
	heals       []*heal        // lost hand-offs (lost.go)
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{Faults: map[string]int{}, Resources: map[string]int{}, Invariants: map[string]int{}}
}

// Fault counts an injected fault of kind.
func (t *Tally) Fault(kind string, n int) {
	t.mu.Lock()
	t.Faults[kind] += n
	t.mu.Unlock()
}

// ViolationCount is the number of violations so far.
func (t *Tally) ViolationCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.Violations)
}

func (t *Tally) violate(format string, args ...any) {
	t.mu.Lock()
	t.Violations = append(t.Violations, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

func (t *Tally) checked(inv string) {
	t.mu.Lock()
	t.Invariants[inv]++
	t.mu.Unlock()
}

// Invariant names, as the chaos table prints them.
const (
	InvAccounted   = "every granted resource exported or failed with a reason"
	InvVerified    = "every archive byte-identical to the source (size, CRC32C), stored once"
	InvOnce        = "no resource initiated twice in a round"
	InvReset       = "reset once per grant, after the last object verified"
	InvDeadLetters = "no message lost or unhandled outside the dead-letter topics"
	InvTokens      = "no token left after the grant closed; no secret in logs or documents"
)

// Invariants lists the invariant names in table order.
var Invariants = []string{InvAccounted, InvVerified, InvOnce, InvReset, InvDeadLetters, InvTokens}

// SignIn walks the users through the consent page, one after the other.
func SignIn(ctx context.Context, st *stack.Stack, users []User) error {
	for _, u := range users {
		access := u.Access
		if access == "" {
			access = "one-time"
		}
		if err := st.SignInAs(ctx, u.ID, u.Resources, stack.Consent{Account: u.Account(), Access: access, Tick: u.Tick}); err != nil {
			return err
		}
	}
	return nil
}

// WaitClosed waits until every user's grant is closed.
func WaitClosed(ctx context.Context, st *stack.Stack, users []User) error {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	if err := st.WaitClosed(ctx, ids, nil); err != nil {
		return err
	}
	return nil
}

// CheckUsers asserts the per-user invariants for users whose grants are closed, adding to t.
func CheckUsers(ctx context.Context, st *stack.Stack, users []User, t *Tally) error {
	for _, u := range users {
		if err := checkUser(ctx, st, u, t); err != nil {
			return fmt.Errorf("check %s: %w", u.ID, err)
		}
	}
	return nil
}

func checkUser(ctx context.Context, st *stack.Stack, u User, t *Tally) error {
	s := st.Store()
	usr, rounds, err := scenario.Rounds(ctx, s, u.ID)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.Users++
	t.mu.Unlock()
	if usr.State != "closed" {
		t.violate("%s: grant %s, not closed", u.ID, usr.State)
	}

	// Every granted resource of every round ends exported, or failed with a reason; and every object of
	// an exported resource is verified. The latest verification time bounds the reset from below.
	var lastVerified time.Time
	extraObjects := 0 // verified objects kept of resources that did not end done
	exportRounds := map[string]int{}
	for _, round := range rounds {
		n, rid := round.Number, round.ID
		r, err := s.GetRound(ctx, rid)
		if err != nil {
			return err
		}
		if r.State != store.RoundClosed {
			t.violate("%s: round %d %s, not closed", u.ID, n, r.State)
		}
		for _, res := range round.Resources {
			t.mu.Lock()
			t.Resources[string(res.State)]++
			t.Retries += res.Retries
			t.mu.Unlock()
			t.checked(InvAccounted)
			switch {
			case !store.Terminal(res.State):
				t.violate("%s: round %d: %s left %s", u.ID, n, res.Name, res.State)
			case res.State != store.ResDone && strings.TrimSpace(res.Reason) == "":
				t.violate("%s: round %d: %s %s without a reason", u.ID, n, res.Name, res.State)
			}
			if res.State == store.ResDone {
				exportRounds[res.Name]++
			}
			objs, err := s.ListObjects(ctx, rid, res.Name)
			if err != nil {
				return err
			}
			for _, o := range objs {
				if o.State == store.ObjVerified {
					if o.VerifiedAt.After(lastVerified) {
						lastVerified = o.VerifiedAt
					}
					if res.State != store.ResDone {
						extraObjects++
					}
				} else if res.State == store.ResDone {
					t.violate("%s: round %d: %s done with object %d %s", u.ID, n, res.Name, o.Index, o.State)
				}
			}
		}
	}

	// Every archive in the bucket byte-identical to the source, stored once; nothing unexpected stored.
	rep, err := scenario.VerifyExports(ctx, st.View(), u.ID)
	if err != nil {
		return err
	}
	t.checked(InvVerified)
	for _, p := range rep.Problems {
		t.violate("%s: %s", u.ID, p)
	}
	// Verified files of a resource that later failed are kept: not a loss, not a copy.
	if rep.Objects != rep.Expected && rep.Objects != rep.Expected+extraObjects {
		t.violate("%s: %d objects stored, %d expected and %d kept of resources that failed later", u.ID, rep.Objects, rep.Expected, extraObjects)
	}
	t.mu.Lock()
	t.Archives += rep.Verified
	t.Bytes += rep.Bytes
	t.mu.Unlock()

	// No resource initiated twice in a round: the jobs the fake started for the account (retries aside,
	// and those of other clients) number at most one per resource and round.
	jobs, adopted := map[string]int{}, map[string]int{}
	external := u.ExternalJobs
	for _, j := range st.Fake.Jobs(u.Account()) {
		if j.RetryOf != "" {
			continue
		}
		count := jobs
		if external > 0 { // the scenario started these before the user signed in
			external--
			count = adopted
		}
		for _, r := range j.Resources {
			count[r]++
		}
	}
	for _, r := range slices.Sorted(maps.Keys(jobs)) {
		t.checked(InvOnce)
		if jobs[r] > usr.Rounds {
			t.violate("%s: %s initiated %d times in %d rounds", u.ID, r, jobs[r], usr.Rounds)
		}
		if jobs[r]+adopted[r] < exportRounds[r] {
			t.violate("%s: %s exported in %d rounds from %d jobs", u.ID, r, exportRounds[r], jobs[r])
		}
	}

	// Reset once per grant (the one-time round, or the end of a time-based grant), after the last
	// object was verified; none needed when the user withdrew consent.
	resets := st.Fake.ResetTimes(u.Account())
	t.checked(InvReset)
	t.mu.Lock()
	t.Resets += len(resets)
	t.mu.Unlock()
	switch {
	case !u.Revoked && len(resets) != 1:
		t.violate("%s: %d resets, want 1", u.ID, len(resets))
	case u.Revoked && len(resets) > 1:
		t.violate("%s: %d resets after a revoked consent, want at most 1", u.ID, len(resets))
	}
	for _, at := range resets {
		if !at.After(lastVerified) {
			t.violate("%s: reset at %s, before the last object was verified at %s", u.ID, at.Format(time.RFC3339Nano), lastVerified.Format(time.RFC3339Nano))
		}
	}

	// No token left once the grant is closed.
	t.checked(InvTokens)
	if _, err := tokens.NewStore(st.FirestoreClient, nil, nil).Load(ctx, u.ID); !errors.Is(err, tokens.ErrNoToken) {
		t.violate("%s: token still stored after the grant closed (%v)", u.ID, err)
	}
	return nil
}

// Poison is a message published on purpose that the pipeline must refuse and Pub/Sub must dead-letter.
type Poison struct {
	Topic string
	Data  string
}

// PublishPoison publishes a malformed message on topic.
func PublishPoison(ctx context.Context, st *stack.Stack, topic, tag string) (Poison, error) {
	p := Poison{Topic: topic, Data: fmt.Sprintf(`{"v":1,"poison":%q}`, tag)}
	_, err := st.Publish(ctx, topic, []byte(p.Data))
	return p, err
}

// DeadLetterBook accounts for dead-lettered messages: each must be a poison message published on
// purpose, and each poison must arrive exactly once.
type DeadLetterBook struct {
	mu       sync.Mutex
	expected map[Poison]int
	seen     map[Poison]int
}

// NewDeadLetterBook returns an empty book.
func NewDeadLetterBook() *DeadLetterBook {
	return &DeadLetterBook{expected: map[Poison]int{}, seen: map[Poison]int{}}
}

// Expect records a poison message published.
func (b *DeadLetterBook) Expect(p Poison) {
	b.mu.Lock()
	b.expected[p]++
	b.mu.Unlock()
}

// Drain pulls the dead-letter subscriptions and books what it finds; an unexpected message is a violation.
func (b *DeadLetterBook) Drain(ctx context.Context, st *stack.Stack, t *Tally) error {
	dls, err := st.DeadLetters(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range dls {
		p := Poison{Topic: d.Topic, Data: string(d.Data)}
		if b.expected[p] == 0 {
			t.violate("dead-lettered on %s without being poison: %.200s", d.Topic, d.Data)
			continue
		}
		b.seen[p]++
		t.mu.Lock()
		t.DeadLetters++
		t.mu.Unlock()
	}
	return nil
}

// Republish publishes again every poison message not dead-lettered yet: after a restart of the Pub/Sub
// emulator, which forgets what it held (the real service would not).
func (b *DeadLetterBook) Republish(ctx context.Context, st *stack.Stack) error {
	b.mu.Lock()
	var again []Poison
	for p, n := range b.expected {
		for range n - b.seen[p] {
			again = append(again, p)
		}
	}
	b.mu.Unlock()
	for _, p := range again {
		if _, err := st.Publish(ctx, p.Topic, []byte(p.Data)); err != nil {
			return err
		}
	}
	return nil
}

// WaitAllDeadLettered waits (up to limit) until every expected poison message was dead-lettered, then checks that
// none arrived twice and none is missing.
func (b *DeadLetterBook) WaitAllDeadLettered(ctx context.Context, st *stack.Stack, t *Tally, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if err := b.Drain(ctx, st, t); err != nil {
			return err
		}
		b.mu.Lock()
		missing := 0
		for p, n := range b.expected {
			if b.seen[p] < n {
				missing += n - b.seen[p]
			}
		}
		b.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			t.checked(InvDeadLetters)
			b.mu.Lock()
			defer b.mu.Unlock()
			for p, n := range b.expected {
				if b.seen[p] != n {
					t.violate("poison message on %s dead-lettered %d times, want %d", p.Topic, b.seen[p], n)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// CheckTasks: no Cloud Task given up for good (the queue's own dead end) since failedBefore (TasksFailed
// then), but those a lost hand-off gave up on purpose.
func CheckTasks(st *stack.Stack, failedBefore int64, t *Tally) {
	t.checked(InvDeadLetters)
	if n := TasksFailed(st) - failedBefore; n > 0 {
		t.violate("%d Cloud Tasks given up after their last attempt", n)
	}
}

// WaitFor polls cond every 50 ms until it holds.
func WaitFor(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// InState reports whether any resource of the users' first rounds is in one of states.
func InState(ctx context.Context, st *stack.Stack, users []User, states ...store.ResourceState) bool {
	for _, u := range users {
		list, err := st.Store().ListResources(ctx, store.RoundID(u.ID, 1))
		if err != nil {
			continue
		}
		for _, r := range list {
			if slices.Contains(states, r.State) {
				return true
			}
		}
	}
	return false
}

// AllIn reports whether every granted resource of the users' first rounds is in one of states.
func AllIn(ctx context.Context, st *stack.Stack, users []User, states ...store.ResourceState) bool {
	n := 0
	for _, u := range users {
		list, err := st.Store().ListResources(ctx, store.RoundID(u.ID, 1))
		if err != nil || len(list) == 0 {
			return false
		}
		for _, r := range list {
			if r.State == store.ResNotGranted {
				continue
			}
			n++
			if !slices.Contains(states, r.State) {
				return false
			}
		}
	}
	return n > 0
}

// Inject adds a fake fault and counts it under kind.
func Inject(st *stack.Stack, t *Tally, kind string, f fakeportability.Fault) error {
	if err := st.Fake.InjectFault(f); err != nil {
		return fmt.Errorf("inject %s: %w", kind, err)
	}
	t.Fault(kind, 1)
	return nil
}

// StackOptions is the stack the suite and the chaos command run on: small archives split into parts
// (2.5 MiB data files, 1 MiB parts), two files per job, two rounds for a time-based grant, a short
// initiate lease so crashed claims are taken over quickly, and a task queue that keeps retrying for a
// while (Cloud Tasks' default gives up only after 100 attempts).
func StackOptions(log *slog.Logger) stack.Options {
	return stack.Options{
		Fake:  fakeportability.Options{ArchiveSize: 5<<19 + 4321, URLsPerJob: 2},
		Tasks: faketasks.Options{MaxAttempts: 60, MinBackoff: 200 * time.Millisecond, MaxBackoff: 4 * time.Second},
		Env:   map[string]string{"PART_SIZE": "1048576", "TIME_BASED_HORIZON": "48h", "INITIATE_LEASE": "5s"},
		Log:   log,
	}
}
