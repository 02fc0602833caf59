package pipelinetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/tasks"
)

// Delivery is a published message or an enqueued task waiting to be delivered.
type Delivery struct {
	Topic string // empty for a task
	Data  []byte
	Task  *tasks.Task
	// Tries counts failed deliveries (the step returned an error).
	Tries int
	// Copy marks a duplicate delivery of a message delivered already.
	Copy bool
}

// At is where d goes: its topic, or its task's URL.
func (d *Delivery) At() string {
	if d.Task != nil {
		return d.Task.URL
	}
	return d.Topic
}

// Body is what the step at d.At() is handed: the message's data, or the task's body in JSON.
func (d *Delivery) Body() ([]byte, error) {
	if d.Task != nil {
		return json.Marshal(d.Task.Body)
	}
	return d.Data, nil
}

// Bus stands in for Pub/Sub and Cloud Tasks in unit tests: it records what the steps publish and
// enqueue (with Cloud Tasks' named-task dedup) and hands them back to the harness for delivery.
type Bus struct {
	mu        sync.Mutex
	pending   []*Delivery
	taskKeys  map[string]bool
	Published map[string]int // by topic
	Enqueued  int
	Deduped   int
	tasks     []EnqueuedTask
	events    []PublishedEvent
	// FailPublish makes the next N publishes to a topic fail; EnqueueHook, when set, may fail a task creation.
	FailPublish map[string]int
	EnqueueHook func(t tasks.Task) error
}

// EnqueuedTask is a task the Bus accepted, with the real time it was enqueued (At minus EnqueuedAt is the
// delay the step asked for).
type EnqueuedTask struct {
	tasks.Task
	EnqueuedAt time.Time
}

// Tasks returns every task accepted so far (not the deduplicated ones), in order.
func (b *Bus) Tasks() []EnqueuedTask {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]EnqueuedTask(nil), b.tasks...)
}

func newBus() *Bus {
	return &Bus{taskKeys: map[string]bool{}, Published: map[string]int{}, FailPublish: map[string]int{}}
}

// Publish implements publish.Publisher.
func (b *Bus) Publish(_ context.Context, topic string, m messages.Validator) error {
	data, err := messages.Encode(m)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.FailPublish[topic] > 0 {
		b.FailPublish[topic]--
		return fmt.Errorf("publish to %s: injected failure", topic)
	}
	b.pending = append(b.pending, &Delivery{Topic: topic, Data: data})
	b.Published[topic]++
	return nil
}

// PublishedEvent is an event for the operator's app, as published (never delivered to a step).
type PublishedEvent struct {
	Topic       string
	OrderingKey string
	Data        []byte
	Attrs       map[string]string
}

// PublishEvent implements publish.EventPublisher: it records the event by topic.
func (b *Bus) PublishEvent(_ context.Context, topic, orderingKey string, data []byte, attrs map[string]string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, PublishedEvent{Topic: topic, OrderingKey: orderingKey, Data: data, Attrs: attrs})
	b.Published[topic]++
	return nil
}

// Events returns every event published so far, in order (duplicates included).
func (b *Bus) Events() []PublishedEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]PublishedEvent(nil), b.events...)
}

// Enqueue implements tasks.Enqueuer.
func (b *Bus) Enqueue(_ context.Context, t tasks.Task) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.EnqueueHook != nil {
		if err := b.EnqueueHook(t); err != nil {
			return err
		}
	}
	if b.taskKeys[t.Key] {
		b.Deduped++
		return nil
	}
	b.taskKeys[t.Key] = true
	b.Enqueued++
	b.tasks = append(b.tasks, EnqueuedTask{Task: t, EnqueuedAt: time.Now()})
	b.pending = append(b.pending, &Delivery{Task: &t})
	return nil
}

// next removes and returns the first message, or else the task due first; nil when idle.
func (b *Bus) next() *Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	best := -1
	for i, d := range b.pending {
		if d.Task == nil {
			best = i
			break
		}
		if best < 0 || d.Task.At.Before(b.pending[best].Task.At) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	d := b.pending[best]
	b.pending = append(b.pending[:best], b.pending[best+1:]...)
	return d
}

func (b *Bus) requeue(d *Delivery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = append(b.pending, d)
}

// Pending counts what waits for delivery.
func (b *Bus) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// virtualDelay is how long a task waits on the fake's clock: tasks scheduled from the real clock (poll
// ladder) and from API times (cooldowns, next rounds) both map to the smaller non-negative of the two
// readings.
func virtualDelay(at, fakeNow, realNow time.Time) time.Duration {
	a, r := at.Sub(fakeNow), at.Sub(realNow)
	switch {
	case a >= 0 && r >= 0:
		return min(a, r)
	case a >= 0:
		return a
	case r >= 0:
		return r
	}
	return 0
}
