package trace

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

func TestParseAndFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		ok      bool
		trace   string
		span    string
		sampled bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", false},
		{" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", true, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true},
		// A later version may append fields after a dash.
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false, "", "", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, "", "", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, "", "", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, "", "", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, "", "", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false, "", "", false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, "", "", false},
		{"", false, "", "", false},
	} {
		c, ok := Parse(tc.in)
		if ok != tc.ok {
			t.Errorf("Parse(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if c.Trace() != tc.trace || c.Span() != tc.span || c.Sampled != tc.sampled {
			t.Errorf("Parse(%q) = %s %s %v", tc.in, c.Trace(), c.Span(), c.Sampled)
		}
		if back, ok := Parse(c.String()); !ok || back != c {
			t.Errorf("round trip of %q: %q", tc.in, c.String())
		}
	}
}

func TestParseCloud(t *testing.T) {
	t.Parallel()
	c, ok := ParseCloud("105445aa7843bc8bf206b12000100000/1;o=1")
	if !ok || c.Trace() != "105445aa7843bc8bf206b12000100000" || c.Span() != "0000000000000001" || !c.Sampled {
		t.Errorf("got %+v %v", c, ok)
	}
	if c, ok := ParseCloud("105445AA7843BC8BF206B12000100000"); !ok || !c.Valid() || c.Sampled {
		t.Errorf("trace without span: %+v %v", c, ok)
	}
	for _, bad := range []string{"", "xyz/1;o=1", "105445aa7843bc8bf206b1200010000/1"} {
		if _, ok := ParseCloud(bad); ok {
			t.Errorf("ParseCloud(%q) accepted", bad)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/7;o=1")
	if c, ok := FromRequest(r); !ok || c.Trace() != "105445aa7843bc8bf206b12000100000" {
		t.Errorf("FromRequest with the Cloud header: %+v", c)
	}
	r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if c, ok := FromRequest(r); !ok || c.Trace() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("FromRequest prefers traceparent: %+v", c)
	}
}

func TestNewChildAndContinue(t *testing.T) {
	t.Parallel()
	a, b := New(), New()
	if !a.Valid() || a.TraceID == b.TraceID {
		t.Fatal("New gives invalid or repeated traces")
	}
	c := a.Child()
	if c.TraceID != a.TraceID || c.SpanID == a.SpanID {
		t.Error("Child must keep the trace and change the span")
	}
	var buf bytes.Buffer
	ctx := logging.WithLogger(context.Background(), logging.New(&buf, "INFO"))
	ctx = Continue(ctx, "proj", a, true)
	got, ok := FromContext(ctx)
	if !ok || got.TraceID != a.TraceID || got.SpanID == a.SpanID {
		t.Errorf("Continue: %+v", got)
	}
	if p, _ := Parse(Propagate(ctx)); p != got {
		t.Errorf("Propagate = %q", Propagate(ctx))
	}
	logging.FromContext(ctx).Info("hello")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line[KeyTrace] != "projects/proj/traces/"+a.Trace() || line[KeySpan] != got.Span() || line[KeySampled] != true {
		t.Errorf("log line %v", line)
	}
	if Propagate(context.Background()) != "" {
		t.Error("no trace, yet something to propagate")
	}
	if ctx := Continue(context.Background(), "p", Context{}, false); Propagate(ctx) == "" {
		t.Error("Continue without a parent must start a trace")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := Parse(s)
		if !ok {
			return
		}
		if back, ok := Parse(c.String()); !ok || back != c {
			t.Errorf("%q parsed to %+v, which does not round-trip", s, c)
		}
	})
}
