package trace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

const (
	parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan  = "00f067aa0ba902b7"
)

func testTracer(t *testing.T) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(context.Background(), Options{Project: "proj", Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return tr, exp
}

// withLog returns a context whose logger writes JSON lines to the returned buffer.
func withLog() (context.Context, *bytes.Buffer) {
	var buf bytes.Buffer
	return logging.WithLogger(context.Background(), logging.New(&buf, "DEBUG")), &buf
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// spanOf returns the one exported span named name.
func spanOf(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q exported, want 1 (all: %v)", len(found), name, names(exp))
	}
	return found[0]
}

func names(exp *tracetest.InMemoryExporter) []string {
	var out []string
	for _, s := range exp.GetSpans() {
		out = append(out, s.Name)
	}
	return out
}

// TestMessageRoundTrip: a step's span, injected into a Pub/Sub message's attributes, is the parent of the
// next step's span (same trace ID), and the attributes hold traceparent alone.
func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	tr, exp := testTracer(t)
	ctx, first := tr.StartMessage(context.Background(), "initiate", nil)
	attrs := propagation.MapCarrier{}
	Inject(ctx, attrs)
	if len(attrs) != 1 || attrs[Header] == "" {
		t.Fatalf("attributes %v, want traceparent only", attrs)
	}
	ctx2, second := tr.StartMessage(context.Background(), "poll-start", attrs)
	second.End(ctx2, nil)
	first.End(ctx, nil)

	a, b := spanOf(t, exp, "initiate"), spanOf(t, exp, "poll-start")
	if a.Parent.IsValid() {
		t.Error("the first span of a journey has a parent")
	}
	if b.SpanContext.TraceID() != a.SpanContext.TraceID() || b.Parent.SpanID() != a.SpanContext.SpanID() {
		t.Errorf("child %s/%s (parent %s), want trace %s and parent %s", b.SpanContext.TraceID(), b.SpanContext.SpanID(),
			b.Parent.SpanID(), a.SpanContext.TraceID(), a.SpanContext.SpanID())
	}
	if b.SpanKind != oteltrace.SpanKindConsumer {
		t.Errorf("a Pub/Sub delivery is a %v span", b.SpanKind)
	}
}

// TestTaskAndRequestRoundTrip: a span injected into a Cloud Task's headers reaches the called step as an
// HTTP request's headers, and the called step's span continues the trace.
func TestTaskAndRequestRoundTrip(t *testing.T) {
	t.Parallel()
	tr, exp := testTracer(t)
	ctx, parent := tr.StartMessage(context.Background(), "poll-start", nil)
	headers := map[string]string{"Content-Type": "application/json"}
	Inject(ctx, propagation.MapCarrier(headers))
	parent.End(ctx, nil)

	var got oteltrace.SpanContext
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tr.StartRequest(r.Context(), "poll", r)
		got = oteltrace.SpanContextFromContext(ctx)
		span.End(ctx, nil)
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("{}"))
	for k, v := range headers { // as Cloud Tasks sends a task's headers
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	p, c := spanOf(t, exp, "poll-start"), spanOf(t, exp, "poll")
	if c.SpanContext.TraceID() != p.SpanContext.TraceID() || c.Parent.SpanID() != p.SpanContext.SpanID() || got.SpanID() != c.SpanContext.SpanID() {
		t.Errorf("task span %v (parent %v), want a child of %v", c.SpanContext, c.Parent, p.SpanContext)
	}
	if c.SpanKind != oteltrace.SpanKindServer {
		t.Errorf("a task call is a %v span", c.SpanKind)
	}
}

