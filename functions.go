// Package pipeline is the deployable source root (the Go buildpack builds only the package at the root of
// the source) and the pipeline's one routing table: Routes says, for every entry point, how it is
// triggered (a Pub/Sub topic, a Cloud Tasks URL, Cloud Scheduler, a browser), which configuration
// variable names its topic or URL, what the process builds for it and which step serves it. The
// functions framework registration (init below), the in-process bus of internal/pipelinetest, the local
// process stack (emulator-test/stack) and the Terraform drift test (terraform/terraform_test.go) all read
// it; each Cloud Function picks its entry point by name.
package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/portability-pipeline/pipeline/functions/initiate"
	"github.com/portability-pipeline/pipeline/functions/oauthcallback"
	"github.com/portability-pipeline/pipeline/functions/poll"
	"github.com/portability-pipeline/pipeline/functions/reconcile"
	"github.com/portability-pipeline/pipeline/functions/reset"
	"github.com/portability-pipeline/pipeline/functions/transfer"
	"github.com/portability-pipeline/pipeline/functions/webhook"
	"github.com/portability-pipeline/pipeline/shared/config"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/setup"
)

// Routes are the pipeline's entry points: one row per entry point, in the order a person's data moves.
var Routes = []Route{
	browser("OAuthCallback", "PUBLIC_URL", oauthcallback.Needs(), oauthcallback.NewHandler, oauthcallback.Unavailable),
	pubsub("Initiate", "initiate", "TOPIC_INITIATE", initiate.Needs(), step(initiate.New, (*initiate.Step).Round)),
	task("InitiateTask", "initiate-task", "INITIATE_TASK_URL", initiate.Needs(), step(initiate.New, (*initiate.Step).Round)),
	pubsub("PollStart", "poll-start", "TOPIC_JOBS", poll.Needs(), step(poll.New, (*poll.Steps).Start)),
	task("PollTask", "poll", "POLL_TASK_URL", poll.Needs(), step(poll.New, (*poll.Steps).Check)),
	pubsub("Transfer", "transfer", "TOPIC_TRANSFER", transfer.Needs(), step(transfer.New, (*transfer.Step).Part)),
	pubsub("Reset", "reset", "TOPIC_RESET", reset.Needs(), step(reset.New, (*reset.Step).Round)),
	scheduled("Reconcile", "RECONCILE_URL", reconcile.Needs(), reconcile.NewHandler),
	events("Webhook", "webhook", "TOPIC_EVENTS", webhook.Needs(), func(env *setup.Env) (func(context.Context, messages.Push) error, error) {
		s, err := webhook.New(env, webhook.Options{})
		if err != nil {
			return nil, err
		}
		return s.Deliver, nil
	}),
}

// Trigger is how an entry point is called.
type Trigger string

const (
	// PubSub: a push subscription on the topic Var names, with a dead-letter topic <topic>-dead-letter.
	PubSub Trigger = "Pub/Sub push"
	// Events: a push subscription on the events topic, deployed only where the operator set a webhook
	// URL (the local stack keeps the events in a pull subscription instead).
	Events Trigger = "events push"
	// Task: Cloud Tasks calls the URL Var names, with an OIDC token of the tasks invoker.
	Task Trigger = "Cloud Tasks"
	// Scheduler: Cloud Scheduler calls the URL Var names, with an OIDC token of its own invoker.
	Scheduler Trigger = "Cloud Scheduler"
	// Browser: people's browsers call the function's URL, which Var names.
	Browser Trigger = "HTTP"
)

// Pushed reports whether a Pub/Sub push subscription calls the entry point.
func (t Trigger) Pushed() bool { return t == PubSub || t == Events }

// Route is one entry point.
type Route struct {
	// Entry is the functions-framework entry point (Terraform's entry_point).
	Entry   string
	Trigger Trigger
	// Var is the shared/config variable of the trigger: the TOPIC_* naming a pushed route's topic, or the
	// URL a Cloud Tasks, Scheduler or browser route is reached at (its tokens' audience, and where the
	// steps that enqueue its tasks send them).
	Var string
	// Needs is what the process builds (shared/setup) for the entry point.
	Needs setup.Needs

	serve       func(env *setup.Env) (http.Handler, error)
	deliver     func(env *setup.Env) (func(ctx context.Context, body []byte) error, error)
	unavailable http.HandlerFunc
}

func init() {
	for _, r := range Routes {
		functions.HTTP(r.Entry, r.Lazy().ServeHTTP)
	}
}

