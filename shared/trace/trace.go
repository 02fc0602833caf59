// Package trace carries one person's journey through the pipeline as one trace: the callback starts it
// (or continues the trace of its incoming request), every Pub/Sub message carries it in the "traceparent"
// attribute and every Cloud Task in the "traceparent" header (W3C Trace Context), and every log line of
// a delivery names it the way Cloud Logging correlates lines: logging.googleapis.com/trace =
// projects/PROJECT/traces/TRACE_ID and logging.googleapis.com/spanId.
package trace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

// Header is the HTTP header and the Pub/Sub attribute that carries the trace.
const Header = "traceparent"

// cloudHeader is Google's older trace header: TRACE_ID/SPAN_ID;o=OPTIONS (span ID in decimal).
const cloudHeader = "X-Cloud-Trace-Context"

// Log keys Cloud Logging reads from a structured log line.
const (
	KeyTrace   = "logging.googleapis.com/trace"
	KeySpan    = "logging.googleapis.com/spanId"
	KeySampled = "logging.googleapis.com/trace_sampled"
)

// Context identifies one span of a trace.
type Context struct {
	TraceID [16]byte
	SpanID  [8]byte
	Sampled bool
}

// Valid reports whether both IDs are set (all-zero IDs are invalid in W3C Trace Context).
func (c Context) Valid() bool { return c.TraceID != [16]byte{} && c.SpanID != [8]byte{} }

// Trace is the trace ID in lowercase hex (32 digits).
func (c Context) Trace() string { return hex.EncodeToString(c.TraceID[:]) }

// Span is the span ID in lowercase hex (16 digits).
func (c Context) Span() string { return hex.EncodeToString(c.SpanID[:]) }

// String formats a traceparent header value: 00-TRACE-SPAN-FLAGS.
func (c Context) String() string {
	flags := "00"
	if c.Sampled {
		flags = "01"
	}
	return "00-" + c.Trace() + "-" + c.Span() + "-" + flags
}

// New starts a trace (random IDs, sampled).
func New() Context {
	var c Context
	for !c.Valid() {
		rand.Read(c.TraceID[:])
		rand.Read(c.SpanID[:])
	}
	c.Sampled = true
	return c
}

// Child is a new span of the same trace.
func (c Context) Child() Context {
	n := c
	for n.SpanID == c.SpanID || n.SpanID == [8]byte{} {
		rand.Read(n.SpanID[:])
	}
	return n
}

// Parse reads a traceparent value (version 00, or a later version read as 00 per the spec).
func Parse(s string) (Context, bool) {
	var c Context
	s = strings.TrimSpace(s)
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return c, false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] == "ff" || !lowerHex(s[:2]) {
		return c, false
	}
	if !lowerHex(s[3:35]) || !lowerHex(s[36:52]) || !lowerHex(s[53:55]) {
		return c, false
	}
	_, _ = hex.Decode(c.TraceID[:], []byte(s[3:35])) // checked by lowerHex above
	_, _ = hex.Decode(c.SpanID[:], []byte(s[36:52]))
	flags, _ := strconv.ParseUint(s[53:55], 16, 8)
	c.Sampled = flags&1 == 1
	return c, c.Valid()
}

// ParseCloud reads an X-Cloud-Trace-Context value: TRACE_ID[/SPAN_ID][;o=1].
func ParseCloud(s string) (Context, bool) {
	var c Context
	s, opts, _ := strings.Cut(strings.TrimSpace(s), ";")
	tid, sid, _ := strings.Cut(s, "/")
	tid = strings.ToLower(tid)
	if len(tid) != 32 || !lowerHex(tid) {
		return c, false
	}
	_, _ = hex.Decode(c.TraceID[:], []byte(tid)) // checked by lowerHex above
	if n, err := strconv.ParseUint(sid, 10, 64); err == nil && n != 0 {
		for i := 7; i >= 0; i-- {
			c.SpanID[i] = byte(n)
			n >>= 8
		}
	} else {
		rand.Read(c.SpanID[:])
	}
	c.Sampled = strings.Contains(opts, "o=1")
	return c, c.Valid()
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// FromRequest reads the trace of an incoming request: traceparent first, then X-Cloud-Trace-Context.
func FromRequest(r *http.Request) (Context, bool) {
	if c, ok := Parse(r.Header.Get(Header)); ok {
		return c, true
	}
	return ParseCloud(r.Header.Get(cloudHeader))
}

// FromAttributes reads the trace of a Pub/Sub message.
func FromAttributes(attrs map[string]string) (Context, bool) { return Parse(attrs[Header]) }

type ctxKey struct{}

// WithContext returns ctx carrying c.
func WithContext(ctx context.Context, c Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the trace ctx carries.
func FromContext(ctx context.Context) (Context, bool) {
	c, ok := ctx.Value(ctxKey{}).(Context)
	return c, ok && c.Valid()
}

// Propagate returns the traceparent value to send with a message or task published from ctx ("" when
// ctx carries no trace).
func Propagate(ctx context.Context) string {
	if c, ok := FromContext(ctx); ok {
		return c.String()
	}
	return ""
}

// LogAttrs are the Cloud Logging correlation fields of c for project.
func LogAttrs(project string, c Context) []any {
	return []any{KeyTrace, "projects/" + project + "/traces/" + c.Trace(), KeySpan, c.Span(), KeySampled, c.Sampled}
}

// Continue starts a span of this delivery as a child of parent (or a new trace when parent is not
// valid), carries it in ctx and adds its correlation fields to ctx's logger.
func Continue(ctx context.Context, project string, parent Context, ok bool) context.Context {
	c := New()
	if ok && parent.Valid() {
		c = parent.Child()
	}
	return logging.With(WithContext(ctx, c), LogAttrs(project, c)...)
}
