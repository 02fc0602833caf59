package stack

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Route connects a topic to the function that consumes it, as the Terraform module does.
type Route struct {
	Topic string
	Entry string
}

// Routes are the Pub/Sub-triggered entry points and their topics.
var Routes = []Route{
	{Topic: "initiate-requests", Entry: "Initiate"},
	{Topic: "archive-jobs", Entry: "PollStart"},
	{Topic: "transfer-parts", Entry: "Transfer"},
	{Topic: "reset-requests", Entry: "Reset"},
}

// DeadLetterSuffix names a topic's dead-letter topic.
const DeadLetterSuffix = "-dead-letter"

// maxDeliveryAttempts before a message moves to the dead-letter topic (the emulator honours it).
const maxDeliveryAttempts = 10

// createTopology creates every topic, its dead-letter topic with a pull subscription (so nothing is
// dropped), and a push subscription to its function at the /projects/P/topics/T path the functions
// framework reads the topic from.
func createTopology(ctx context.Context, client *pubsub.Client, project string, functionURL func(entry string) string) error {
	topic := func(t string) string { return fmt.Sprintf("projects/%s/topics/%s", project, t) }
	sub := func(s string) string { return fmt.Sprintf("projects/%s/subscriptions/%s", project, s) }
	for _, r := range Routes {
		dl := r.Topic + DeadLetterSuffix
		for _, t := range []string{r.Topic, dl} {
			if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic(t)}); err != nil {
				return fmt.Errorf("create topic %s: %w", t, err)
			}
		}
		if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: sub(dl), Topic: topic(dl), AckDeadlineSeconds: 60,
		}); err != nil {
			return fmt.Errorf("create subscription %s: %w", dl, err)
		}
		if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name:               sub(r.Topic + "-push"),
			Topic:              topic(r.Topic),
			AckDeadlineSeconds: 600,
			PushConfig:         &pubsubpb.PushConfig{PushEndpoint: functionURL(r.Entry) + "/projects/" + project + "/topics/" + r.Topic},
			DeadLetterPolicy:   &pubsubpb.DeadLetterPolicy{DeadLetterTopic: topic(dl), MaxDeliveryAttempts: maxDeliveryAttempts},
			RetryPolicy:        &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(0), MaximumBackoff: durationpb.New(10e9)},
		}); err != nil {
			return fmt.Errorf("create push subscription for %s: %w", r.Topic, err)
		}
	}
	// Export events: the demo consumer's pull subscription keeps them for Events (devstack, e2e).
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic("export-events")}); err != nil {
		return fmt.Errorf("create topic export-events: %w", err)
	}
	if err := createEventSubscription(ctx, client, project); err != nil {
		return err
	}
	return nil
}
