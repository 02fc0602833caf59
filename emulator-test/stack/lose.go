package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/portability-pipeline/pipeline/emulator-test/faketasks"
	"github.com/portability-pipeline/pipeline/shared/messages"
)

// LossKind is a way a hand-off is lost for good: no redelivery, no retry; only the reconciler heals it.
type LossKind string

// Losses the stack can inject.
const (
	// LossAck: the push is acknowledged but its step never runs (an instance that answered 2xx and died).
	LossAck LossKind = "push acknowledged without running its step"
	// LossDeadLetter: the push goes straight to its topic's dead letter (as after its attempts ran out in an
	// outage); the message waits there, the step never runs.
	LossDeadLetter LossKind = "message moved straight to its dead letter"
	// LossTaskDeleted: the Cloud Task is deleted (DeleteTask) before its handler runs.
	LossTaskDeleted LossKind = "Cloud Task deleted before it runs"
	// LossTaskExhausted: the task uses up its attempts and the queue gives it up (Cloud Tasks has no
	// dead-letter queue).
	LossTaskExhausted LossKind = "task exhausted its attempts"
)

// Loss arms the loss of the next hand-off of one user to one entry point.
type Loss struct {
	Kind LossKind
	// Entry is the function the hand-off goes to: a Pub/Sub entry (Initiate, PollStart, Transfer, Reset)
	// for LossAck and LossDeadLetter, a task entry (PollTask, InitiateTask) for the task losses.
	Entry string
	User  string
	// Lost is called once, when the hand-off is lost, with the topic (empty for a task) and the data.
	Lost func(topic string, data []byte)
}

type lossBook struct {
	mu     sync.Mutex
	armed  []*Loss
	gaveUp int64
	// acked holds, by entry and message data, when a LossAck fired: a copy of the same message published
	// again soon after (two racing deliveries that both published it, as at-least-once allows) is the
	// same hand-off and is lost too, so only the reconciler, which repairs after RECONCILE_GRACE (45 s),
	// can heal it.
	acked map[string]time.Time
}

// duplicateWindow is how long after a LossAck a copy of the same message counts as the same hand-off;
// well below the stack's RECONCILE_GRACE, so the reconciler's own republish is delivered.
const duplicateWindow = 30 * time.Second

// Lose arms a loss; it fires on the next matching hand-off.
func (s *Stack) Lose(l Loss) error {
	switch l.Kind {
	case LossAck, LossDeadLetter:
		if _, ok := s.pushURL[l.Entry]; !ok {
			return fmt.Errorf("lose %s: %s is not a Pub/Sub entry point", l.Kind, l.Entry)
		}
	case LossTaskDeleted, LossTaskExhausted:
		if l.Entry != "PollTask" && l.Entry != "InitiateTask" {
			return fmt.Errorf("lose %s: %s is not a task entry point", l.Kind, l.Entry)
		}
	default:
		return fmt.Errorf("unknown loss %q", l.Kind)
	}
	s.losses.mu.Lock()
	s.losses.armed = append(s.losses.armed, &l)
	s.losses.mu.Unlock()
	return nil
}

// TasksGivenUpOnPurpose counts the tasks LossTaskExhausted gave up (the chaos check of tasks discounts them).
func (s *Stack) TasksGivenUpOnPurpose() int64 {
	s.losses.mu.Lock()
	defer s.losses.mu.Unlock()
	return s.losses.gaveUp
}

// take removes and returns the armed loss matching entry, user and one of kinds.
func (s *Stack) take(entry, user string, kinds ...LossKind) *Loss {
	s.losses.mu.Lock()
	defer s.losses.mu.Unlock()
	for i, l := range s.losses.armed {
		if l.Entry != entry || l.User != user {
			continue
		}
		for _, k := range kinds {
			if l.Kind == k {
				s.losses.armed = append(s.losses.armed[:i], s.losses.armed[i+1:]...)
				if k == LossTaskExhausted {
					s.losses.gaveUp++
				}
				return l
			}
		}
	}
	return nil
}

func userOf(data []byte) string {
	var m struct {
		User string `json:"user"`
	}
	_ = json.Unmarshal(data, &m)
	return m.User
}

// interceptPush decides, before a push reaches entry, whether it is lost; handled pushes are answered here.
func (s *Stack) interceptPush(entry, topic string, w http.ResponseWriter, body []byte) bool {
	p, err := messages.ParsePush(body)
	if err != nil {
		return false
	}
	key := entry + "\x00" + string(p.Data)
	s.losses.mu.Lock()
	at, dup := s.losses.acked[key]
	s.losses.mu.Unlock()
	if dup && time.Since(at) < duplicateWindow {
		w.WriteHeader(http.StatusNoContent) // the same hand-off, lost again
		return true
	}
	l := s.take(entry, userOf(p.Data), LossAck, LossDeadLetter)
	if l == nil {
		return false
	}
	if l.Kind == LossAck {
		s.losses.mu.Lock()
		if s.losses.acked == nil {
			s.losses.acked = map[string]time.Time{}
		}
		s.losses.acked[key] = time.Now()
		s.losses.mu.Unlock()
	}
	if l.Kind == LossDeadLetter {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.PubSubClient.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{
			Topic:    fmt.Sprintf("projects/%s/topics/%s%s", s.Project, topic, DeadLetterSuffix),
			Messages: []*pubsubpb.PubsubMessage{{Data: p.Data, Attributes: p.Attributes}},
		}); err != nil {
			// Not lost after all: let Pub/Sub deliver it again, and arm the loss again.
			s.losses.mu.Lock()
			s.losses.armed = append(s.losses.armed, l)
			s.losses.mu.Unlock()
			http.Error(w, "dead-letter publish failed", http.StatusServiceUnavailable)
			return true
		}
	}
	if l.Lost != nil {
		l.Lost(topic, p.Data)
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// taskFault loses tasks for the armed task losses (and asks the caller's own fault function otherwise).
func (s *Stack) taskFault(own func(string, int) faketasks.Fault) func(string, int, []byte) faketasks.Fault {
	return func(name string, attempt int, body []byte) faketasks.Fault {
		entry := ""
		var env struct {
			Job string `json:"job"`
		}
		_ = json.Unmarshal(body, &env)
		if env.Job != "" {
			entry = "PollTask"
		} else {
			entry = "InitiateTask"
		}
		if l := s.take(entry, userOf(body), LossTaskDeleted, LossTaskExhausted); l != nil {
			if l.Lost != nil {
				l.Lost("", body)
			}
			if l.Kind == LossTaskExhausted {
				return faketasks.Fault{GiveUp: true}
			}
			// Deleted through the Cloud Tasks API before the handler is called; the dropped attempt then
			// finds the task deleted and does not retry it.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.deleteTask(ctx, name); err == nil {
				return faketasks.Fault{Drop: true}
			}
		}
		if own != nil {
			return own(name, attempt)
		}
		return faketasks.Fault{}
	}
}

func (s *Stack) deleteTask(ctx context.Context, name string) error {
	c, err := s.Tasks.NewClient(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.DeleteTask(ctx, &cloudtaskspb.DeleteTaskRequest{Name: name})
}
