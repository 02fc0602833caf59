package operator

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

// DeadLetterSuffix names a topic's dead-letter topic and its pull subscription (terraform/pubsub.tf, the
// local stack): <topic>-dead-letter.
const DeadLetterSuffix = "-dead-letter"

// Replayed counts what ReplayDeadLetters moved back, by topic.
type Replayed struct {
	Topic    string `json:"topic"`
	Messages int    `json:"messages"`
}

func (o *Operator) pullWait() time.Duration {
	if o.PullWait > 0 {
		return o.PullWait
	}
	return 5 * time.Second
}

// Topics are the pipeline's topics that have dead letters.
func (o *Operator) Topics() []string {
	t := o.Env.Config.Topics
	return []string{t.Initiate, t.Jobs, t.Transfer, t.Reset}
}

// ReplayDeadLetters pulls every message waiting in <topic>-dead-letter and publishes it again, data and
// attributes as they were (the trace included), to topic; each is acknowledged only once the republish is
// accepted, so a failure leaves it in the dead-letter subscription. No topic means every pipeline topic.
func (o *Operator) ReplayDeadLetters(ctx context.Context, topics ...string) ([]Replayed, error) {
	ctx = o.context(ctx, "replay-dead-letters")
	if len(topics) == 0 {
		topics = o.Topics()
	}
	project := o.Env.Config.ProjectID
	var out []Replayed
	for _, topic := range topics {
		sub := fmt.Sprintf("projects/%s/subscriptions/%s%s", project, topic, DeadLetterSuffix)
		dst := fmt.Sprintf("projects/%s/topics/%s", project, topic)
		rep := Replayed{Topic: topic}
		for {
			// Pull may wait for messages: an empty subscription answers nothing within the wait.
			pctx, cancel := context.WithTimeout(ctx, o.pullWait())
			resp, err := o.PubSub.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 100})
			cancel()
			if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
				break
			}
			if err != nil {
				return append(out, rep), fmt.Errorf("pull %s: %w", sub, err)
			}
			if len(resp.ReceivedMessages) == 0 {
				break
			}
			for _, rm := range resp.ReceivedMessages {
				m := rm.Message
				attrs := map[string]string{}
				for k, v := range m.Attributes {
					attrs[k] = v
				}
				attrs["replayedFrom"] = m.MessageId
				if _, err := o.PubSub.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{Topic: dst,
					Messages: []*pubsubpb.PubsubMessage{{Data: m.Data, Attributes: attrs}}}); err != nil {
					return append(out, rep), fmt.Errorf("republish to %s: %w", topic, err)
				}
				if err := o.PubSub.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub,
					AckIds: []string{rm.AckId}}); err != nil {
					return append(out, rep), fmt.Errorf("acknowledge in %s (the message was republished; it may come back once more): %w", sub, err)
				}
				rep.Messages++
				logging.FromContext(ctx).Info("dead letter republished", "topic", topic, "deadLetter", m.MessageId)
			}
		}
		out = append(out, rep)
	}
	return out, nil
}