// Lazy returns the entry point's handler as deployed: built from the process environment on the first
// request (never in init: a Cloud Function must start without the network), once; a failed build
// answers "not configured" and is tried again on the next request.
func (r Route) Lazy() http.Handler {
	env := setup.NewLazy(func(ctx context.Context) (*setup.Env, error) { return setup.New(ctx, r.Needs) })
	built := setup.NewLazy(func(ctx context.Context) (http.Handler, error) {
		e, err := env.Get(ctx)
		if err != nil {
			return nil, err
		}
		return r.Handler(e)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h, err := built.Get(req.Context())
		if err != nil {
			logging.Default().Error("configuration", "entry", r.Entry, "error", err.Error())
			if r.unavailable != nil {
				r.unavailable(w, req)
				return
			}
			http.Error(w, "not configured", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, req)
	})
}

// Handler builds the entry point's HTTP handler from env; it refuses an env without what Needs names.
func (r Route) Handler(env *setup.Env) (http.Handler, error) {
	if err := env.Require(r.Entry, r.Needs); err != nil {
		return nil, err
	}
	return r.serve(env)
}

// Deliver builds the step of a Pub/Sub or Cloud Tasks route as an in-process bus calls it: with the
// message's body, without the HTTP around it. Only the step's own needs are checked (a bus admits its
// tasks without tokens). Routes without messages (browser, scheduler, events) have none.
func (r Route) Deliver(env *setup.Env) (func(ctx context.Context, body []byte) error, error) {
	if r.deliver == nil {
		return nil, fmt.Errorf("entry point %s is not delivered messages", r.Entry)
	}
	return r.deliver(env)
}

// Name is the value of the route's Var in c: the topic or the URL.
func (r Route) Name(c *config.Config) string {
	v, ok := Setting(c, r.Var)
	if !ok {
		panic("routing table: shared/config has no variable " + r.Var)
	}
	return v
}

// Setting is the value of the shared/config variable name (its `env` tag) in c.
func Setting(c *config.Config, name string) (string, bool) {
	return setting(reflect.ValueOf(c).Elem(), name)
}

func setting(v reflect.Value, name string) (string, bool) {
	for i := range v.NumField() {
		f, tf := v.Field(i), v.Type().Field(i)
		if tag, ok := tf.Tag.Lookup("env"); ok && strings.TrimSpace(strings.Split(tag, ",")[0]) == name && f.Kind() == reflect.String {
			return f.String(), true
		}
		if f.Kind() == reflect.Struct && tf.IsExported() {
			if s, ok := setting(f, name); ok {
				return s, true
			}
		}
	}
	return "", false
}

// RouteOf returns the route of an entry point.
func RouteOf(entry string) (Route, bool) {
	for _, r := range Routes {
		if r.Entry == entry {
			return r, true
		}
	}
	return Route{}, false
}

// message is the pointer type of a message struct M.
type message[M any] interface {
	*M
	messages.Validator
}

// step adapts a step's constructor and one of its methods to what a route builds.
func step[S any, T messages.Validator](build func(*setup.Env) (S, error), method func(S, context.Context, T) error) func(*setup.Env) (handler.Step[T], error) {
	return func(env *setup.Env) (handler.Step[T], error) {
		s, err := build(env)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, m T) error { return method(s, ctx, m) }, nil
	}
}

// decoded is the bus's form of a step: decode the body, then run the step.
func decoded[M any, P message[M]](build func(*setup.Env) (handler.Step[P], error)) func(*setup.Env) (func(context.Context, []byte) error, error) {
	return func(env *setup.Env) (func(context.Context, []byte) error, error) {
		fn, err := build(env)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, body []byte) error {
			m := P(new(M))
			if err := messages.Decode(body, m); err != nil {
				return err
			}
			return fn(ctx, m)
		}, nil
	}
}

func pubsub[M any, P message[M]](entry, name, topicVar string, needs setup.Needs, build func(*setup.Env) (handler.Step[P], error)) Route {
	return messageRoute(Route{Entry: entry, Trigger: PubSub, Var: topicVar, Needs: needs}, name, build, handler.PubSub[P])
}

func task[M any, P message[M]](entry, name, urlVar string, needs setup.Needs, build func(*setup.Env) (handler.Step[P], error)) Route {
	needs.TaskAuth = true
	needs.TaskAudience = func(c *config.Config) string { v, _ := Setting(c, urlVar); return v }
	return messageRoute(Route{Entry: entry, Trigger: Task, Var: urlVar, Needs: needs}, name, build, handler.Task[P])
}

// messageRoute completes r, a route whose step takes P messages, served by serve (handler.PubSub or
// handler.Task) and delivered decoded by an in-process bus.
func messageRoute[M any, P message[M]](r Route, name string, build func(*setup.Env) (handler.Step[P], error),
	serve func(*setup.Env, string, func() P, handler.Step[P]) http.HandlerFunc) Route {
	r.deliver = decoded(build)
	r.serve = func(env *setup.Env) (http.Handler, error) {
		fn, err := build(env)
		if err != nil {
			return nil, err
		}
		return serve(env, name, func() P { return new(M) }, fn), nil
	}
	return r
}

func events(entry, name, topicVar string, needs setup.Needs, build func(*setup.Env) (func(context.Context, messages.Push) error, error)) Route {
	return Route{Entry: entry, Trigger: Events, Var: topicVar, Needs: needs,
		serve: func(env *setup.Env) (http.Handler, error) {
			fn, err := build(env)
			if err != nil {
				return nil, err
			}
			return handler.Push(env, name, fn), nil
		}}
}

func scheduled(entry, urlVar string, needs setup.Needs, build func(*setup.Env) (http.Handler, error)) Route {
	return Route{Entry: entry, Trigger: Scheduler, Var: urlVar, Needs: needs, serve: build}
}

func browser[H http.Handler](entry, urlVar string, needs setup.Needs, build func(*setup.Env) (H, error), unavailable http.HandlerFunc) Route {
	return Route{Entry: entry, Trigger: Browser, Var: urlVar, Needs: needs, unavailable: unavailable,
		serve: func(env *setup.Env) (http.Handler, error) {
			h, err := build(env)
			if err != nil {
				return nil, err
			}
			return h, nil
		}}
}
