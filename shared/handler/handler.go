// Package handler adapts the steps to their triggers: a Pub/Sub push or a Cloud Tasks HTTP call.
// It decodes the message, makes each delivery one span of the trace the message or task carried
// (shared/trace: the person's journey is one trace; the span has the message's identifiers and the step's
// error), carries a logger with the same identifiers and the span's IDs, and turns the step's error
// into the trigger's answer: nil acknowledges; an error asks for another delivery (Pub/Sub redelivers
// with backoff and finally dead-letters; Cloud Tasks retries per the queue's policy).
package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"go.opentelemetry.io/otel/attribute"

	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/trace"
)

// ErrDrop marks an outcome where another delivery cannot help and nothing is lost by acknowledging
// (the round was purged, the job is stale...). The step logs why.
var ErrDrop = errors.New("dropped")

// Drop wraps a reason as ErrDrop.
func Drop(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDrop, fmt.Sprintf(format, args...))
}

// Step handles one decoded message; it is a method of a step built with what it uses.
type Step[T messages.Validator] func(ctx context.Context, m T) error

// Identified messages expose their identifiers for log lines.
type Identified interface{ LogAttrs() []any }

func attrs(m any) []any {
	if id, ok := m.(Identified); ok {
		return id.LogAttrs()
	}
	return nil
}

// maxPushBody bounds a push body: a Pub/Sub message is at most 10 MB, base64 in JSON about 13.4 MB.
const maxPushBody = 16 << 20

// PubSub returns the HTTP handler of a Pub/Sub-triggered step: it decodes the message of the push and
// answers 204 (acknowledged) or an error status (Pub/Sub delivers again, finally to the dead-letter topic).
//
// The steps are registered as HTTP functions that read the push themselves, not as functions-framework
// CloudEvent functions: the framework's CloudEvent path (cloudevents/sdk-go's NewHTTPReceiveHandler, up to
// v2.16.2 at least) hands each request to a goroutine over one shared channel, and under concurrent
// requests one message can be left behind until the next request arrives: the last push of a burst then
// hangs and its step never runs (https://github.com/cloudevents/sdk-go/issues/1224 and /1332; it lost a
// job in the 1,000-user benchmark). A push subscription's body and the data of a binary-mode CloudEvent
// (Eventarc) are the same JSON, so both reach these handlers.
//
// env gives each delivery its logger and tracer (the root package builds it once per process).
func PubSub[T messages.Validator](env *setup.Env, step string, newMsg func() T, fn Step[T]) http.HandlerFunc {
	return Push(env, step, func(ctx context.Context, p messages.Push) error {
		m := newMsg()
		if err := messages.Decode(p.Data, m); err != nil {
			logging.FromContext(ctx).Error("malformed message; it will be dead-lettered", "error", err.Error())
			return err
		}
		ctx = logging.With(ctx, attrs(m)...)
		trace.Annotate(ctx, attrs(m)...)
		return outcome(ctx, fn(ctx, m))
	})
}

// Push returns the HTTP handler of a Pub/Sub push whose data fn decodes itself. fn's error asks for
// another delivery. Each delivery is one span (shared/trace), a child of the trace the message carries.
func Push(env *setup.Env, step string, fn func(ctx context.Context, p messages.Push) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxPushBody+1))
		if err != nil || len(body) > maxPushBody {
			http.Error(w, "unreadable or oversized push body", http.StatusBadRequest)
			return
		}
		p, err := messages.ParsePush(body)
		ctx := logging.WithLogger(r.Context(), env.Log.With("step", step, "messageId", p.ID))
		ctx, span := env.Tracer.StartMessage(ctx, step, p.Attributes, attribute.String("messageId", p.ID))
		a := deliverPush(ctx, p, err, fn)
		span.End(ctx, a.err)
		a.write(w)
	}
}

// answer is a delivery's reply to its trigger, and the error its span records.
type answer struct {
	status int
	text   string
	err    error
}

func (a answer) write(w http.ResponseWriter) {
	if a.status == http.StatusNoContent {
		w.WriteHeader(a.status)
		return
	}
	http.Error(w, a.text, a.status)
}

var acknowledged = answer{status: http.StatusNoContent}

func deliverPush(ctx context.Context, p messages.Push, parseErr error, fn func(context.Context, messages.Push) error) answer {
	if parseErr != nil {
		// Poison: refuse it so Pub/Sub moves it to the dead-letter topic after its attempts.
		logging.FromContext(ctx).Error("malformed push; it will be dead-lettered", "error", parseErr.Error())
		return answer{http.StatusBadRequest, "malformed push", parseErr}
	}
	if err := fn(ctx, p); err != nil {
		if errors.Is(err, messages.ErrMalformed) {
			return answer{http.StatusBadRequest, "malformed message", err}
		}
		return answer{http.StatusServiceUnavailable, "try again", err}
	}
	return acknowledged
}

// Task returns an HTTP handler for a Cloud Tasks-triggered step; calls must carry a valid OIDC token.
// Each admitted call is one span, a child of the trace in the task's traceparent header. env.TaskAuth
// admits the calls (nil only in this package's tests of the handlers: the root package refuses to serve
// a Cloud Tasks entry point without it).
func Task[T messages.Validator](env *setup.Env, step string, newMsg func() T, fn Step[T]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, attempt := r.Header.Get("X-CloudTasks-TaskName"), r.Header.Get("X-CloudTasks-TaskRetryCount")
			ctx := logging.WithLogger(r.Context(), env.Log.With("step", step, "task", name, "attempt", attempt))
			ctx, span := env.Tracer.StartRequest(ctx, step, r, attribute.String("task", name), attribute.String("attempt", attempt))
			a := deliverTask(ctx, r, newMsg, fn)
			span.End(ctx, a.err)
			a.write(w)
		})
		if env.TaskAuth != nil {
			env.TaskAuth.Require(serve).ServeHTTP(w, r)
			return
		}
		serve.ServeHTTP(w, r)
	}
}

func deliverTask[T messages.Validator](ctx context.Context, r *http.Request, newMsg func() T, fn Step[T]) answer {
	if r.Method != http.MethodPost {
		return answer{http.StatusMethodNotAllowed, "POST only", errors.New("method " + r.Method)}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return answer{http.StatusBadRequest, "read body", err}
	}
	m := newMsg()
	if err := messages.Decode(body, m); err != nil {
		logging.FromContext(ctx).Error("malformed task body", "error", err.Error())
		return answer{http.StatusBadRequest, "malformed task", err}
	}
	ctx = logging.With(ctx, attrs(m)...)
	trace.Annotate(ctx, attrs(m)...)
	if err := outcome(ctx, fn(ctx, m)); err != nil {
		return answer{http.StatusServiceUnavailable, "try again", err}
	}
	return acknowledged
}

// outcome logs the step's result and returns what the trigger should see.
func outcome(ctx context.Context, err error) error {
	log := logging.FromContext(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrDrop):
		log.Warn("message acknowledged without action", "reason", err.Error())
		trace.Annotate(ctx, "outcome", "dropped", "reason", err.Error())
		return nil
	default:
		log.Warn("step failed; it will be delivered again", "error", err.Error())
		return err
	}
}
