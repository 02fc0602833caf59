package scenario

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
)

func ev(user string, round, stage int, typ, resource, state string) Event {
	e := Event{Event: events.Event{ID: user + typ + resource, Type: typ, User: user, RoundNumber: round, Stage: stage, Resource: resource, State: state},
		OrderingKey: user, Attrs: map[string]string{"type": typ, "user": user, "schema_version": "1"}, Deliveries: 1}
	if typ == outbox.GrantEnded {
		e.Ending = "one_time"
	}
	return e
}

// Lines sorts the resources of one (round, stage) and keeps the stages in order.
func TestLines(t *testing.T) {
	t.Parallel()
	list := []Event{
		ev("u", 1, 1, outbox.ResourceExported, "youtube.subscriptions", "done"),
		ev("u", 1, 1, outbox.ResourceFailed, "myactivity.search", "failed"),
		ev("u", 1, 2, outbox.RoundCompleted, "", ""),
		ev("u", 1, 3, outbox.GrantEnded, "", ""),
	}
	want := []string{"1 resource.exported youtube.subscriptions/done", "1 resource.failed myactivity.search/failed", "1 round.completed", "1 grant.ended one_time"}
	if got := Lines(list); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// CheckEvents finds a wrong ordering key or attribute and a user's events out of order, and lets a
// purge come last.
func TestCheckEvents(t *testing.T) {
	t.Parallel()
	good := []Event{ev("u", 1, 1, outbox.ResourceExported, "a", "done"), ev("v", 1, 1, outbox.ResourceExported, "a", "done"),
		ev("u", 2, 1, outbox.ResourceExported, "a", "done"), ev("u", 0, 0, outbox.UserPurged, "", "")}
	if p := CheckEvents(good); len(p) != 0 {
		t.Errorf("problems in good events: %v", p)
	}
	badKey := ev("u", 1, 1, outbox.ResourceExported, "a", "done")
	badKey.OrderingKey = "v"
	late := []Event{ev("u", 2, 1, outbox.ResourceExported, "a", "done"), ev("u", 1, 2, outbox.RoundCompleted, "", "")}
	if p := CheckEvents([]Event{badKey}); len(p) != 1 || !strings.Contains(p[0], "ordering key") {
		t.Errorf("wrong ordering key: %v", p)
	}
	if p := CheckEvents(late); len(p) != 1 || !strings.Contains(p[0], "after round 2") {
		t.Errorf("round 1 after round 2: %v", p)
	}
}

// Line says an export's span of activity as portctl show does, and how often an event arrived.
func TestLine(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC)
	e := ev("u", 1, 1, outbox.ResourceExported, "myactivity.search", "done")
	e.TimeRange, e.TimeFilter, e.Deliveries = &events.TimeRange{End: end}, "applied", 2
	if got := Line(e); !strings.Contains(got, "activity from the beginning to 2026-05-02T12:00:00Z") || !strings.Contains(got, "(arrived 2 times)") {
		t.Errorf("line %q", got)
	}
}

// Mismatches adds a count that is off to the per-file problems.
func TestMismatches(t *testing.T) {
	t.Parallel()
	if m := (Report{Objects: 2, Expected: 2}).Mismatches(); len(m) != 0 {
		t.Errorf("mismatches of a good report: %v", m)
	}
	if m := (Report{Objects: 3, Expected: 2, Problems: []string{"stored twice: j/f"}}).Mismatches(); len(m) != 2 || !strings.HasPrefix(m[1], "3 objects stored, 2 expected") {
		t.Errorf("mismatches: %v", m)
	}
}
