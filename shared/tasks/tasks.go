// Package tasks schedules delayed HTTP calls through Cloud Tasks, each carrying an OIDC token of the
// invoker service account, under deterministic names so a redelivered message never schedules twice.
package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portability-pipeline/pipeline/shared/trace"
)

// Task is one delayed call.
type Task struct {
	// Key identifies the task; the same key is scheduled at most once.
	Key string
	// URL is the target; it is also the OIDC token's audience.
	URL string
	// Body is marshalled to JSON.
	Body any
	// At is when the call should run.
	At time.Time
}

// Enqueuer schedules tasks. Enqueue returns nil when a task with the same key exists already.
type Enqueuer interface {
	Enqueue(ctx context.Context, t Task) error
}

// CloudTasks enqueues into one queue with OIDC tokens of one service account.
type CloudTasks struct {
	client       *cloudtasks.Client
	queue        string
	invokerEmail string
}

// New returns an Enqueuer for queue (projects/P/locations/L/queues/Q).
func New(client *cloudtasks.Client, queue, invokerEmail string) *CloudTasks {
	return &CloudTasks{client: client, queue: queue, invokerEmail: invokerEmail}
}

// TaskName turns a key into a valid task ID ([A-Za-z0-9_-], at most 500 characters). Hashing also
// spreads names, which Cloud Tasks recommends over sequential prefixes.
func TaskName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// Enqueue creates the task; an existing task of the same key is success.
func (c *CloudTasks) Enqueue(ctx context.Context, t Task) error {
	body, err := json.Marshal(t.Body)
	if err != nil {
		return fmt.Errorf("task body: %w", err)
	}
	headers := map[string]string{"Content-Type": "application/json"}
	trace.Inject(ctx, propagation.MapCarrier(headers)) // the called step continues the person's trace
	req := &cloudtaskspb.CreateTaskRequest{
		Parent: c.queue,
		Task: &cloudtaskspb.Task{
			Name:         c.queue + "/tasks/" + TaskName(t.Key),
			ScheduleTime: timestamppb.New(t.At),
			MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
				HttpMethod: cloudtaskspb.HttpMethod_POST,
				Url:        t.URL,
				Headers:    headers,
				Body:       body,
				AuthorizationHeader: &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{
					ServiceAccountEmail: c.invokerEmail,
					Audience:            t.URL,
				}},
			}},
		},
	}
	if _, err := c.client.CreateTask(ctx, req); err != nil {
		if status.Code(err) == codes.AlreadyExists {
			return nil
		}
		return fmt.Errorf("create task: %w", err)
	}
	return nil
}