// TestIncomingTraceparent is the W3C Trace Context parsing the pipeline relies on, through a message's
// attributes: a valid traceparent is continued, anything else starts a new trace.
func TestIncomingTraceparent(t *testing.T) {
	t.Parallel()
	tr, exp := testTracer(t)
	for i, tc := range []struct {
		in string
		ok bool
	}{
		{"00-" + parentTrace + "-" + parentSpan + "-01", true},
		{"00-" + parentTrace + "-" + parentSpan + "-00", true},       // not sampled upstream: sampled here anyway
		{"01-" + parentTrace + "-" + parentSpan + "-01-extra", true}, // a later version may append fields
		{"00-" + parentTrace + "-" + parentSpan + "-01-extra", false},
		{"ff-" + parentTrace + "-" + parentSpan + "-01", false},
		{"00-00000000000000000000000000000000-" + parentSpan + "-01", false},
		{"00-" + parentTrace + "-0000000000000000-01", false},
		{"00-" + strings.ToUpper(parentTrace) + "-" + parentSpan + "-01", false},
		{"00-" + parentTrace[1:] + "-" + parentSpan + "-01", false},
		{"00_" + parentTrace + "-" + parentSpan + "-01", false},
		{"", false},
	} {
		name := "case" + strconv.Itoa(i)
		ctx, s := tr.StartMessage(context.Background(), name, map[string]string{Header: tc.in})
		s.End(ctx, nil)
		got := spanOf(t, exp, name)
		continued := got.SpanContext.TraceID().String() == parentTrace && got.Parent.SpanID().String() == parentSpan
		if continued != tc.ok {
			t.Errorf("%q: continued = %v, want %v (span %v, parent %v)", tc.in, continued, tc.ok, got.SpanContext, got.Parent)
		}
		if !tc.ok && got.Parent.IsValid() {
			t.Errorf("%q: a refused traceparent still gave a parent %v", tc.in, got.Parent)
		}
		if !got.SpanContext.IsSampled() {
			t.Errorf("%q: span not sampled", tc.in)
		}
	}
}

// TestRequestHeaders: an incoming request is continued from traceparent, else from Google's
// X-Cloud-Trace-Context; tracestate never travels on.
func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	tr, exp := testTracer(t)
	for _, tc := range []struct {
		name, traceparent, cloud, tracestate string
		trace, parent                        string // "" = a new trace
	}{
		{name: "cloud", cloud: "105445aa7843bc8bf206b12000100000/1;o=1", trace: "105445aa7843bc8bf206b12000100000", parent: "0000000000000001"},
		{name: "cloud-upper-no-span", cloud: "105445AA7843BC8BF206B12000100000", trace: "105445aa7843bc8bf206b12000100000"},
		{name: "cloud-bad", cloud: "105445aa7843bc8bf206b1200010000/1"},
		{name: "cloud-junk", cloud: "xyz/1;o=1"},
		{name: "prefers-traceparent", traceparent: "00-" + parentTrace + "-" + parentSpan + "-01", cloud: "105445aa7843bc8bf206b12000100000/7;o=1",
			trace: parentTrace, parent: parentSpan},
		{name: "tracestate", traceparent: "00-" + parentTrace + "-" + parentSpan + "-01", tracestate: "vendor=" + strings.Repeat("x", 200),
			trace: parentTrace, parent: parentSpan},
		{name: "none"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.traceparent != "" {
			r.Header.Set("traceparent", tc.traceparent)
		}
		if tc.tracestate != "" {
			r.Header.Set("tracestate", tc.tracestate)
		}
		if tc.cloud != "" {
			r.Header.Set("X-Cloud-Trace-Context", tc.cloud)
		}
		ctx, s := tr.StartRequest(context.Background(), tc.name, r)
		out := propagation.MapCarrier{}
		Inject(ctx, out)
		s.End(ctx, nil)
		got := spanOf(t, exp, tc.name)
		if tc.trace == "" {
			if got.Parent.IsValid() {
				t.Errorf("%s: continued %v, want a new trace", tc.name, got.Parent)
			}
		} else if got.SpanContext.TraceID().String() != tc.trace || (tc.parent != "" && got.Parent.SpanID().String() != tc.parent) {
			t.Errorf("%s: span %v parent %v, want trace %s parent %s", tc.name, got.SpanContext, got.Parent, tc.trace, tc.parent)
		}
		if len(out) != 1 || out[Header] == "" {
			t.Errorf("%s: passes on %v, want traceparent only", tc.name, out)
		}
	}
}

