package stack

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/sethvargo/go-envconfig"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portability-pipeline/pipeline"
	"github.com/portability-pipeline/pipeline/shared/config"
)

// Route connects a topic to the function that consumes it, as the Terraform module does.
type Route struct {
	Topic string
	Entry string
}

// Routes are the Pub/Sub-triggered entry points of the routing table (pipeline.Routes) and their topics,
// named by the defaults of their TOPIC_* variables (the stack sets none).
var Routes = func() []Route {
	defaults, err := config.LoadFrom(context.Background(), envconfig.MapLookuper(nil))
	if err != nil {
		panic("the configuration's defaults: " + err.Error())
	}
	var out []Route
	for _, r := range pipeline.Routes {
		if r.Trigger == pipeline.PubSub {
			out = append(out, Route{Topic: r.Name(defaults), Entry: r.Entry})
		}
	}
	return out
}()

// DeadLetterSuffix names a topic's dead-letter topic.
const DeadLetterSuffix = "-dead-letter"

// maxDeliveryAttempts before a message moves to the dead-letter topic (the emulator honours it).
const maxDeliveryAttempts = 10

// createTopology creates every topic, its dead-letter topic with a pull subscription (so nothing is
// dropped), and a push subscription to its function at the /projects/P/topics/T path (as Terraform
// does: the path names the topic in logs). With existingOK, what exists already is kept.
func createTopology(ctx context.Context, client *pubsub.Client, project string, functionURL func(entry string) string, existingOK bool) error {
	exists := func(err error) bool { return existingOK && status.Code(err) == codes.AlreadyExists }
	topic := func(t string) string { return fmt.Sprintf("projects/%s/topics/%s", project, t) }
	sub := func(s string) string { return fmt.Sprintf("projects/%s/subscriptions/%s", project, s) }
	for _, r := range Routes {
		dl := r.Topic + DeadLetterSuffix
		for _, t := range []string{r.Topic, dl} {
			if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic(t)}); err != nil && !exists(err) {
				return fmt.Errorf("create topic %s: %w", t, err)
			}
		}
		if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: sub(dl), Topic: topic(dl), AckDeadlineSeconds: 60,
		}); err != nil && !exists(err) {
			return fmt.Errorf("create subscription %s: %w", dl, err)
		}
		if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name:               sub(r.Topic + "-push"),
			Topic:              topic(r.Topic),
			AckDeadlineSeconds: 600,
			PushConfig:         &pubsubpb.PushConfig{PushEndpoint: functionURL(r.Entry) + "/projects/" + project + "/topics/" + r.Topic},
			DeadLetterPolicy:   &pubsubpb.DeadLetterPolicy{DeadLetterTopic: topic(dl), MaxDeliveryAttempts: maxDeliveryAttempts},
			RetryPolicy:        &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(0), MaximumBackoff: durationpb.New(10e9)},
		}); err != nil && !exists(err) {
			return fmt.Errorf("create push subscription for %s: %w", r.Topic, err)
		}
	}
	// Export events: the demo consumer's pull subscription keeps them for Events (devstack, e2e).
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic("export-events")}); err != nil && !exists(err) {
		return fmt.Errorf("create topic export-events: %w", err)
	}
	if err := createEventSubscription(ctx, client, project); err != nil {
		return err
	}
	return nil
}

// RestartPubSub restarts the Pub/Sub emulator on its port, as an outage would, and creates the topology
// again: the emulator forgets topics, subscriptions and unacknowledged messages when it restarts, where
// the real service keeps them (so a test of an outage must not count messages that were in flight).
func (s *Stack) RestartPubSub(ctx context.Context) error {
	if err := s.PubSub.Restart(ctx); err != nil {
		return fmt.Errorf("restart the pubsub emulator: %w", err)
	}
	return s.EnsureTopology(ctx)
}

// RestartFirestore restarts the Firestore emulator on its port with its data kept (exported before, imported
// on start), as an outage of the real service would: calls fail meanwhile, nothing written is lost.
func (s *Stack) RestartFirestore(ctx context.Context) error {
	if err := s.Firestore.RestartKeepingData(ctx, s.Project); err != nil {
		return fmt.Errorf("restart the firestore emulator: %w", err)
	}
	return nil
}

// EnsureTopology creates whatever topic or subscription of the stack is missing.
func (s *Stack) EnsureTopology(ctx context.Context) error {
	return createTopology(ctx, s.PubSubClient, s.Project, func(entry string) string { return s.pushURL[entry] }, true)
}

// DeadLetter is a message pulled from a dead-letter subscription.
type DeadLetter struct {
	Topic string // the topic it was published to (without the suffix)
	Data  []byte
	ID    string
}

// DeadLetters pulls and acknowledges every message waiting on the dead-letter subscriptions.
func (s *Stack) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	for _, r := range Routes {
		name := fmt.Sprintf("projects/%s/subscriptions/%s%s", s.Project, r.Topic, DeadLetterSuffix)
		for {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			resp, err := s.PubSubClient.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: name, MaxMessages: 100})
			cancel()
			if status.Code(err) == codes.DeadlineExceeded {
				break
			}
			if err != nil {
				return out, fmt.Errorf("pull %s: %w", name, err)
			}
			if len(resp.ReceivedMessages) == 0 {
				break
			}
			var ids []string
			for _, m := range resp.ReceivedMessages {
				out = append(out, DeadLetter{Topic: r.Topic, Data: m.GetMessage().GetData(), ID: m.GetMessage().GetMessageId()})
				ids = append(ids, m.GetAckId())
			}
			if err := s.PubSubClient.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: name, AckIds: ids}); err != nil {
				return out, fmt.Errorf("acknowledge on %s: %w", name, err)
			}
		}
	}
	return out, nil
}

// Publish sends raw data to one of the stack's topics (tests publish poison messages with it).
func (s *Stack) Publish(ctx context.Context, topic string, data []byte) (string, error) {
	p := s.PubSubClient.Publisher(topic)
	defer p.Stop()
	return p.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx)
}
