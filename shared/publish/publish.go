// Package publish sends messages to Pub/Sub topics.
package publish

import (
	"context"
	"fmt"
	"sync"

	"cloud.google.com/go/pubsub/v2"
	"go.opentelemetry.io/otel/propagation"

	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/trace"
)

// Publisher publishes one message to a topic and waits until Pub/Sub has it.
type Publisher interface {
	Publish(ctx context.Context, topic string, m messages.Validator) error
}

// EventPublisher publishes raw bytes with attributes under an ordering key (the events for the operator's
// app: shared/events), returning once Pub/Sub has the message. PubSub implements it.
type EventPublisher interface {
	PublishEvent(ctx context.Context, topic, orderingKey string, data []byte, attrs map[string]string) error
}

// PubSub publishes through the Pub/Sub client; it keeps one publisher per topic.
type PubSub struct {
	client  *pubsub.Client
	project string
	mu      sync.Mutex
	pubs    map[string]*pubsub.Publisher
}

// New returns a Publisher for the project's topics.
func New(client *pubsub.Client, project string) *PubSub {
	return &PubSub{client: client, project: project, pubs: map[string]*pubsub.Publisher{}}
}

func (p *PubSub) publisher(topic string, ordered bool) *pubsub.Publisher {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub, ok := p.pubs[topic]
	if !ok {
		pub = p.client.Publisher(fmt.Sprintf("projects/%s/topics/%s", p.project, topic))
		// A function publishes a handful of messages per call: send at once rather than batch.
		pub.PublishSettings.CountThreshold = 1
		// Events carry an ordering key (the user): their topic's publisher keeps each key's order.
		pub.EnableMessageOrdering = ordered
		p.pubs[topic] = pub
	}
	return pub
}

// Publish encodes m and publishes it, returning once the server has accepted it.
func (p *PubSub) Publish(ctx context.Context, topic string, m messages.Validator) error {
	data, err := messages.Encode(m)
	if err != nil {
		return err
	}
	msg := &pubsub.Message{Data: data}
	attrs := propagation.MapCarrier{}
	trace.Inject(ctx, attrs) // the next step continues the person's trace
	if len(attrs) > 0 {
		msg.Attributes = attrs
	}
	if _, err := p.publisher(topic, false).Publish(ctx, msg).Get(ctx); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// PublishEvent publishes data with attributes under orderingKey (message ordering is enabled on the
// topic's publisher). After a failure it resumes the key, so the next attempt is not refused.
func (p *PubSub) PublishEvent(ctx context.Context, topic, orderingKey string, data []byte, attrs map[string]string) error {
	pub := p.publisher(topic, true)
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs, OrderingKey: orderingKey}).Get(ctx); err != nil {
		pub.ResumePublish(orderingKey)
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// Stop flushes and stops every topic publisher.
func (p *PubSub) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pub := range p.pubs {
		pub.Stop()
	}
}
