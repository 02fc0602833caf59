package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Each change of state writes one line tagged with a log tag (never an event type), from, to and the
// identifiers.
func TestStateChangeLines(t *testing.T) {
	_, s := newStore(t)
	var buf bytes.Buffer
	ctx := logging.WithLogger(context.Background(), logging.New(&buf, "info"))
	user := userID(t)
	r := grant(t, ctx, s, user, []string{"a"}, nil)
	if _, err := s.FailUnfinished(ctx, r.ID, "a", "gone"); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("lines %v, want a round line and a resource line", lines)
	}
	round, res := lines[0], lines[1]
	if round["event"] != store.LogRoundState || round["to"] != string(store.RoundExporting) || round["round"] != r.ID || round["user"] != user {
		t.Errorf("round line %v", round)
	}
	if res["event"] != store.LogResourceState || res["from"] != string(store.ResPending) || res["to"] != string(store.ResFailed) ||
		res["resource"] != "a" || res["reason"] != "gone" {
		t.Errorf("resource line %v", res)
	}
	for _, tag := range []string{store.LogResourceState, store.LogRoundState, store.LogObjectState} {
		for _, typ := range []string{outbox.ResourceExported, outbox.ResourceFailed, outbox.RoundCompleted, outbox.GrantEnded, outbox.UserPurged} {
			if tag == typ {
				t.Errorf("log tag %s is also an event type", tag)
			}
		}
	}
}
