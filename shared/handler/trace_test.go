package handler_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portability-pipeline/pipeline/emulator-test/faketasks"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/publish"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/tasks"
	"github.com/portability-pipeline/pipeline/shared/trace"
)

// TestOneSpanPerDelivery runs a journey's first hops in process through the production publisher
// (against pstest) and task enqueuer (against the Cloud Tasks stand-in, which calls the task's URL with its
// headers): an initiate delivery publishes a JobStarted and schedules a poll task; the poll task fails once
// and is retried. The exporter sees one span per delivery (initiate, poll-start, poll twice), all of one
// trace, the later ones children of the initiate delivery, with the message's identifiers and the failed
// attempt's error status.
func TestOneSpanPerDelivery(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exp := tracetest.NewInMemoryExporter()
	tr, err := trace.New(ctx, trace.Options{Project: "proj", Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}

	ps := pstest.NewServer()
	defer ps.Close()
	conn, err := grpc.NewClient(ps.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client, err := pubsub.NewClient(ctx, "proj", option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/proj/topics/archive-jobs"}); err != nil {
		t.Fatal(err)
	}
	pub := publish.New(client, "proj")
	defer pub.Stop()

	ft, err := faketasks.Start(ctx, "", faketasks.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	tc, err := ft.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()

	env := &setup.Env{Log: logging.New(io.Discard, "DEBUG"), Tracer: tr, Publisher: pub,
		Tasks: tasks.New(tc, "projects/proj/locations/here/queues/q", "invoker@proj.iam.gserviceaccount.com")}
	var polls atomic.Int32
	pollSrv := httptest.NewServer(handler.Task(withLog(env), "poll", func() *messages.PollCheck { return &messages.PollCheck{} },
		func(ctx context.Context, m *messages.PollCheck) error {
			if polls.Add(1) == 1 {
				return errStep
			}
			return nil
		}))
	defer pollSrv.Close()

	job := messages.JobStarted{V: messages.Version, User: "u1", Round: "u1~1", Resource: "myactivity.search", Job: "j1"}
	initiate := handler.PubSub(withLog(env), "initiate", func() *messages.InitiateRequest { return &messages.InitiateRequest{} },
		func(ctx context.Context, m *messages.InitiateRequest) error {
			if err := env.Publisher.Publish(ctx, "archive-jobs", &job); err != nil {
				return err
			}
			return env.Tasks.Enqueue(ctx, tasks.Task{Key: "poll-j1-0", URL: pollSrv.URL, At: time.Now(),
				Body: messages.PollCheck{V: messages.Version, User: "u1", Round: "u1~1", Resource: job.Resource, Job: "j1"}})
		})
	pollStart := handler.PubSub(withLog(env), "poll-start", func() *messages.JobStarted { return &messages.JobStarted{} },
		func(ctx context.Context, m *messages.JobStarted) error { return nil })

	deliver := func(h http.HandlerFunc, data []byte, attrs map[string]string) {
		t.Helper()
		w := httptest.NewRecorder()
		h(w, push(messages.PushBody("s", "m", data, attrs)))
		if w.Code != http.StatusNoContent {
			t.Fatalf("push answered %d: %s", w.Code, w.Body)
		}
	}
	deliver(initiate, []byte(`{"v":1,"user":"u1","round":"u1~1"}`), nil)
	msgs := ps.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages published, want 1", len(msgs))
	}
	if len(msgs[0].Attributes) != 1 || msgs[0].Attributes[trace.Header] == "" {
		t.Errorf("published attributes %v, want traceparent only", msgs[0].Attributes)
	}
	deliver(pollStart, msgs[0].Data, msgs[0].Attributes)
	if err := ft.WaitEmpty(ctx); err != nil {
		t.Fatal(err)
	}

	byName := map[string][]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byName[s.Name] = append(byName[s.Name], s)
	}
	if len(byName["initiate"]) != 1 || len(byName["poll-start"]) != 1 || len(byName["poll"]) != 2 || len(byName) != 3 {
		t.Fatalf("spans %v, want initiate 1, poll-start 1, poll 2", counts(byName))
	}
	root := byName["initiate"][0]
	for _, s := range append(byName["poll-start"], byName["poll"]...) {
		if s.SpanContext.TraceID() != root.SpanContext.TraceID() || s.Parent.SpanID() != root.SpanContext.SpanID() {
			t.Errorf("%s: trace %s parent %s, want trace %s parent %s", s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(),
				root.SpanContext.TraceID(), root.SpanContext.SpanID())
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes {
			attrs[string(a.Key)] = a.Value.String()
		}
		if attrs["user"] != "u1" || attrs["round"] != "u1~1" || attrs["job"] != "j1" {
			t.Errorf("%s: attributes %v", s.Name, attrs)
		}
	}
	if p := byName["poll"]; p[0].Status.Code != codes.Error || p[1].Status.Code != codes.Unset {
		t.Errorf("poll attempts' statuses %v, %v; want error, unset", p[0].Status, p[1].Status)
	}
}

func counts(m map[string][]tracetest.SpanStub) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

// TestDeliverySpanStatus: the answer and the span agree: a dropped message is acknowledged with an
// unset status, a poison push and a failed step are errors.
func TestDeliverySpanStatus(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr, err := trace.New(context.Background(), trace.Options{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	valid := messages.PushBody("s", "m-1", []byte(`{"v":1,"user":"u","round":"u~1"}`), nil)
	for _, tc := range []struct {
		name string
		body []byte
		step error
		code codes.Code
	}{
		{"ok", valid, nil, codes.Unset},
		{"dropped", valid, handler.Drop("round gone"), codes.Unset},
		{"failed", valid, errStep, codes.Error},
		{"poison", []byte(`{"name":"object"}`), nil, codes.Error},
	} {
		h := handler.PubSub(withLog(&setup.Env{Tracer: tr}), tc.name, newReset, func(context.Context, *messages.ResetRequest) error { return tc.step })
		h(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(tc.body)))
		spans := exp.GetSpans()
		if len(spans) != 1 || spans[0].Name != tc.name {
			t.Errorf("%s: spans %v, want this delivery's one", tc.name, spans)
		} else if spans[0].Status.Code != tc.code {
			t.Errorf("%s: status %v, want %v", tc.name, spans[0].Status, tc.code)
		}
		exp.Reset()
	}
}