// TestLogLines: the lines of a delivery name its span as Cloud Logging correlates them, and an error line
// carries the source location of its caller.
func TestLogLines(t *testing.T) {
	t.Parallel()
	tr, _ := testTracer(t)
	ctx, buf := withLog()
	ctx, s := tr.StartMessage(ctx, "initiate", map[string]string{Header: "00-" + parentTrace + "-" + parentSpan + "-01"})
	defer s.End(ctx, nil)
	sc := oteltrace.SpanContextFromContext(ctx)
	logging.FromContext(ctx).Info("hello")
	_, _, line, _ := runtime.Caller(0)
	logging.FromContext(ctx).Error("it broke", "error", "x")
	ls := lines(t, buf)
	if len(ls) != 2 {
		t.Fatalf("%d lines", len(ls))
	}
	for _, l := range ls {
		if l[KeyTrace] != "projects/proj/traces/"+parentTrace || l[KeySpan] != sc.SpanID().String() || l[KeySampled] != true {
			t.Errorf("line %v, want trace %s span %s", l, parentTrace, sc.SpanID())
		}
	}
	if _, ok := ls[0][logging.KeySourceLocation]; ok {
		t.Errorf("an INFO line carries a source location: %v", ls[0])
	}
	loc, _ := ls[1][logging.KeySourceLocation].(map[string]any)
	if file, _ := loc["file"].(string); !strings.HasSuffix(file, "shared/trace/trace_test.go") || loc["line"] != strconv.Itoa(line+1) ||
		loc["function"] != "github.com/portability-pipeline/pipeline/shared/trace.TestLogLines" {
		t.Errorf("source location %v, want trace_test.go:%d in TestLogLines", loc, line+1)
	}
}

// TestEndRecordsOutcome: a failed delivery's span has the error status; a successful one does not; the
// identifiers given to Annotate are the span's attributes.
func TestEndRecordsOutcome(t *testing.T) {
	t.Parallel()
	tr, exp := testTracer(t)
	ctx, s := tr.StartMessage(context.Background(), "failed", nil)
	Annotate(ctx, "user", "u1", "round", "u1~1", "resource", "", "part", 3, "finish", true)
	s.End(ctx, errors.New("firestore unavailable"))
	ctx, s = tr.StartMessage(context.Background(), "fine", nil)
	s.End(ctx, nil)

	failed := spanOf(t, exp, "failed")
	if failed.Status.Code != codes.Error || failed.Status.Description != "firestore unavailable" {
		t.Errorf("failed span status %+v", failed.Status)
	}
	got := map[string]string{}
	for _, a := range failed.Attributes {
		got[string(a.Key)] = a.Value.String()
	}
	if got["user"] != "u1" || got["round"] != "u1~1" || got["part"] != "3" || got["finish"] != "true" {
		t.Errorf("attributes %v", got)
	}
	if _, ok := got["resource"]; ok {
		t.Error("an empty identifier became an attribute")
	}
	if fine := spanOf(t, exp, "fine"); fine.Status.Code != codes.Unset {
		t.Errorf("successful span status %+v", fine.Status)
	}
}

// TestServe: each request is one span; a 5xx answer marks it failed.
func TestServe(t *testing.T) {
	t.Parallel()
	tr, exp := testTracer(t)
	h := Serve(tr, "OAuthCallback", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !oteltrace.SpanContextFromContext(r.Context()).IsValid() {
			t.Error("the handler's context carries no span")
		}
		if r.URL.Path == "/broken" {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "page")
	}))
	for _, path := range []string{"/start", "/broken"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans for 2 requests", len(spans))
	}
	if spans[0].Status.Code != codes.Unset || spans[1].Status.Code != codes.Error {
		t.Errorf("statuses %v, %v; want unset, error", spans[0].Status, spans[1].Status)
	}
}

// TestMark: an operator's action starts a new trace that what it publishes continues; its span is
// exported at once.
func TestMark(t *testing.T) {
	t.Parallel()
	tr, exp := testTracer(t)
	ctx := tr.Mark(context.Background(), "operator retry")
	attrs := propagation.MapCarrier{}
	Inject(ctx, attrs)
	m := spanOf(t, exp, "operator retry")
	if !strings.Contains(attrs[Header], m.SpanContext.TraceID().String()+"-"+m.SpanContext.SpanID().String()) {
		t.Errorf("published %q, want the mark's trace %v", attrs[Header], m.SpanContext)
	}
}

