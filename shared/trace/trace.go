// Package trace carries one person's journey through the pipeline as one OpenTelemetry trace and gives
// every delivery of an entry point its span. The callback starts the trace (or continues the trace of its
// incoming request), every Pub/Sub message carries it in the "traceparent" attribute and every Cloud Task
// in the "traceparent" header (W3C Trace Context, through OpenTelemetry's propagator), and every log line
// of a delivery names its span the way Cloud Logging correlates lines: logging.googleapis.com/trace =
// projects/PROJECT/traces/TRACE_ID and logging.googleapis.com/spanId.
//
// Spans are exported over OTLP/HTTP when an endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT: Cloud
// Trace's https://telemetry.googleapis.com in production, with the function's Google credentials); without
// one they still give the log lines their IDs and go nowhere. Each delivery flushes its span before the
// function answers: Cloud Run may throttle an instance's CPU once it has answered, so nothing is left to a
// background export.
package trace

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/felixge/httpsnoop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2/google"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

// Header is the HTTP header, the Cloud Tasks header and the Pub/Sub attribute that carries the trace
// (W3C Trace Context's traceparent).
const Header = "traceparent"

// cloudHeader is Google's older trace header: TRACE_ID/SPAN_ID;o=OPTIONS (span ID in decimal). Google's
// front ends send it beside traceparent; it is read only when a request has no valid traceparent.
const cloudHeader = "X-Cloud-Trace-Context"

// Log keys Cloud Logging reads from a structured log line.
const (
	KeyTrace   = "logging.googleapis.com/trace"
	KeySpan    = "logging.googleapis.com/spanId"
	KeySampled = "logging.googleapis.com/trace_sampled"
)

// Propagators: messages and tasks carry traceparent only (the documented contract); an incoming HTTP
// request may carry Google's older header instead.
var (
	w3c      propagation.TextMapPropagator = propagation.TraceContext{}
	incoming                               = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, cloudContext{})
)

// flushTimeout bounds the export at the end of a delivery: a slow or unreachable endpoint delays an
// answer by at most this much, and costs the spans, never the delivery.
const flushTimeout = 5 * time.Second

// Options configure a Tracer.
type Options struct {
	// Project is the Google Cloud project: log lines name traces projects/PROJECT/traces/ID and Cloud Trace
	// files the spans under it (the gcp.project_id resource attribute the Telemetry API reads).
	Project string
	// Service names the process in the spans (service.name; default K_SERVICE, the Cloud Run service, or
	// "portability-pipeline"). OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
	Service string
	// Endpoint is the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT): spans go to Endpoint/v1/traces.
	// A *.googleapis.com endpoint is called with the process's Google credentials. Empty: no export.
	// The exporter reads the other standard variables itself (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT...).
	Endpoint string
	// Exporter, when set, receives the spans instead of an OTLP endpoint (tests: tracetest.InMemoryExporter).
	Exporter sdktrace.SpanExporter
}

// Tracer makes the spans of one process.
type Tracer struct {
	project  string
	provider *sdktrace.TracerProvider
	tracer   oteltrace.Tracer
}

// New builds a Tracer. Every span is sampled: a journey is a handful of spans a round, and Google's front
// end marks most incoming requests not sampled, which would drop the whole journey it starts.
func New(ctx context.Context, o Options) (*Tracer, error) {
	service := o.Service
	if service == "" {
		service = os.Getenv("K_SERVICE")
	}
	if service == "" {
		service = "portability-pipeline"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if o.Project != "" {
		attrs = append(attrs, attribute.String("gcp.project_id", o.Project))
	}
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample())}
	exp := o.Exporter
	if exp == nil && o.Endpoint != "" {
		if exp, err = otlpExporter(ctx, o.Endpoint); err != nil {
			return nil, err
		}
		// The SDK reports failed background exports through this hook (plain stderr by default): make
		// them structured lines like the rest.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			logging.Default().Warn("trace export failed", "error", err.Error())
		}))
	}
	if exp != nil {
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return newTracer(o.Project, sdktrace.NewTracerProvider(opts...)), nil
}

func newTracer(project string, tp *sdktrace.TracerProvider) *Tracer {
	return &Tracer{project: project, provider: tp, tracer: tp.Tracer("github.com/portability-pipeline/pipeline")}
}

// cloudPlatformScope is what the Telemetry API accepts (Cloud Run's tokens carry it anyway).
const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// otlpExporter sends spans to endpoint/v1/traces, the path the OTLP specification appends to
// OTEL_EXPORTER_OTLP_ENDPOINT.
func otlpExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q: want an http(s) URL", endpoint)
	}
	u.Path = path.Join("/", u.Path, "v1/traces")
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
	if h := u.Hostname(); h == "googleapis.com" || strings.HasSuffix(h, ".googleapis.com") {
		hc, err := google.DefaultClient(ctx, cloudPlatformScope)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", u.Host, err)
		}
		opts = append(opts, otlptracehttp.WithHTTPClient(hc))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	return exp, nil
}

// local serves a nil *Tracer (an Env a test built by hand): spans with IDs for the log lines, no export.
var local = newTracer("", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())))

func (t *Tracer) orLocal() *Tracer {
	if t == nil {
		return local
	}
	return t
}

// Shutdown exports what is left and stops the Tracer (processes that end: the CLI, the local stack).
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Span is the span of one delivery.
type Span struct {
	span oteltrace.Span
	t    *Tracer
}

// StartMessage begins the span of one delivery of a Pub/Sub message: a child of the trace in its
// attributes, or the root of a new trace.
func (t *Tracer) StartMessage(ctx context.Context, name string, attrs map[string]string, kv ...attribute.KeyValue) (context.Context, *Span) {
	return t.orLocal().start(ctx, name, oteltrace.SpanKindConsumer, w3c, propagation.MapCarrier(attrs), kv)
}

