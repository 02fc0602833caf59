package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/stack"
)

// Lost hand-offs: a hand-off no redelivery or retry brings back. Only the reconciler (functions/reconcile,
// run by the stack every few seconds) heals them; the invariants are the same as for every other fault:
// every round ends, exported or failed with a reason, with no operator action.
const (
	KindLostAck        = "lost: " + string(stack.LossAck)
	KindLostDeadLetter = "lost: " + string(stack.LossDeadLetter)
	KindLostTask       = "lost: " + string(stack.LossTaskDeleted)
	KindLostExhausted  = "lost: " + string(stack.LossTaskExhausted)
)

// LostKinds lists the lost hand-off kinds in table order.
var LostKinds = []string{KindLostAck, KindLostDeadLetter, KindLostTask, KindLostExhausted}

var lossOf = map[string]stack.LossKind{KindLostAck: stack.LossAck, KindLostDeadLetter: stack.LossDeadLetter,
	KindLostTask: stack.LossTaskDeleted, KindLostExhausted: stack.LossTaskExhausted}

// PushEntries and TaskEntries are where each kind of loss can happen.
var (
	PushEntries = []string{"Initiate", "PollStart", "Transfer", "Reset"}
	TaskEntries = []string{"PollTask"}
)

// heal is one lost hand-off and when its user's grant closed again.
type heal struct {
	kind, user string
	lostAt     time.Time
	healed     time.Duration
	done       bool
}

// LoseHandOff arms the loss (kind, one of LostKinds) of the first user's next hand-off to entry. The
// fault counts when it fires; its heal time runs from then to the close of the user's grant.
func LoseHandOff(kind, entry string) Step {
	return func(ctx context.Context, e *Env, users []User) error {
		u := users[0].ID
		return e.St.Lose(stack.Loss{Kind: lossOf[kind], Entry: entry, User: u, Lost: func(topic string, data []byte) {
			if kind == KindLostDeadLetter {
				e.DL.Expect(Poison{Topic: topic, Data: string(data)})
			}
			e.T.Fault(kind, 1)
			e.T.mu.Lock()
			e.T.heals = append(e.T.heals, &heal{kind: kind, user: u, lostAt: time.Now()})
			e.T.mu.Unlock()
			e.logf("lost %s of %s at %s", kind, u, entry)
		}})
	}
}

// closedAt records that the users' grants are closed now: the heal time of their lost hand-offs.
func (t *Tally) closedAt(users []User, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range t.heals {
		for _, u := range users {
			if h.user == u.ID && !h.done {
				h.healed, h.done = at.Sub(h.lostAt), true
			}
		}
	}
}

// Heals returns, by lost hand-off kind, how many healed (their grant closed) and the longest time it took.
func (t *Tally) Heals() (healed map[string]int, longest map[string]time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	healed, longest = map[string]int{}, map[string]time.Duration{}
	for _, h := range t.heals {
		if !h.done {
			continue
		}
		healed[h.kind]++
		longest[h.kind] = max(longest[h.kind], h.healed)
	}
	return healed, longest
}

// TasksFailed counts the Cloud Tasks the queue gave up, less those a lost hand-off gave up on purpose.
func TasksFailed(st *stack.Stack) int64 {
	return st.Tasks.Stats().Failed - st.TasksGivenUpOnPurpose()
}

// Repairs counts the reconciler's repairs by kind, from its log lines ("reconcile.repair").
func Repairs(st *stack.Stack) (map[string]int, error) {
	out := map[string]int{}
	f, err := os.Open(st.Functions["Reconcile"].Log)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"reconcile.repair"`) {
			continue
		}
		var rec struct {
			Message string `json:"message"`
			Kind    string `json:"kind"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Message == "reconcile.repair" {
			out[rec.Kind]++
		}
	}
	return out, sc.Err()
}
