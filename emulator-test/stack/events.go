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

	"github.com/portability-pipeline/pipeline/shared/events"
)

// EventsSubscription is the demo consumer's pull subscription on export-events (ordered by user, as an
// operator's app would subscribe).
const EventsSubscription = "export-events-app"

// Event is an export event as the demo consumer received it.
type Event struct {
	events.Event
	// Deliveries counts how often it arrived (Pub/Sub is at-least-once; duplicates are dropped by id).
	Deliveries int
	// Attrs are the Pub/Sub attributes; OrderingKey the message's ordering key.
	Attrs       map[string]string
	OrderingKey string
	Received    time.Time
}

// eventLog is what the demo consumer received so far.
type eventLog struct {
	mu   sync.Mutex
	list []*Event
	byID map[string]*Event
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
func (s *Stack) Events(ctx context.Context) ([]Event, error) {
	l := &s.events
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = map[string]*Event{}
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
			ev := &Event{Event: e, Deliveries: 1, Attrs: m.GetAttributes(), OrderingKey: m.GetOrderingKey(), Received: time.Now()}
			l.byID[e.ID] = ev
			l.list = append(l.list, ev)
		}
		if err := s.PubSubClient.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: name, AckIds: acks}); err != nil {
			return nil, fmt.Errorf("acknowledge on %s: %w", name, err)
		}
	}
	out := make([]Event, len(l.list))
	for i, e := range l.list {
		out[i] = *e
	}
	return out, nil
}

// WaitEvents pulls events until done accepts them or ctx ends; it returns the last list.
func (s *Stack) WaitEvents(ctx context.Context, done func([]Event) bool) ([]Event, error) {
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

// EventLine is the demo consumer's one-line rendering: time, type, user, resource, objects/bytes.
func EventLine(e Event) string {
	line := fmt.Sprintf("%s  %-17s %-10s", e.OccurredAt.Format("15:04:05"), e.Type, e.User)
	switch e.Type {
	case events.ResourceExported:
		line += fmt.Sprintf(" %-24s %d objects, %d bytes", e.Resource, len(e.Objects), e.Bytes)
		if r := e.TimeRange; r != nil {
			from := "the beginning"
			if r.Start != nil {
				from = r.Start.Format(time.RFC3339)
			}
			line += fmt.Sprintf(", activity from %s to %s (time filter %s)", from, r.End.Format(time.RFC3339), e.TimeFilter)
		}
	case events.ResourceFailed:
		line += fmt.Sprintf(" %-24s %s: %s", e.Resource, e.State, e.Reason)
	case events.RoundCompleted:
		var objs int
		var bytes int64
		for _, r := range e.Resources {
			objs += r.Objects
			bytes += r.Bytes
		}
		line += fmt.Sprintf(" round %-18d %d resources, %d objects, %d bytes", e.RoundNumber, len(e.Resources), objs, bytes)
	case events.GrantEnded, events.Purged:
		line += fmt.Sprintf(" %-24s %s", e.Ending, e.Reason)
	}
	if e.Deliveries > 1 {
		line += fmt.Sprintf("  (arrived %d times)", e.Deliveries)
	}
	return line
}