// TestNilTracer: an Env built by hand (no Tracer) still gives the lines their IDs and passes the trace on.
func TestNilTracer(t *testing.T) {
	t.Parallel()
	var tr *Tracer
	ctx, buf := withLog()
	ctx, s := tr.StartMessage(ctx, "initiate", map[string]string{Header: "00-" + parentTrace + "-" + parentSpan + "-01"})
	logging.FromContext(ctx).Info("hello")
	s.End(ctx, nil)
	if l := lines(t, buf)[0]; l[KeyTrace] != "projects//traces/"+parentTrace || l[KeySpan] == nil {
		t.Errorf("line %v", l)
	}
	out := propagation.MapCarrier{}
	Inject(ctx, out)
	if !strings.HasPrefix(out[Header], "00-"+parentTrace+"-") {
		t.Errorf("passes on %v", out)
	}
	if Inject(context.Background(), out); len(out) != 1 {
		t.Error("a context without a span injected something")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestOTLPExport: with an endpoint, each delivery's span reaches it over OTLP/HTTP before End returns
// (no shutdown: a function may be frozen once it has answered), with the project as gcp.project_id.
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*collectorpb.ExportTraceServiceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/base/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("export to %s (%s)", r.URL.Path, r.Header.Get("Content-Type"))
		}
		req := &collectorpb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			t.Errorf("export body: %v", err)
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	defer srv.Close()
	tr, err := New(context.Background(), Options{Project: "proj", Service: "portability-initiate", Endpoint: srv.URL + "/base"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	ctx, s := tr.StartMessage(context.Background(), "initiate", nil)
	s.End(ctx, nil)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || len(got[0].ResourceSpans) != 1 {
		t.Fatalf("%d exports when End returned, want 1", len(got))
	}
	rs := got[0].ResourceSpans[0]
	res := map[string]string{}
	for _, a := range rs.Resource.Attributes {
		res[a.Key] = a.Value.GetStringValue()
	}
	if res["gcp.project_id"] != "proj" || res["service.name"] != "portability-initiate" {
		t.Errorf("resource %v", res)
	}
	if len(rs.ScopeSpans) != 1 || len(rs.ScopeSpans[0].Spans) != 1 || rs.ScopeSpans[0].Spans[0].Name != "initiate" {
		t.Errorf("exported %v", rs.ScopeSpans)
	}
}

func TestEndpointChecked(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"telemetry.googleapis.com", "ftp://collector:4318", "https://"} {
		if _, err := New(context.Background(), Options{Endpoint: bad}); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
}

// FuzzIncoming: whatever a message's traceparent holds, the delivery gets a valid span, continues the
// trace only when the value was valid, and passes on a traceparent that reads back as its own span.
func FuzzIncoming(f *testing.F) {
	f.Add("00-" + parentTrace + "-" + parentSpan + "-01")
	f.Add("01-" + parentTrace + "-" + parentSpan + "-01-x")
	f.Add("00-" + parentTrace + "-" + parentSpan)
	tr := newTracer("proj", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())))
	f.Fuzz(func(t *testing.T, s string) {
		remote := oteltrace.SpanContextFromContext(w3c.Extract(context.Background(), propagation.MapCarrier{Header: s}))
		ctx, span := tr.StartMessage(context.Background(), "f", map[string]string{Header: s})
		defer span.End(ctx, nil)
		sc := oteltrace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			t.Fatalf("%q: invalid span", s)
		}
		if remote.IsValid() && sc.TraceID() != remote.TraceID() {
			t.Errorf("%q: valid parent %v not continued (%v)", s, remote, sc)
		}
		out := propagation.MapCarrier{}
		Inject(ctx, out)
		back := oteltrace.SpanContextFromContext(w3c.Extract(context.Background(), out))
		if back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() {
			t.Errorf("%q: passes on %q, which reads as %v, not %v", s, out[Header], back, sc)
		}
	})
}
