package pipelinetest

import (
	"context"
	"fmt"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/shared/events"
)

// The Harness is the in-process driver of scenario.Driver: a scenario written against that interface runs
// here as on the process stack.
var _ scenario.Driver = (*Harness)(nil)

// runLimit bounds the deliveries of RunUntilClosed.
const runLimit = 10000

// View implements scenario.Driver: the fake knows people by their user ID.
func (h *Harness) View() scenario.View {
	return scenario.View{Store: h.Env.Store, Firestore: h.Env.Store.Client(), Bucket: h.Env.Storage.Bucket(Bucket), BucketName: Bucket,
		ObjectPrefix: h.Env.Config.ObjectPrefix, Fake: h.Fake, Account: func(user string) string { return user }}
}

// SignIn implements scenario.Driver with Consent.
func (h *Harness) SignIn(_ context.Context, user string, resources []string, access string) error {
	h.T.Helper()
	h.Consent(user, resources, access)
	return nil
}

// RunUntilClosed implements scenario.Driver: it runs the bus until nothing is pending (RunUpTo) and
// checks that the users' grants are closed.
func (h *Harness) RunUntilClosed(ctx context.Context, users ...string) error {
	h.T.Helper()
	if _, busy := h.RunUpTo(runLimit); busy {
		return fmt.Errorf("pipeline still busy after %d deliveries (%d pending)", runLimit, h.Bus.Pending())
	}
	for _, u := range users {
		usr, err := h.Env.Store.GetUser(ctx, u)
		if err != nil {
			return err
		}
		if usr.State != "closed" {
			return fmt.Errorf("%s: grant %s once nothing was pending, not closed", u, usr.State)
		}
	}
	return nil
}

// Events implements scenario.Driver with the events the Bus recorded; an event published again must
// be published with the same body.
func (h *Harness) Events(context.Context) ([]scenario.Event, error) {
	var out []*scenario.Event
	byID, bodies := map[string]*scenario.Event{}, map[string]string{}
	for _, p := range h.Bus.Events() {
		if p.Topic != h.Env.Config.Topics.Events {
			continue
		}
		e, err := events.Decode(p.Data)
		if err != nil {
			return nil, err
		}
		if prev := byID[e.ID]; prev != nil {
			if bodies[e.ID] != string(p.Data) {
				return nil, fmt.Errorf("event %s published with different bodies:\n%s\n%s", e.ID, bodies[e.ID], p.Data)
			}
			prev.Deliveries++
			continue
		}
		ev := &scenario.Event{Event: e, Deliveries: 1, Attrs: p.Attrs, OrderingKey: p.OrderingKey, Received: time.Now()}
		byID[e.ID], bodies[e.ID] = ev, string(p.Data)
		out = append(out, ev)
	}
	list := make([]scenario.Event, len(out))
	for i, e := range out {
		list[i] = *e
	}
	return list, nil
}
