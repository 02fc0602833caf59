package stack

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/shared/events"
)

// EventsSubscription is the demo consumer's pull subscription on export-events (ordered by user, as an
// operator's app would subscribe).
const EventsSubscription = "export-events-app"

// eventLog is what the demo consumer received so far.
type eventLog struct {
	mu   sync.Mutex
	list []*scenario.Event
	byID map[string]*scenario.Event
}

// createEventSubscription creates the demo consumer's subscription (kept if it exists).
func createEventSubscription(ctx context.Context, client *pubsub.Client, project string) error {
	_, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                  fmt.Sprintf("projects/%s/subscriptions/%s", project, EventsSubscription),
		Topic:                 fmt.Sprintf("projects/%s/topics/export-events", project),
		AckDeadlineSeconds:    60,
		EnableMessageOrdering: true,
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %s: %w", EventsSubscription, err)
	}
	return nil
}

// Events pulls what waits on the demo consumer's subscription and returns every event received since the
// last ClearData, deduplicated by id, in order of first arrival.
func (s *Stack) Events(ctx context.Context) ([]scenario.Event, error) {
	l := &s.events
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = map[string]*scenario.Event{}
	}
	name := fmt.Sprintf("projects/%s/subscriptions/%s", s.Project, EventsSubscription)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := s.PubSubClient.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: name, MaxMessages: 100})
		cancel()
		if status.Code(err) == codes.DeadlineExceeded || err == nil && len(resp.ReceivedMessages) == 0 {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", name, err)
		}
		var acks []string
		for _, rm := range resp.ReceivedMessages {
			acks = append(acks, rm.GetAckId())
			m := rm.GetMessage()
			e, err := events.Decode(m.GetData())
			if err != nil {
				return nil, fmt.Errorf("event %s: %w", m.GetMessageId(), err)
			}
			if prev := l.byID[e.ID]; prev != nil {
				prev.Deliveries++
				continue
			}
			ev := &scenario.Event{Event: e, Deliveries: 1, Attrs: m.GetAttributes(), OrderingKey: m.GetOrderingKey(), Received: time.Now()}
			l.byID[e.ID] = ev
			l.list = append(l.list, ev)
		}
		if err := s.PubSubClient.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: name, AckIds: acks}); err != nil {
			return nil, fmt.Errorf("acknowledge on %s: %w", name, err)
		}
	}
	out := make([]scenario.Event, len(l.list))
	for i, e := range l.list {
		out[i] = *e
	}
	return out, nil
}

// WaitEvents pulls events until done accepts them or ctx ends; it returns the last list.
func (s *Stack) WaitEvents(ctx context.Context, done func([]scenario.Event) bool) ([]scenario.Event, error) {
	for {
		list, err := s.Events(ctx)
		if err != nil {
			return list, err
		}
		if done(list) {
			return list, nil
		}
		select {
		case <-ctx.Done():
			return list, fmt.Errorf("waiting for events (%d so far): %w", len(list), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// clearEvents drains the subscription and forgets what arrived (Reset).
func (s *Stack) clearEvents(ctx context.Context) error {
	if _, err := s.Events(ctx); err != nil {
		return err
	}
	s.events.mu.Lock()
	s.events.list, s.events.byID = nil, nil
	s.events.mu.Unlock()
	return nil
}