// StartRequest begins the span of one HTTP request (a Cloud Task's call too): a child of the trace in its
// traceparent header (else X-Cloud-Trace-Context), or the root of a new trace.
func (t *Tracer) StartRequest(ctx context.Context, name string, r *http.Request, kv ...attribute.KeyValue) (context.Context, *Span) {
	return t.orLocal().start(ctx, name, oteltrace.SpanKindServer, incoming, propagation.HeaderCarrier(r.Header), kv)
}

// Mark starts a new trace for an action that is no delivery (an operator's command): its span ends at
// once, and what the action publishes continues the trace.
func (t *Tracer) Mark(ctx context.Context, name string, kv ...attribute.KeyValue) context.Context {
	ctx, s := t.orLocal().start(ctx, name, oteltrace.SpanKindInternal, nil, nil, kv)
	s.End(ctx, nil)
	return ctx
}

func (t *Tracer) start(ctx context.Context, name string, kind oteltrace.SpanKind, p propagation.TextMapPropagator,
	carrier propagation.TextMapCarrier, kv []attribute.KeyValue) (context.Context, *Span) {
	// The delivery's parent is what the carrier holds, never a span ctx happens to carry.
	ctx = oteltrace.ContextWithSpanContext(ctx, oteltrace.SpanContext{})
	if p != nil && carrier != nil {
		if remote := oteltrace.SpanContextFromContext(p.Extract(context.Background(), carrier)); remote.IsValid() {
			// tracestate is dropped: it would travel unchecked from a browser's request into every message
			// (a Pub/Sub attribute holds at most 1024 bytes), and the pipeline reads none of it.
			ctx = oteltrace.ContextWithRemoteSpanContext(ctx, remote.WithTraceState(oteltrace.TraceState{}))
		}
	}
	ctx, span := t.tracer.Start(ctx, name, oteltrace.WithSpanKind(kind), oteltrace.WithAttributes(kv...))
	sc := span.SpanContext()
	ctx = logging.With(ctx, KeyTrace, "projects/"+t.project+"/traces/"+sc.TraceID().String(),
		KeySpan, sc.SpanID().String(), KeySampled, sc.IsSampled())
	return ctx, &Span{span: span, t: t}
}

// End records the delivery's outcome (err nil: success; else the span's status is an error with err's
// message, as the delivery's log line has it), ends the span and exports what the process holds.
func (s *Span) End(ctx context.Context, err error) {
	if err != nil {
		s.span.RecordError(err)
		s.span.SetStatus(codes.Error, err.Error())
	}
	s.span.End()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	if err := s.t.provider.ForceFlush(ctx); err != nil {
		logging.FromContext(ctx).Warn("trace export failed", "error", err.Error())
	}
}

// Annotate adds identifiers (key, value pairs as on log lines: user, round, resource, job...) to the span
// ctx carries; empty values are left out.
func Annotate(ctx context.Context, kv ...any) {
	span := oteltrace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			continue
		}
		switch v := kv[i+1].(type) {
		case string:
			if v != "" {
				span.SetAttributes(attribute.String(k, v))
			}
		case bool:
			span.SetAttributes(attribute.Bool(k, v))
		case int:
			span.SetAttributes(attribute.Int(k, v))
		case int64:
			span.SetAttributes(attribute.Int64(k, v))
		case slog.Value:
			span.SetAttributes(attribute.String(k, v.String()))
		default:
			span.SetAttributes(attribute.String(k, fmt.Sprint(v)))
		}
	}
}

// Inject writes the trace of ctx's span (traceparent) into carrier: a message's attributes
// (propagation.MapCarrier) or a task's headers. Nothing when ctx carries no span.
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) { w3c.Inject(ctx, carrier) }

// Serve wraps next with t's span of each request (StartRequest): an answer of 500 or more marks it failed.
func Serve(t *Tracer, name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := t.StartRequest(r.Context(), name, r)
		var err error
		defer func() { span.End(ctx, err) }()
		m := httpsnoop.CaptureMetrics(next, w, r.WithContext(ctx))
		span.span.SetAttributes(attribute.Int("http.response.status_code", m.Code))
		if m.Code >= 500 {
			err = errors.New(http.StatusText(m.Code))
		}
	})
}

// cloudContext reads X-Cloud-Trace-Context (TRACE_ID[/SPAN_ID][;o=1]) when no traceparent came before it.
// It writes nothing: the pipeline sends traceparent only.
type cloudContext struct{}

func (cloudContext) Inject(context.Context, propagation.TextMapCarrier) {}

func (cloudContext) Fields() []string { return []string{cloudHeader} }

func (cloudContext) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	if oteltrace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	s, opts, _ := strings.Cut(strings.TrimSpace(carrier.Get(cloudHeader)), ";")
	tid, sid, _ := strings.Cut(s, "/")
	traceID, err := oteltrace.TraceIDFromHex(strings.ToLower(tid))
	if err != nil {
		return ctx
	}
	var spanID oteltrace.SpanID
	if n, err := strconv.ParseUint(sid, 10, 64); err == nil && n != 0 {
		for i := 7; i >= 0; i-- {
			spanID[i] = byte(n)
			n >>= 8
		}
	} else {
		// A trace ID alone: the parent span is unknown, and a remote parent needs some span ID.
		for !spanID.IsValid() {
			_, _ = rand.Read(spanID[:])
		}
	}
	var flags oteltrace.TraceFlags
	if strings.Contains(opts, "o=1") {
		flags = oteltrace.FlagsSampled
	}
	sc := oteltrace.NewSpanContext(oteltrace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: flags, Remote: true})
	return oteltrace.ContextWithRemoteSpanContext(ctx, sc)
}
